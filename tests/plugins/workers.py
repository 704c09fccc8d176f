"""Fixtures and helpers for run tests: funded merchants, a real Celery worker, waiting for runs to finish.

A pytest plugin (tests/conftest.py lists it): its fixtures are everywhere; import its helpers by name.

Two kinds of real worker:
- `celery_worker`: in this process (`celery.contrib.testing.worker.start_worker`, threads pool), for
  `django_db(transaction=True)` tests, so rows are committed and the worker's threads see them. Test
  settings (retries, timeouts, backoff) apply to it directly.
- `worker_process`: `celery -A tokenhub worker` as a subprocess on the test database, for tests that must
  kill a worker (SIGKILL); it takes settings through its environment.
The broker is the Redis db of REDIS_URL, flushed before and after each test.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from agents.models import Run
from merchants.actors import Actor
from merchants.models import Merchant
from tests.concurrency import run_in_threads as race_threads
from tests.factories import FundedMerchantFactory
from tokenhub.celery import app
from wallets.models import Account, Transfer

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = Actor.system("tests")
_names = itertools.count()


# --- Data -----------------------------------------------------------------------------------------


def product_name(prefix: str = "Aurora Lamp") -> str:
    """A product name unique to this test, so a simulator fault can match only this run's prompt."""
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def listing(name: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "product_name": name or product_name(),
        "category": "Home lighting",
        "features": ["Dimmable warm light", "USB-C charging"],
        "keywords": ["desk lamp"],
        **fields,
    }


def funded(tokens: int, **merchant_fields: Any) -> Merchant:
    return FundedMerchantFactory(tokens=tokens, **merchant_fields)


def wallet(merchant: Merchant) -> Account:
    return Account.objects.get(merchant=merchant, kind="wallet")


def ledger_of(run: Run) -> dict[str, list[Transfer]]:
    """The run's hold and whatever resolved it, by kind."""
    transfers = Transfer.objects.filter(pk=run.hold_id) | Transfer.objects.filter(pending_id=run.hold_id)
    kinds: dict[str, list[Transfer]] = {}
    for transfer in transfers.order_by("id"):
        kinds.setdefault(transfer.kind, []).append(transfer)
    return kinds


def charged(run: Run) -> int:
    return sum(t.amount for t in ledger_of(run).get("settle", []))


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if result := predicate():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def wait_finished(*run_ids: Any, timeout: float = 30.0) -> list[Run]:
    ids = [getattr(r, "pk", r) for r in run_ids]

    def finished() -> list[Run] | None:
        runs = list(Run.objects.filter(pk__in=ids))
        return runs if len(runs) == len(ids) and all(r.is_finished for r in runs) else None

    runs = wait_for(finished, timeout=timeout)
    by_id = {r.pk: r for r in runs}
    return [by_id[i] for i in ids]


def run_in_threads(count: int, target: Callable[[int], object], connections: int = 20) -> list[object]:
    """The shared race helper, with at most 20 database connections at once by default."""
    return race_threads(count, target, connections=connections)


# --- Broker and workers ---------------------------------------------------------------------------


def _flush_broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        redis.Redis.from_url(url).flushdb()


@pytest.fixture
def broker() -> Iterator[str]:
    """The Redis broker, empty before and after the test."""
    _flush_broker()
    yield settings.CELERY_BROKER_URL
    _flush_broker()


@pytest.fixture
def fast_retries(settings: Any) -> Any:
    """Retries milliseconds apart. Only the sleeps are shortened: the number of retries, the deadlines
    and the timeouts that decide what happens stay the production defaults."""
    settings.QWEN_RETRY_BACKOFF_SECONDS = 0.05
    settings.QWEN_RETRY_BACKOFF_MAX_SECONDS = 0.2
    return settings


@pytest.fixture(autouse=True)
def _worker_state_reset() -> Iterator[None]:
    """An in-process worker that drained must not leave this process refusing runs for the next test."""
    from agents.runs import leases

    leases.registry.draining.clear()
    yield
    leases.registry.draining.clear()


@contextlib.contextmanager
def in_process_worker(concurrency: int = 8) -> Iterator[Any]:
    with start_worker(
        app,
        pool="threads",
        concurrency=concurrency,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=15,
    ) as worker:
        yield worker


@pytest.fixture
def celery_worker(transactional_db: None, broker: str) -> Iterator[Any]:
    """A real worker (threads pool, 16 threads) in this process, stopped before the database is flushed."""
    from agents.runs import leases

    try:
        with in_process_worker(concurrency=16) as worker:
            yield worker
    finally:
        leases.heartbeat.stop()  # its thread must not touch the database once the test flushes it


class WorkerProcess:
    """`celery -A tokenhub worker` on the test database; `kill()` sends SIGKILL, as a crashed host would."""

    def __init__(self, env: dict[str, str], concurrency: int) -> None:
        self.env = env
        self.concurrency = concurrency
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(f"/tmp/tokenhub-test-worker-{os.getpid()}-{next(_names)}.log")  # noqa: S108

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        command = [
            sys.executable, "-m", "celery", "-A", "tokenhub", "worker", "-P", "threads",
            "-c", str(self.concurrency), "-l", "INFO", "--without-mingle", "--without-gossip",
            "--without-heartbeat", "-n", f"test-{uuid.uuid4().hex[:6]}@%h",
        ]  # fmt: skip
        self.log.write_bytes(b"")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        wait_for(lambda: b" ready." in self.log.read_bytes() or self.proc.poll() is not None, timeout=timeout)
        if self.proc.poll() is not None:
            raise RuntimeError(f"The worker exited at start-up:\n{self.log.read_text()[-3000:]}")
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_process(transactional_db: None, broker: str) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker processes on the test database: `worker_process(QWEN_BASE_URL=..., ...)`."""
    started: list[WorkerProcess] = []
    db = settings.DATABASES["default"]

    def start(concurrency: int = 8, **env: Any) -> WorkerProcess:
        auth = f"{db['USER']}:{db['PASSWORD']}" if db.get("PASSWORD") else db["USER"]
        url = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        environment = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "false",
            **{k: str(v) for k, v in env.items()},
        }
        worker = WorkerProcess(environment, concurrency).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
