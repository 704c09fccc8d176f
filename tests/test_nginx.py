"""platform/nginx.conf in front of gunicorn: slow clients wait in nginx, not in gunicorn's threads.

The real config runs (only its addresses, certificate and file paths swapped for temporary ones) in front
of gunicorn started with platform/gunicorn.conf.py and one worker of two threads serving a tiny app.
Everything listens on loopback and every loop is bounded.
"""

import contextlib
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "platform" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SLOW_CLIENTS = 16
SLOW_FOR_SECONDS = 4.0

APP = """
def application(environ, start_response):
    body = ("ok " + environ.get("HTTP_X_FORWARDED_PROTO", "-")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""

STREAM_APP = """
async def application(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"stream " + scope["path"].encode()})
"""


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    if not Path(NGINX).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Debian's nginx for the reverse-proxy test (make proxy installs it).")
        pytest.skip("needs Debian's nginx: `make proxy` (platform/scripts/ensure-nginx.sh) installs it")
    return NGINX


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, *, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _swap(text: str, old: str, new: str) -> str:
    # Every line the test replaces must still be in the config: a silent no-op would test another setup.
    assert old in text, f"platform/nginx.conf no longer contains {old!r}"
    return text.replace(old, new)


@pytest.fixture(scope="module")
def work_dir():
    # Not pytest's tmp_path: nginx's workers run as `nobody` when the tests run as root, and pytest's
    # directories are private to their owner.
    path = Path(tempfile.mkdtemp(prefix="tokenhub-nginx-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def gunicorn_port(work_dir):
    """gunicorn with the production config, one process of two threads: two stuck requests fill it."""
    port = _free_port()
    (work_dir / "tinyapp.py").write_text(APP)
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1", "WEB_THREADS": "2"}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", str(ROOT / "platform" / "gunicorn.conf.py"),
         "--chdir", str(work_dir), "tinyapp:application"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port, process)
        yield port
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def stream_port(work_dir):
    """The `stream` process's place: gunicorn's ASGI mode (uvicorn workers), a tiny app saying who it is."""
    port = _free_port()
    (work_dir / "tinystream.py").write_text(STREAM_APP)
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "TOKENHUB_SERVER": "asgi",
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", str(ROOT / "platform" / "gunicorn.conf.py"),
         "--chdir", str(work_dir), "tinystream:application"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port, process)
        yield port
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def proxy(nginx_binary, work_dir, gunicorn_port, stream_port):
    """nginx with platform/nginx.conf on free loopback ports; yields (https port, http port, cert file)."""
    https_port, http_port = _free_port(), _free_port()
    cert, key = work_dir / "cert.pem", work_dir / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    key.chmod(0o644)
    static = work_dir / "staticfiles"
    static.mkdir()
    (static / "tokenhub.css").write_text("body { color: black; }\n" * 200)
    subprocess.run(["gzip", "-k", str(static / "tokenhub.css")], check=True, timeout=30)
    (work_dir / "logs").mkdir()

    text = CONFIG.read_text()
    for old, new in [
        ("pid /run/nginx.pid;", f"pid {work_dir}/nginx.pid;"),
        ("error_log /var/log/nginx/error.log warn;", f"error_log {work_dir}/logs/error.log warn;"),
        ("access_log /var/log/nginx/access.log;", f"access_log {work_dir}/logs/access.log;"),
        ("listen 80 default_server;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl default_server;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("/etc/ssl/tokenhub/fullchain.pem", str(cert)),
        ("/etc/ssl/tokenhub/privkey.pem", str(key)),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{gunicorn_port};"),
        ("server 127.0.0.1:8001;", f"server 127.0.0.1:{stream_port};"),
        ("alias /srv/tokenhub/staticfiles/;", f"alias {static}/;"),
        (
            "http {\n",
            f"http {{\n    client_body_temp_path {work_dir}/body;\n    proxy_temp_path {work_dir}/proxy;\n",
        ),
    ]:
        text = _swap(text, old, new)
    config = work_dir / "nginx.conf"
    config.write_text(text)
    command = [nginx_binary, "-p", str(work_dir), "-c", str(config)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(https_port, process)
        yield https_port, http_port, cert
    finally:
        _stop(process)


def _get(port: int, path: str, *, cert: Path | None = None, timeout: float, headers: dict | None = None):
    """One ordinary request; (status, headers, body, seconds it took)."""
    if cert is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    else:
        context = ssl.create_default_context(cafile=str(cert))
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    started = time.monotonic()
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read(), time.monotonic() - started
    finally:
        connection.close()


@contextlib.contextmanager
def slow_clients(port: int, *, cert: Path | None = None):
    """SLOW_CLIENTS connections that each send a request's headers one byte at a time and never finish
    them, for at most SLOW_FOR_SECONDS; all closed on exit."""
    sockets: list[socket.socket] = []
    stop = threading.Event()
    context = ssl.create_default_context(cafile=str(cert)) if cert else None
    for _ in range(SLOW_CLIENTS):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sockets.append(context.wrap_socket(sock, server_hostname="127.0.0.1") if context else sock)
    header = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 4096

    def drip() -> None:
        deadline = time.monotonic() + SLOW_FOR_SECONDS
        for byte in header:
            if stop.is_set() or time.monotonic() > deadline:
                return
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.send(bytes([byte]))
            time.sleep(0.1)

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        time.sleep(0.5)  # every slow client has started its headers
        yield
    finally:
        stop.set()
        dripper.join(timeout=SLOW_FOR_SECONDS + 5)
        for sock in sockets:
            sock.close()


def test_without_the_proxy_slow_clients_do_tie_up_gunicorns_threads(gunicorn_port):
    # The control: it shows the attack this config is for really stops gunicorn on its own.
    with slow_clients(gunicorn_port), pytest.raises(TimeoutError):
        _get(gunicorn_port, "/", timeout=1.5)


def test_behind_nginx_a_normal_request_answers_quickly_while_slow_clients_dribble_headers(proxy):
    https_port, _, cert = proxy

    with slow_clients(https_port, cert=cert):
        status, _, body, seconds = _get(https_port, "/", cert=cert, timeout=5)

    assert (status, body) == (200, b"ok https")  # and nginx told gunicorn the request came over https
    assert seconds < 1.0


def test_nginx_serves_collected_static_files_precompressed_and_cached(proxy):
    https_port, _, cert = proxy

    status, headers, _, _ = _get(
        https_port, "/static/tokenhub.css", cert=cert, timeout=5, headers={"Accept-Encoding": "gzip"}
    )

    assert status == 200
    assert headers.get("Content-Encoding") == "gzip"
    assert "immutable" in headers.get("Cache-Control", "")


def test_plain_http_redirects_to_https_except_the_health_check(proxy):
    _, http_port, _ = proxy

    status, headers, _, _ = _get(http_port, "/wallet/", timeout=5)
    health, _, body, _ = _get(http_port, "/healthz", timeout=5)

    assert status == 301 and headers["Location"].startswith("https://")
    assert (health, body) == (200, b"ok http")


def test_the_event_streams_go_to_the_asgi_process_and_everything_else_to_wsgi(proxy):
    https_port, _, cert = proxy
    path = "/support/runs/0b7e6a52-6f1d-4a55-9d7e-0c2f3b1e9a10/stream/"

    streamed = _get(https_port, path, cert=cert, timeout=5)
    page = _get(https_port, "/support/", cert=cert, timeout=5)

    assert (streamed[0], streamed[2]) == (200, f"stream {path}".encode())
    assert (page[0], page[2]) == (200, b"ok https")
