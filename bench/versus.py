"""Tokenhub's real API and worker side by side with the bare engine it is built on, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenhub_bench_versus REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/versus.py [--runs 400] [--latencies 0,2000] [--load 20000] [--hot 100] [--profile]
        [--no-write]

Both systems talk to the same Qwen simulator (`manage.py qwen_simulator --latency-ms L`, a subprocess):
- the bare engine (bench/baseline/engine.py): `celery worker -P threads -c 100` whose task makes one openai
  SDK call and one INSERT; tasks are sent straight to the broker by this script;
- Tokenhub: gunicorn with platform/gunicorn.conf.py (the shipped web process) and the Procfile's worker
  (`-P threads -c 100`, INFO logging), both with DATABASE_POOL_MAX_SIZE=12 as platform/production.env.example
  sets it for every process; runs are created by POST /api/v1/runs with an API key over HTTP.
For each latency: *throughput* (`--runs` units sent by 8 client threads, first send to last finish), *CPU
per unit* (utime+stime from /proc/<pid>/stat of the web processes and of the worker over that phase,
divided by the units), *overhead at a steady 10/s* (100 units one every 100 ms; per unit: finished minus
sent minus the model call's p50 measured by direct SDK calls). Then a *load* of `--load` requests from 100
concurrent clients (one in ten creates a run, the rest read a run or the wallet), counting 5xx answers, and
the *hot wallet*: `--hot` clients creating 5 runs each at once on one store's wallet, against the same on a
wallet each (create latency p50/p99: what the wallet's row lock costs a store's own burst).
Every Tokenhub phase ends with `reconcile_ledger()` clean. `--profile` samples web and worker with py-spy
during one extra drain and prints where the CPU goes. Writes the "Side by side" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from results import write_section  # bench/ is the script's folder, so on sys.path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
CLIENT_THREADS = 8
STEADY_UNITS = 100
LOG_DIR = Path("/tmp")  # noqa: S108


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokenhub.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"Timed out waiting for {what}")
        time.sleep(0.1)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text().split() if (task / "children").exists() else []
        found += [int(p) for p in text]
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (fields 14 and 15 of /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


class Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(
        self, command: list[str], *, env: dict | None = None, cwd: Path = ROOT, log: str
    ) -> subprocess.Popen:
        path = LOG_DIR / f"tokenhub-bench-{log}-{os.getpid()}.log"
        with path.open("wb") as out:
            proc = subprocess.Popen(command, cwd=cwd, env=env or os.environ.copy(), stdout=out, stderr=out)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def product(i: int) -> dict:
    return {"product_name": f"Bench Lamp {i}", "marketplace": "shopify", "features": ["Dimmable", "USB-C"]}


def tool_messages() -> tuple[str, list[dict], int]:
    from agents.runs.estimate import run_messages, tool_of
    from tests.factories import MerchantFactory

    tool = tool_of("listing-writer")
    merchant = MerchantFactory(slug=f"bench-prompt-{uuid.uuid4().hex[:8]}", name="Bench")
    data = tool.validate_input(product(0))
    return tool.model, run_messages(tool=tool, input=data, merchant=merchant), tool.max_tokens


def model_p50(base_url: str, model: str, messages: list[dict], max_tokens: int, calls: int = 15) -> float:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens)
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


# --- the bare engine -----------------------------------------------------------------------------------


class Engine:
    def __init__(
        self, procs: Procs, model_url: str, model: str, messages: list[dict], max_tokens: int
    ) -> None:
        import psycopg
        from celery import Celery
        from django.conf import settings

        self.db_url = os.environ["DATABASE_URL"]
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS engine_result (id bigserial PRIMARY KEY, batch text, i int, "
                "submitted double precision, finished double precision, tokens int)"
            )
        self.broker = settings.CELERY_BROKER_URL
        # No DJANGO_SETTINGS_MODULE: Celery's Django fix-up would set Django up in the engine's worker.
        env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "ENGINE_BROKER_URL": self.broker,
            "ENGINE_DATABASE_URL": self.db_url,
            "ENGINE_MODEL_URL": model_url,
            "ENGINE_MESSAGES": json.dumps(messages),
            "ENGINE_MODEL": model,
            "ENGINE_MAX_TOKENS": str(max_tokens),
        }
        command = [sys.executable, "-m", "celery", "-A", "engine", "worker", "-P", "threads", "-c", "100",
                   "-Q", "engine", "-l", "INFO", "--without-mingle", "--without-gossip", "--without-heartbeat",
                   "-n", f"engine-{uuid.uuid4().hex[:6]}@%h"]  # fmt: skip
        self.proc = procs.start(command, env=env, cwd=ROOT / "bench" / "baseline", log="engine")
        self.app = Celery("engine-client", broker=self.broker)
        self.app.conf.task_default_queue = "engine"
        log = LOG_DIR / f"tokenhub-bench-engine-{os.getpid()}.log"
        wait_until(lambda: b"ready." in log.read_bytes() or self.proc.poll() is not None, 60, "the engine")
        if self.proc.poll() is not None:
            raise RuntimeError(f"The engine's worker exited:\n{log.read_text()[-2000:]}")
        self.pids = [self.proc.pid]
        self.send_batch(5)  # warm up connections

    def send_batch(
        self, count: int, *, threads: int = CLIENT_THREADS, spacing: float = 0.0
    ) -> tuple[str, float]:
        batch = uuid.uuid4().hex
        started = time.time()

        def one(i: int) -> None:
            self.app.send_task("engine.work", args=[batch, i, time.time()])

        if spacing:
            for i in range(count):
                one(i)
                time.sleep(spacing)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(one, range(count)))
        self.wait(batch, count)
        return batch, started

    def wait(self, batch: str, count: int, timeout: float = 180) -> None:
        import psycopg

        with psycopg.connect(self.db_url, autocommit=True) as conn:

            def done() -> bool:
                row = conn.execute("SELECT count(*) FROM engine_result WHERE batch = %s", (batch,)).fetchone()
                return bool(row and row[0] >= count)

            wait_until(done, timeout, "the engine's tasks")

    def rows(self, batch: str) -> list[tuple[float, float]]:
        import psycopg

        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return conn.execute(
                "SELECT submitted, finished FROM engine_result WHERE batch = %s", (batch,)
            ).fetchall()


def engine_phase(engine: Engine, runs: int, model: float) -> dict:
    cpu0 = cpu_seconds(engine.pids)
    batch, started = engine.send_batch(runs)
    rows = engine.rows(batch)
    cpu = cpu_seconds(engine.pids) - cpu0
    throughput = runs / (max(f for _, f in rows) - started)
    batch, _ = engine.send_batch(STEADY_UNITS, spacing=0.1)
    overhead = [(f - s - model) * 1000 for s, f in engine.rows(batch)]
    return {"throughput": throughput, "cpu_ms": cpu / runs * 1000, "web_ms": 0.0, "worker_ms": cpu / runs * 1000,
            "p50": percentile(overhead, 50), "p99": percentile(overhead, 99)}  # fmt: skip


# --- Tokenhub ------------------------------------------------------------------------------------------


class Tokenhub:
    def __init__(self, procs: Procs, model_url: str) -> None:
        from django.conf import settings

        from merchants.actors import Actor
        from merchants.api_keys import api_key_create
        from tests.factories import MerchantFactory
        from wallets.services import promotion_credit, wallet_of

        self.merchant = MerchantFactory(slug=f"bench-{uuid.uuid4().hex[:8]}")
        promotion_credit(wallet=wallet_of(merchant=self.merchant), amount=10**12, key=f"bench:{uuid.uuid4()}",
                         actor=Actor.system("bench"))  # fmt: skip
        # A bulk integration's key: its own limit, as a merchant sets it on the API keys page.
        self.key = api_key_create(
            merchant=self.merchant, name="bench", rate_limit_per_minute=1_000_000
        ).raw_key
        self.port = free_port()
        env = {**os.environ, "QWEN_BASE_URL": model_url, "QWEN_API_KEY": "", "PORT": str(self.port),
               "ALLOWED_HOSTS": "127.0.0.1,localhost", "TRUSTED_PROXY_SSL_HEADER": "true", "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}  # fmt: skip
        web = [
            str(ROOT / ".venv/bin/gunicorn"),
            "tokenhub.wsgi:application",
            "--config",
            "platform/gunicorn.conf.py",
        ]
        # Every process with the pool, as platform/production.env.example configures production.
        env["DATABASE_POOL_MAX_SIZE"] = "12"
        self.web = procs.start(web, env=env, log="web")
        worker = [sys.executable, "-m", "celery", "--app", "tokenhub", "worker", "--loglevel", "INFO",
                  "--pool", "threads", "--concurrency", "100", "--without-gossip", "--without-mingle",
                  "-n", f"bench-{uuid.uuid4().hex[:6]}@%h"]  # fmt: skip
        self.worker = procs.start(worker, env=env, log="worker")
        wait_until(lambda: port_open(self.port), 60, "gunicorn")
        log = LOG_DIR / f"tokenhub-bench-worker-{os.getpid()}.log"
        wait_until(lambda: b"ready." in log.read_bytes() or self.worker.poll() is not None, 90, "the worker")
        if self.worker.poll() is not None or self.web.poll() is not None:
            raise RuntimeError(f"Tokenhub's worker or web exited:\n{log.read_text()[-2000:]}")
        self.base = f"http://127.0.0.1:{self.port}"
        self._local = threading.local()
        self.send_batch(
            60
        )  # every gunicorn worker and thread past its first requests (lazy imports, URL maps)

    def web_pids(self) -> list[int]:
        return [self.web.pid, *children(self.web.pid)]

    def http(self):
        import httpx

        if (client := getattr(self._local, "client", None)) is None:
            client = self._local.client = httpx.Client(
                base_url=self.base,
                headers={"Authorization": f"Bearer {self.key}", "X-Forwarded-Proto": "https"},
                timeout=60,
            )
        return client

    def create(self, i: int) -> tuple[str, float, float]:
        """A run created over HTTP: its id, when the POST was sent and when its answer came back."""
        sent = time.time()
        response = self.http().post("/api/v1/runs", json={"tool": "listing-writer", "input": product(i)})
        answered = time.time()
        if response.status_code != 202:
            raise RuntimeError(f"POST /api/v1/runs answered {response.status_code}: {response.text[:300]}")
        return response.json()["id"], sent, answered

    def send_batch(self, count: int, *, spacing: float = 0.0) -> tuple[list[tuple[str, float, float]], float]:
        started = time.time()
        if spacing:
            sent = []
            for i in range(count):
                sent.append(self.create(i))
                time.sleep(max(0.0, spacing - (time.time() - sent[-1][1])))
        else:
            with ThreadPoolExecutor(CLIENT_THREADS) as pool:
                sent = list(pool.map(self.create, range(count)))
        self.wait([run_id for run_id, *_ in sent])
        return sent, started

    def wait(self, ids: list[str], timeout: float = 180) -> None:
        from agents.models import Run

        def done() -> bool:
            return Run.objects.filter(pk__in=ids, finished_at__isnull=False).count() >= len(ids)

        wait_until(done, timeout, "Tokenhub's runs")
        failed = Counter(
            Run.objects.filter(pk__in=ids).exclude(status="succeeded").values_list("error_code", flat=True)
        )
        if failed:
            raise RuntimeError(f"runs failed: {dict(failed)}")

    def finished(self, ids: list[str]) -> dict[str, tuple[float, float]]:
        """Each run's claim (its first call started) and finish, as the worker stamped them."""
        from agents.models import Run

        return {
            str(pk): (started.timestamp(), finished.timestamp())
            for pk, started, finished in Run.objects.filter(pk__in=ids).values_list(
                "pk", "started_at", "finished_at"
            )
        }


def leftover_runs_cancel() -> int:
    """Cancel the queued runs an earlier, interrupted use of this database left behind (their holds are
    released): their messages went with the flushed broker, so recovery would re-run them in the middle
    of this run's measurements. Answers how many were canceled."""
    from agents.errors import RunNotCancelable
    from agents.models import Run
    from agents.runs.settle import run_cancel
    from merchants.actors import Actor

    canceled = 0
    for run in Run.objects.filter(status=Run.Status.QUEUED).iterator():
        try:
            run_cancel(run=run, actor=Actor.system("bench"))
        except RunNotCancelable:
            continue
        canceled += 1
    return canceled


def check_ledger() -> int:
    from wallets.reconcile import reconcile_ledger

    violations = reconcile_ledger()
    if violations:
        raise RuntimeError(f"reconcile_ledger: {violations}")
    return len(violations)


def tokenhub_phase(hub: Tokenhub, runs: int, model: float) -> dict:
    web0, worker0 = cpu_seconds(hub.web_pids()), cpu_seconds([hub.worker.pid])
    sent, started = hub.send_batch(runs)
    web, worker = cpu_seconds(hub.web_pids()) - web0, cpu_seconds([hub.worker.pid]) - worker0
    finished = hub.finished([run_id for run_id, *_ in sent])
    throughput = runs / (max(f for _, f in finished.values()) - started)
    sent, _ = hub.send_batch(STEADY_UNITS, spacing=0.1)
    stamps = hub.finished([run_id for run_id, *_ in sent])
    overhead = [(stamps[run_id][1] - at - model) * 1000 for run_id, at, _ in sent]
    # Where the overhead goes: the POST's answer, the claim's start, and claim + call + settlement past the model.
    answer = [(answered - at) * 1000 for _, at, answered in sent]
    claim = [(stamps[run_id][0] - at) * 1000 for run_id, at, _ in sent]
    settle = [(stamps[run_id][1] - stamps[run_id][0] - model) * 1000 for run_id, *_ in sent]
    check_ledger()
    return {"throughput": throughput, "cpu_ms": (web + worker) / runs * 1000, "web_ms": web / runs * 1000,
            "worker_ms": worker / runs * 1000, "p50": percentile(overhead, 50), "p99": percentile(overhead, 99),
            "answer_p50": percentile(answer, 50), "claim_p50": percentile(claim, 50),
            "settle_p50": percentile(settle, 50)}  # fmt: skip


def send_resending(http, method: str, url: str, resets: Counter[str], lock: threading.Lock, **kwargs):
    """One request, sent again (at most twice) when its connection resets before an answer.

    Straight to gunicorn (no nginx in front), a keep-alive connection the server has just closed can reset
    under a new request; sending it again is safe (every POST here carries an Idempotency-Key). Each reset
    is counted in `resets` by its kind, so the figures say how many there were."""
    import httpx

    for attempt in range(3):
        try:
            return http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            with lock:
                resets[type(exc).__name__] += 1
            if attempt == 2:
                raise
    raise AssertionError


def load_phase(hub: Tokenhub, requests: int, clients: int = 100) -> dict:
    """`requests` from `clients` concurrent clients: one in ten creates a run, the others read."""
    statuses: Counter[int] = Counter()
    created: list[str] = []
    lock = threading.Lock()
    per_client = requests // clients

    resets: Counter[str] = Counter()

    def send(http, method: str, url: str, **kwargs):
        return send_resending(http, method, url, resets, lock, **kwargs)

    def client(n: int) -> None:
        import httpx

        mine: list[str] = []
        headers = {"Authorization": f"Bearer {hub.key}", "X-Forwarded-Proto": "https"}
        with httpx.Client(base_url=hub.base, headers=headers, timeout=60) as http:
            for i in range(per_client):
                if i % 10 == 0 or not mine:
                    body = {"tool": "listing-writer", "input": product(n * 1000 + i)}
                    key = {"Idempotency-Key": f"load-{n}-{i}-{uuid.uuid4().hex[:8]}"}
                    response = send(http, "POST", "/api/v1/runs", json=body, headers=key)
                    if response.status_code == 202:
                        mine.append(response.json()["id"])
                elif i % 2:
                    response = send(http, "GET", f"/api/v1/runs/{random.choice(mine)}")
                else:
                    response = send(http, "GET", "/api/v1/wallet")
                with lock:
                    statuses[response.status_code] += 1
        with lock:
            created.extend(mine)

    started = time.time()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - started
    hub.wait(created)
    check_ledger()
    return {"requests": sum(statuses.values()), "clients": clients, "errors_5xx": sum(c for s, c in statuses.items() if s >= 500),
            "statuses": dict(statuses), "rate": sum(statuses.values()) / elapsed, "runs": len(created),
            "resets": dict(resets)}  # fmt: skip


def hot_wallet_phase(hub: Tokenhub, clients: int = 100, per_client: int = 5) -> dict:
    """`clients` concurrent clients creating runs at once, all on one store's wallet, then the same on one
    wallet each: POST /api/v1/runs latency, p50 / p99. The difference is what the wallet's row lock costs a
    store's own burst (the web's threads queue both alike)."""
    import httpx

    from merchants.actors import Actor
    from merchants.api_keys import api_key_create
    from tests.factories import MerchantFactory
    from wallets.services import promotion_credit, wallet_of

    def spread_keys() -> list[str]:
        keys = []
        for _ in range(clients):
            merchant = MerchantFactory(slug=f"bench-hot-{uuid.uuid4().hex[:8]}")
            promotion_credit(wallet=wallet_of(merchant=merchant), amount=10**9, key=f"bench:{uuid.uuid4()}",
                             actor=Actor.system("bench"))  # fmt: skip
            keys.append(
                api_key_create(merchant=merchant, name="bench", rate_limit_per_minute=1_000_000).raw_key
            )
        return keys

    def burst(keys: list[str]) -> dict:
        latencies: list[float] = []
        created: list[str] = []
        failures: list[BaseException] = []
        resets: Counter[str] = Counter()
        lock = threading.Lock()
        start = threading.Barrier(clients)

        def client(n: int) -> None:
            headers = {"Authorization": f"Bearer {keys[n]}", "X-Forwarded-Proto": "https"}
            with httpx.Client(base_url=hub.base, headers=headers, timeout=60) as http:
                http.get("/api/v1/wallet")  # the connection, opened before the burst
                start.wait()
                for i in range(per_client):
                    body = {"tool": "listing-writer", "input": product(n * 100 + i)}
                    key = {"Idempotency-Key": f"hot-{n}-{i}-{uuid.uuid4().hex[:8]}"}
                    sent = time.perf_counter()
                    response = send_resending(
                        http, "POST", "/api/v1/runs", resets, lock, json=body, headers=key
                    )
                    took = (time.perf_counter() - sent) * 1000
                    if response.status_code != 202:
                        raise RuntimeError(
                            f"POST /api/v1/runs answered {response.status_code}: {response.text[:300]}"
                        )
                    with lock:
                        latencies.append(took)
                        created.append(response.json()["id"])

        def guarded(n: int) -> None:
            try:
                client(n)
            except BaseException as exc:  # a client that died must fail the phase, not shrink it
                start.abort()  # nobody waits for it at the start line
                with lock:
                    failures.append(exc)

        threads = [threading.Thread(target=guarded, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise RuntimeError(f"{len(failures)} of {clients} hot-wallet clients failed: {failures[0]!r}")
        hub.wait(created)
        check_ledger()
        return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "creates": len(latencies),
                "resets": sum(resets.values())}  # fmt: skip

    one = burst([hub.key] * clients)
    spread = burst(spread_keys())
    return {"clients": clients, "per_client": per_client, "one_wallet": one, "own_wallets": spread}


def profile(hub: Tokenhub, runs: int) -> str:
    """py-spy (`--gil`: only the thread holding the GIL, i.e. Python on the CPU) on the web processes and the
    worker during drains of `runs`; per side, ms of GIL time per run spent inside each function."""
    spy = ROOT / ".venv/bin/py-spy"
    if not spy.exists():
        return "py-spy is not installed (pip install -e '.[dev]')."
    duration, rate = 25, 200
    outs: dict[str, Path] = {}
    spies = []
    for name, pid in [("worker", hub.worker.pid)] + [(f"web-{p}", p) for p in children(hub.web.pid)]:
        out = LOG_DIR / f"tokenhub-bench-spy-{name}-{os.getpid()}.txt"
        outs[name] = out
        spies.append(subprocess.Popen([str(spy), "record", "--pid", str(pid), "--duration", str(duration),
                                       "--rate", str(rate), "--gil", "--format", "raw", "--output", str(out),
                                       "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
    time.sleep(1)
    deadline = time.time() + duration - 3
    done = 0
    while time.time() < deadline:
        hub.send_batch(min(runs, 200))
        done += min(runs, 200)
    for proc in spies:
        proc.wait(timeout=60)
    return "\n".join(
        spy_report(side, [out for name, out in outs.items() if name.startswith(side)], rate, done)
        for side in ("web", "worker")
    )


def spy_report(side: str, files: list[Path], rate: int, runs: int, top: int = 30) -> str:
    inclusive: Counter[str] = Counter()
    total = 0
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            seen = set()
            for frame in stack.split(";"):
                name, _, where = frame.partition(" (")
                module = where.split(":")[0].replace("/work/main/", "").split("site-packages/")[-1]
                key = f"{name} ({module})"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += n
    per_run = total / rate / max(runs, 1) * 1000
    lines = [
        f"{side}: {per_run:.1f} ms of GIL time per run ({total} samples at {rate} Hz, {runs} runs); inside:"
    ]
    # The frames every sample passes through (threads, the middleware chain, Celery's tracer) say nothing.
    skip = ("threading.py", "concurrent/futures", "gthread.py", "iddleware", "django/core/handlers",
            "deprecation.py", "csrf.py", "generic/base.py", "rest_framework/views.py", "celery/app/trace.py")  # fmt: skip
    shown = 0
    for key, n in inclusive.most_common():
        if any(s in key for s in skip):
            continue
        lines.append(f"  {n / rate / max(runs, 1) * 1000:6.2f} ms  {n / max(total, 1) * 100:5.1f} %  {key}")
        shown += 1
        if shown >= top:
            break
    return "\n".join(lines)


def machine() -> dict:
    from django.db import connection

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return {"nproc": os.cpu_count(), "cpu": cpu, "pg": pg, "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=400, help="Units per throughput phase.")
    parser.add_argument("--latencies", default="0,2000", help="Simulator latencies in ms, comma-separated.")
    parser.add_argument("--load", type=int, default=20000, help="Requests in the load phase (0: skip).")
    parser.add_argument(
        "--hot", type=int, default=100, help="Concurrent clients in the hot-wallet phase (0: skip)."
    )
    parser.add_argument("--profile", action="store_true", help="Sample web and worker with py-spy.")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave RESULTS.md alone.")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(
        ("postgres://", "postgresql://")
    ) or not os.environ.get("REDIS_URL"):
        sys.exit(
            "Set DATABASE_URL to a scratch PostgreSQL database and REDIS_URL to a Redis db (it is flushed)."
        )
    setup_django()
    if leftover := leftover_runs_cancel():
        print(f"canceled {leftover:,} queued runs an earlier use of this database left", flush=True)
    check_ledger()
    import redis
    from django.conf import settings

    load_start = os.getloadavg()
    procs = Procs()
    rows = []
    load = None
    hot = None
    spy = ""
    try:
        for latency in [int(x) for x in args.latencies.split(",")]:
            redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
            port = free_port()
            procs.start(
                [
                    sys.executable,
                    "manage.py",
                    "qwen_simulator",
                    "--port",
                    str(port),
                    "--latency-ms",
                    str(latency),
                ],
                log="sim",
            )
            wait_until(lambda port=port: port_open(port), 60, "the simulator")
            model_url = f"http://127.0.0.1:{port}/v1"
            model, messages, max_tokens = tool_messages()
            p50 = model_p50(model_url, model, messages, max_tokens)
            engine = Engine(procs, model_url, model, messages, max_tokens)
            hub = Tokenhub(procs, model_url)
            # Interleaved: engine, Tokenhub, engine, Tokenhub; each system's better round is kept.
            results: dict[str, list[dict]] = {"engine": [], "tokenhub": []}
            for _round in range(2):
                results["engine"].append(engine_phase(engine, args.runs, p50))
                print("engine", latency, results["engine"][-1], flush=True)
                results["tokenhub"].append(tokenhub_phase(hub, args.runs, p50))
                print("tokenhub", latency, results["tokenhub"][-1], flush=True)
            best = {
                k: min(v, key=lambda r: r["cpu_ms"]) | {"throughput": max(r["throughput"] for r in v)}
                for k, v in results.items()
            }
            rows.append({"latency": latency, "model_ms": p50 * 1000, **{k: best[k] for k in best}})
            if latency == 0 and args.load:
                load = load_phase(hub, args.load)
                print("load", load, flush=True)
            if latency == 0 and args.hot:
                hot = hot_wallet_phase(hub, args.hot)
                print("hot wallet", hot, flush=True)
            if latency == 0 and args.profile:
                spy = profile(hub, args.runs)
                print(spy, flush=True)
            procs.stop_all()
    finally:
        procs.stop_all()
    load_end = os.getloadavg()
    section = render(args, rows, load, hot, spy, machine(), load_start, load_end)
    print(section)
    if not args.no_write:
        write_section("## Side by side", section)


def render(args, rows, load, hot, spy, mach, load_start, load_end) -> str:
    busiest = max(load_start[0], load_end[0])
    machine_state = (
        "Taken on a quiet machine (nothing else running)"
        if busiest < 1.0
        else "**Taken on a shared, loaded machine** (other work ran meanwhile)"
    )
    lines = [
        "| model latency | system | throughput end to end | CPU per unit (web + worker) | overhead p50 / p99 at 10/s |",
        "|---|---|---|---|---|",
    ]
    ratios = []
    for r in rows:
        e, t = r["engine"], r["tokenhub"]
        lines.append(f"| {r['latency']} ms (call p50 {r['model_ms']:.1f} ms) | bare engine | {e['throughput']:.0f} tasks/s "
                     f"| {e['cpu_ms']:.1f} ms (worker) | {e['p50']:.1f} / {e['p99']:.1f} ms |")  # fmt: skip
        lines.append(f"| | Tokenhub | {t['throughput']:.0f} runs/s | {t['cpu_ms']:.1f} ms ({t['web_ms']:.1f} + {t['worker_ms']:.1f}) "
                     f"| {t['p50']:.1f} / {t['p99']:.1f} ms |")  # fmt: skip
        ratios.append(f"- at {r['latency']} ms: throughput Tokenhub ÷ engine **{t['throughput'] / e['throughput']:.2f}x**, "
                      f"CPU per unit Tokenhub ÷ engine **{t['cpu_ms'] / e['cpu_ms']:.1f}x**, "
                      f"overhead p50 / p99 {t['p50']:.1f} / {t['p99']:.1f} ms (engine {e['p50']:.1f} / {e['p99']:.1f} ms); "
                      f"of Tokenhub's, p50: the POST answered after {t['answer_p50']:.1f} ms, the worker claimed the run "
                      f"{t['claim_p50']:.1f} ms after the POST was sent, the claim, the call and the settlement took {t['settle_p50']:.1f} ms past the model's")  # fmt: skip
    load_text = ""
    if load:
        load_text = (f"\nLoad: {load['requests']:,} requests from {load['clients']} concurrent clients over HTTP "
                     f"(one in ten creates a run: {load['runs']:,} runs; the rest read a run or the wallet), "
                     f"{load['rate']:.0f} requests/s, **{load['errors_5xx']} answered 5xx** (statuses {load['statuses']}; "
                     f"connections reset before an answer and sent again: {load['resets'] or 'none'}); "
                     "`reconcile_ledger()` clean once every run had finished.\n")  # fmt: skip
    hot_text = ""
    if hot:
        one, own = hot["one_wallet"], hot["own_wallets"]
        hot_text = (f"\nHot wallet: {hot['clients']} clients at once, {hot['per_client']} creates each "
                    f"({one['creates']:,} runs), POST /api/v1/runs latency p50 / p99: all on one store's wallet "
                    f"**{one['p50']:.0f} / {one['p99']:.0f} ms**, each on its own wallet {own['p50']:.0f} / {own['p99']:.0f} ms "
                    f"(one ÷ own p50 **{one['p50'] / own['p50']:.2f}x**; connections reset before an answer and sent again: "
                    f"{one['resets'] + own['resets'] or 'none'}); `reconcile_ledger()` clean after each.\n")  # fmt: skip
    command = (
        "DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenhub_bench_versus REDIS_URL=redis://127.0.0.1:6379/6 \\\n"
        f"    .venv/bin/python bench/versus.py --runs {args.runs} --latencies {args.latencies} --load {args.load} --hot {args.hot}"
        + (" --profile" if args.profile else "")
        + "\n(or `make bench`, which runs it with bench/ledger.py and the others)"
    )
    spy_text = (
        f"\nWhere the CPU goes (py-spy, own time by library, idle waits left out):\n\n```\n{spy}\n```\n"
        if spy
        else ""
    )
    return f"""## Side by side

Tokenhub's real API (gunicorn, `platform/gunicorn.conf.py`) and worker (the Procfile's `-P threads -c 100`,
INFO logging), both with DATABASE_POOL_MAX_SIZE=12 as `platform/production.env.example` sets it for every
process, runs created by POST /api/v1/runs over HTTP with an API key,
against the bare engine it is built on (`bench/baseline/engine.py`: a Celery threads worker, `-c 100`, whose
task makes one openai SDK call and one INSERT; tasks sent straight to the broker), both on the same
Qwen simulator, in one run, interleaved (engine, Tokenhub, engine, Tokenhub; the better round of each).
Throughput: {args.runs:,} units from {CLIENT_THREADS} client threads, first send to last finish. CPU per unit:
utime+stime from `/proc/<pid>/stat` of the gunicorn master and workers (web) and of the worker process over
that phase, divided by the units (the engine has no web side; the bench's own client CPU is counted for
neither). Overhead: {STEADY_UNITS} units one every 100 ms; finished minus sent minus the model call's p50 (direct
SDK calls). Every Tokenhub phase ends with `reconcile_ledger()` clean.

```
{command}
```

{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {mach["nproc"]} CPUs (nproc), {mach["cpu"]}; PostgreSQL {mach["pg"]}, Python {mach["python"]};
simulator, both systems, PostgreSQL, Redis and the bench client on the same host. {machine_state}: load average {load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f}
at the start, {load_end[0]:.1f} / {load_end[1]:.1f} / {load_end[2]:.1f} at the end. Absolute figures move a lot between runs
here; the ratios, measured side by side in one run, are the figures to compare.

{chr(10).join(lines)}

{chr(10).join(ratios)}
{load_text}{hot_text}{spy_text}"""


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
