"""Runs end to end: throughput, and the platform's own overhead per run beyond the model's latency.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenhub_runs REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/runs.py [--runs 200] [--latencies 0,2000] [--no-write]

Uses the database in DATABASE_URL (migrated here; meant for a scratch database) and flushes the Redis db
in REDIS_URL (the broker). For each simulator latency it starts the Qwen simulator and one real worker
(`celery -A tokenhub worker -P threads -c 100`) as subprocesses, then:
- model: the simulator's own answer time, from direct `agents.llm.complete` calls (sequential);
- overhead: runs created one at a time (10/s, below capacity, so nothing queues for long); per run
  `finished_at - created_at - model p50`: validation and estimate are excluded (they happen before
  created_at), enqueue, broker, claim, connection handling, parsing, settlement are included;
- throughput: `--runs` runs created by 8 threads at once; runs/s from the first create to the last finish.
Each phase ends with `reconcile_ledger()` clean and no hold pending. Writes the "Runs" section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from results import write_section  # bench/ is the script's folder, so on sys.path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
CONCURRENCY = 100
OVERHEAD_RUNS = 40


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokenhub.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
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


class Processes:
    """The simulator and one worker, as subprocesses, for one configuration."""

    def __init__(self, latency_ms: int, pool: int) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.latency_ms, self.pool = latency_ms, pool
        self.log = Path(f"/tmp/tokenhub-bench-worker-{os.getpid()}.log")  # noqa: S108
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Processes:
        python = sys.executable
        sim = [
            python,
            "manage.py",
            "qwen_simulator",
            "--port",
            str(self.port),
            "--latency-ms",
            str(self.latency_ms),
        ]
        self.procs.append(
            subprocess.Popen(sim, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        wait_until(lambda: port_open(self.port), 60, "the simulator")
        return self

    def start_worker(self) -> None:
        python = sys.executable
        env = {**os.environ, "QWEN_BASE_URL": self.base_url, "QWEN_API_KEY": "", "RUN_DB_CONCURRENCY": "10"}
        if self.pool:
            env["DATABASE_POOL_MAX_SIZE"] = str(self.pool)
        worker = [python, "-m", "celery", "-A", "tokenhub", "worker", "-P", "threads", "-c", str(CONCURRENCY),
                  "-l", "WARNING", "--without-mingle", "--without-gossip", "--without-heartbeat",
                  "-n", f"bench-{uuid.uuid4().hex[:6]}@%h"]  # fmt: skip
        self.log.write_bytes(b"")
        with self.log.open("ab") as log:
            self.procs.append(subprocess.Popen(worker, cwd=ROOT, env=env, stdout=log, stderr=log))
        from tokenhub.celery import app

        wait_until(lambda: bool(app.control.ping(timeout=0.5)), 60, "the worker")

    def __exit__(self, *exc) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    def stats(self) -> dict:
        import httpx

        return httpx.get(self.base_url.removesuffix("/v1") + "/_sim/stats", timeout=5).json()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def product(i: int) -> dict:
    return {"product_name": f"Bench Lamp {i}", "category": "Lighting", "features": ["Dimmable", "USB-C"]}


def model_latency(base_url: str, calls: int = 15) -> float:
    """p50 seconds of a direct call: what the model (here, the simulator) costs, without the platform."""
    from django.test import override_settings

    from agents import llm
    from agents.tools import registry
    from agents.tools.base import MerchantProfile

    tool = registry.get("listing-writer")
    messages = tool.build_messages(product(0), MerchantProfile(store_name="Bench"))
    times = []
    with override_settings(QWEN_BASE_URL=base_url, QWEN_API_KEY=""):
        for _ in range(calls):
            started = time.perf_counter()
            llm.complete(model=tool.model, messages=messages, max_tokens=tool.max_tokens)
            times.append(time.perf_counter() - started)
    return statistics.median(times[2:])  # the first calls open connections


def create_runs(merchant, count: int, *, threads: int, spacing: float = 0.0) -> list:
    from django.db import connection

    from agents.runs.create import run_create
    from merchants.actors import Actor

    actor = Actor.system("bench")

    def one(i: int):
        return run_create(merchant=merchant, tool="listing-writer", input=product(i), actor=actor).pk

    if threads == 1:
        ids = []
        for i in range(count):
            ids.append(one(i))
            time.sleep(spacing)
        return ids
    # Each thread keeps its connection for the whole phase, as a web worker would.
    with ThreadPoolExecutor(threads, initializer=lambda: None) as pool:
        ids = list(pool.map(one, range(count)))
        list(pool.map(lambda _: connection.close(), range(threads)))
    return ids


def wait_finished(ids: list, timeout: float = 300) -> list:
    from agents.models import Run

    deadline = time.monotonic() + timeout
    while True:
        runs = list(Run.objects.filter(pk__in=ids))
        if all(r.is_finished for r in runs) and len(runs) == len(ids):
            return runs
        if time.monotonic() > deadline:
            raise RuntimeError("runs did not finish")
        time.sleep(0.1)


def check_ledger(merchant) -> None:
    from wallets.models import Account
    from wallets.reconcile import reconcile_ledger

    violations = reconcile_ledger()
    assert violations == [], violations
    assert Account.objects.get(merchant=merchant, kind="wallet").debits_pending == 0


def configuration(latency_ms: int, runs: int, pool: int) -> dict:
    import redis
    from django.conf import settings

    from merchants.actors import Actor
    from tests.factories import MerchantFactory
    from wallets.services import promotion_credit, wallet_of

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    merchant = MerchantFactory(slug=f"bench-{uuid.uuid4().hex[:8]}")
    promotion_credit(wallet=wallet_of(merchant=merchant), amount=10**9, key=f"bench:{uuid.uuid4()}",
                     actor=Actor.system("bench"))  # fmt: skip
    with Processes(latency_ms, pool) as procs:
        model = model_latency(procs.base_url)

        # Drain: a backlog queued before the worker starts; its rate is the worker's alone.
        backlog = create_runs(merchant, runs, threads=8)
        procs.start_worker()
        done = wait_finished(backlog)
        assert all(r.status == "succeeded" for r in done), {r.error_code for r in done}
        drain = runs / (max(r.finished_at for r in done) - min(r.started_at for r in done)).total_seconds()
        drain_in_flight = procs.stats()["max_in_flight"]

        ids = create_runs(merchant, OVERHEAD_RUNS, threads=1, spacing=0.1)
        done = wait_finished(ids)
        assert all(r.status == "succeeded" for r in done), {r.error_code for r in done}
        overhead = [(r.finished_at - r.created_at).total_seconds() - model for r in done]
        queue = [(r.started_at - r.created_at).total_seconds() for r in done]

        started = time.perf_counter()
        ids = create_runs(merchant, runs, threads=8)
        created = time.perf_counter() - started
        done = wait_finished(ids)
        assert all(r.status == "succeeded" for r in done), {r.error_code for r in done}
        first = min(r.created_at for r in done)
        last = max(r.finished_at for r in done)
    check_ledger(merchant)
    ms = [x * 1000 for x in overhead]
    return {
        "latency_ms": latency_ms, "pool": pool, "model_ms": model * 1000,
        "p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
        "queue_p50": percentile([q * 1000 for q in queue], 50),
        "create_rate": runs / created, "throughput": runs / (last - first).total_seconds(),
        "drain": drain, "max_in_flight": drain_in_flight, "runs": runs,
    }  # fmt: skip


def machine() -> str:
    from django.db import connection

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.0f} GB RAM, PostgreSQL {pg}, "
        f"Python {platform.python_version()}, Redis broker; simulator, worker and bench on the same host"
    )


def write_results(section: str) -> None:
    write_section("## Runs", section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="Runs in the throughput phase.")
    parser.add_argument("--latencies", default="0,2000", help="Simulator latencies in ms, comma-separated.")
    parser.add_argument("--pools", default="0,10", help="DATABASE_POOL_MAX_SIZE values (0: no pool).")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave RESULTS.md alone.")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.exit(
            "Set DATABASE_URL to a scratch PostgreSQL database and REDIS_URL to a Redis db for the broker."
        )
    if not os.environ.get("REDIS_URL"):
        sys.exit("Set REDIS_URL: the broker's Redis db is flushed before each configuration.")
    setup_django()
    rows = []
    for latency in [int(x) for x in args.latencies.split(",")]:
        for pool in [int(x) for x in args.pools.split(",")]:
            result = configuration(latency, args.runs, pool)
            print(result, flush=True)
            rows.append(result)
    lines = [
        "| simulator latency | DB pool | model call p50 | overhead p50 / p95 / p99 | of which queue+claim p50 "
        "| worker drain runs/s (max in flight) | runs/s end to end | run_create/s (8 threads) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['latency_ms']} ms | {r['pool'] or 'none'} | {r['model_ms']:.0f} ms "
            f"| {r['p50']:.0f} / {r['p95']:.0f} / {r['p99']:.0f} ms | {r['queue_p50']:.0f} ms "
            f"| {r['drain']:.1f} ({r['max_in_flight']}) | {r['throughput']:.1f} | {r['create_rate']:.0f} |"
        )

    def overhead_at_zero(pooled: bool) -> str:
        found = [r["p50"] for r in rows if r["latency_ms"] == 0 and bool(r["pool"]) == pooled]
        return f"{found[0]:.0f} ms" if found else "not measured"

    unpooled, pooled, load = overhead_at_zero(False), overhead_at_zero(True), os.getloadavg()
    section = f"""## Runs

End to end through a real worker (`celery -A tokenhub worker -P threads -c {CONCURRENCY}`, one process,
RUN_DB_CONCURRENCY=10) and the Qwen simulator over HTTP. *Overhead* is a run's `finished_at - created_at`
minus the model call's own p50 (measured by direct `llm.complete` calls): enqueue, broker, claim,
connection handling, parsing and settlement; {OVERHEAD_RUNS} runs created one at a time at 10/s.
*Worker drain* is a backlog of {args.runs} queued runs worked by the one worker (first claim to last
finish; in parentheses the simulator's peak of concurrent calls). *End to end* is {args.runs} runs created
by 8 threads while the worker runs, first create to last finish: on 2 cores it is bound by creation
(`run_create/s`), which shares the CPU with the worker, the simulator and PostgreSQL. Every configuration
ends with `reconcile_ledger()` clean and nothing held.

```
DATABASE_URL=postgres://postgres@127.0.0.1:5432/tokenhub_runs REDIS_URL=redis://127.0.0.1:6379/5 \\
    .venv/bin/python bench/runs.py --runs {args.runs} --latencies {args.latencies} --pools {args.pools}
```

{datetime.now(UTC):%Y-%m-%d}, {machine()}.

{chr(10).join(lines)}

Reading it: without a pool each run opens two PostgreSQL connections (claim and settle; a connection is
never held across the model call); at 0 ms the overhead p50 is {unpooled} without a pool and {pooled} with
one (`DATABASE_POOL_MAX_SIZE` >= RUN_DB_CONCURRENCY, as production sets it). The runs are created in the
bench's own process (no HTTP, no API key, no gunicorn): "Side by side" below measures what an integration
sees. Load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end (other work shares the 2 cores).
"""
    print(section)
    if not args.no_write:
        write_results(section)
        print(f"Wrote the Runs section of {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
