"""Leases: how a worker proves it is still working on its runs, and hands them back when it stops.

A claimed run carries `lease_expires_at` (RUN_LEASE_SECONDS ahead). Each worker process keeps a registry
of the runs it has in flight and one heartbeat thread that, every third of a lease, renews all their leases
in a single UPDATE, records the worker's own heartbeat (for /healthz) and takes its turn at recovery
(`agents.runs.recovery`), so runs recover even while beat is down. A worker that dies stops renewing; a
lapsed lease is what recovery looks for.

On SIGTERM (a deploy, a scale-down) the worker drains: it takes no new runs, lets calls in flight finish
for RUN_SHUTDOWN_GRACE_SECONDS, then hands the rest back to the queue at once and stops their calls, so
another worker runs them again within seconds instead of after their lease or deadline.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from agents.llm.deadline import CallBudget
from agents.models import Run
from agents.runs.recovery import runs_recover_if_due
from agents.runs.settle import run_requeue, running_under
from tokenhub import heartbeats

logger = logging.getLogger(__name__)


@dataclass
class InFlight:
    run_id: uuid.UUID
    claim: int
    budget: CallBudget


class Registry:
    """The runs this process is calling the model for right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[uuid.UUID, InFlight] = {}
        self.draining = threading.Event()

    @contextlib.contextmanager
    def holding(self, run_id: uuid.UUID, claim: int, seconds: float) -> Iterator[InFlight]:
        entry = InFlight(run_id=run_id, claim=claim, budget=CallBudget(seconds))
        with self._lock:
            self._runs[run_id] = entry
        try:
            yield entry
        finally:
            with self._lock:
                if self._runs.get(run_id) is entry:
                    del self._runs[run_id]

    def snapshot(self) -> list[InFlight]:
        with self._lock:
            return list(self._runs.values())

    def __len__(self) -> int:
        return len(self._runs)


registry = Registry()


def lease_until() -> datetime:
    return timezone.now() + timedelta(seconds=settings.RUN_LEASE_SECONDS)


def leases_renew(entries: list[InFlight]) -> int:
    """Renew the leases of these in-flight runs in one statement. Runs taken back meanwhile don't match."""
    if not entries:
        return 0
    claims = Q()
    for entry in entries:
        claims |= Q(pk=entry.run_id, attempts=entry.claim)
    return Run.objects.filter(claims, status=Run.Status.RUNNING).update(lease_expires_at=lease_until())


def hand_back(entries: list[InFlight]) -> int:
    """Give these runs back to the queue now and stop their calls (a draining worker)."""
    handed = 0
    try:
        for entry in entries:
            handed += run_requeue(
                run_id=entry.run_id, where=running_under(entry.claim), waiting=Run.Waiting.HANDED_BACK
            )
            entry.budget.abort()
    finally:
        connection.close()
    if handed:
        logger.warning("Worker shutting down: handed %s runs back to the queue.", handed)
    return handed


class Heartbeat:
    """The worker process's background thread: lease renewal, liveness, and its turn at recovery."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="run-heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        interval = max(1.0, settings.RUN_LEASE_SECONDS / 3)
        recover_every = float(settings.RUN_RECOVERY_INTERVAL_SECONDS)
        last_renewal = last_recovery = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now - last_renewal >= interval:
                    last_renewal = now
                    leases_renew(registry.snapshot())
                    heartbeats.beat("worker", in_flight=len(registry))
                if now - last_recovery >= recover_every and not registry.draining.is_set():
                    last_recovery = now
                    runs_recover_if_due()
            except Exception:  # the heartbeat must outlive a database or Redis blip
                logger.exception("Run heartbeat failed; trying again shortly.")
            finally:
                connection.close()
            self._stop.wait(1.0)


heartbeat = Heartbeat()


def drain(grace: float | None = None) -> None:
    """SIGTERM: stop taking runs, let calls finish for `grace` seconds, then hand the rest back."""
    grace = float(settings.RUN_SHUTDOWN_GRACE_SECONDS if grace is None else grace)
    registry.draining.set()

    def later() -> None:
        deadline = time.monotonic() + grace
        while len(registry) and time.monotonic() < deadline:
            time.sleep(0.2)
        if len(registry):
            hand_back(registry.snapshot())

    threading.Thread(target=later, name="run-drain", daemon=True).start()
