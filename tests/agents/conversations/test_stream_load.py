"""50 open live-reply streams leave another store's API answering fast: the production processes, for real.

The `stream` process (gunicorn, TOKENHUB_SERVER=asgi: uvicorn workers) and the `web` process (gunicorn
gthread, the production 2 x 8 threads) run as subprocesses on the test database, as platform/Procfile
starts them. One store opens 50 streams on a run that is still waiting (they stay open, waiting on Redis);
meanwhile another store's API calls are timed.
"""

import http.client
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client

from agents.conversations import services as conversations
from agents.conversations import stream
from merchants.api_keys import api_key_create
from tests.factories import MembershipFactory
from tests.plugins.workers import SYSTEM, funded
from tests.test_nginx import _free_port, _stop, _wait_for_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[3]
STREAMS = 50
MEMBERS = 5  # 10 streams each: STREAM_MAX_PER_USER
CALLS = 100


def _server(port: int, **env: str) -> subprocess.Popen:
    url = urlsplit(os.environ["DATABASE_URL"])
    database = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    environment = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "false",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        **env,
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", str(ROOT / "platform" / "gunicorn.conf.py")],
        cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_for_port(port, process, seconds=60)
    # The master listens before its workers have loaded Django: wait until one answers.
    deadline = time.monotonic() + 60
    while True:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            probe.request("GET", "/healthz")
            probe.getresponse()  # any answer (503 without a Celery worker): Django is loaded
            return process
        except OSError:
            pass
        finally:
            probe.close()
        assert time.monotonic() < deadline and process.poll() is None, f"the server on {port} never answered"
        time.sleep(0.2)


def _open_stream(port: int, path: str, session: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid={session}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the stream closed before its headers"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    assert b"text/event-stream" in head
    return sock


def test_fifty_open_streams_leave_another_stores_api_p99_under_100_ms():
    streamer = funded(1_000_000)
    members = [MembershipFactory(merchant=streamer, role="staff") for _ in range(MEMBERS)]
    _, _, run = conversations.conversation_start(
        merchant=streamer, actor=SYSTEM, message="Do you ship to Canada?"
    )
    sessions = []
    for membership in members:
        client = Client()
        client.force_login(membership.user)
        sessions.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
    other_key = api_key_create(merchant=funded(1_000), name="other store").raw_key
    slots = redis.Redis.from_url(settings.REDIS_URL)
    for key in slots.scan_iter(f"{stream.SLOT_PREFIX}*"):
        slots.delete(key)

    stream_port, web_port = _free_port(), _free_port()
    servers = [
        _server(stream_port, TOKENHUB_SERVER="asgi", WEB_CONCURRENCY="1", CONN_MAX_AGE="0"),
        _server(web_port, TOKENHUB_SERVER="wsgi", WEB_CONCURRENCY="2", WEB_THREADS="8"),
    ]
    sockets: list[socket.socket] = []
    try:
        path = f"/support/runs/{run.pk}/stream/"
        for index in range(STREAMS):
            sockets.append(_open_stream(stream_port, path, sessions[index % MEMBERS]))
        assert int(slots.get(f"{stream.SLOT_PREFIX}store:{streamer.pk}")) == STREAMS  # all open, all waiting

        api = http.client.HTTPConnection("127.0.0.1", web_port, timeout=5)
        headers = {"Authorization": f"Bearer {other_key}"}
        for _ in range(5):  # warm-up: each thread's first connection to the database
            api.request("GET", "/api/v1/wallet", headers=headers)
            assert api.getresponse().read() and True
        durations = []
        for _ in range(CALLS):
            started = time.perf_counter()
            api.request("GET", "/api/v1/wallet", headers=headers)
            response = api.getresponse()
            response.read()
            durations.append(time.perf_counter() - started)
            assert response.status == 200
        api.close()

        p99 = sorted(durations)[int(CALLS * 0.99) - 1]
        assert p99 < 0.100, f"p99 {p99 * 1000:.0f} ms, median {statistics.median(durations) * 1000:.0f} ms"
        # The streams were still open throughout: the other store did not wait for them to end.
        assert int(slots.get(f"{stream.SLOT_PREFIX}store:{streamer.pk}")) == STREAMS
    finally:
        for sock in sockets:
            sock.close()
        for server in servers:
            _stop(server)
        for key in slots.scan_iter(f"{stream.SLOT_PREFIX}*"):
            slots.delete(key)
