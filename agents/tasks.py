"""Celery tasks: an id in, one service call. Enqueued on commit (`agents.runs.create.run_enqueue`).

`run_execute` never retries through Celery: the engine itself puts a busy run back in the queue with its
own bounded counter (QWEN_MAX_RETRIES), so no framework default can cut retries short or stretch them.
`acks_late` plus the claim make a redelivered message harmless; leases (not redelivery) recover the runs
of a worker that died. The worker's signals start the lease heartbeat and drain on SIGTERM.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task, signals

from agents.runs import execute, leases, recovery
from agents.runs.create import run_enqueue


@shared_task(name="agents.tasks.run_execute", acks_late=True, ignore_result=True, max_retries=0)
def run_execute(run_id: str, claim: int | None = None) -> str:
    # `claim` is accepted (and ignored) so messages queued by an older release still run.
    del claim
    outcome = execute.run_execute(run_id=run_id)
    if outcome.status == "draining":
        run_enqueue(run_id)  # a draining worker gives the message back for another worker to take
    return outcome.status


@shared_task(name="agents.tasks.runs_recover", ignore_result=True)
def runs_recover() -> dict[str, int] | None:
    return recovery.runs_recover_if_due()


@signals.worker_ready.connect
def _start_heartbeat(**_kwargs: Any) -> None:
    leases.registry.draining.clear()
    leases.heartbeat.start()


@signals.worker_shutting_down.connect
def _drain(**_kwargs: Any) -> None:
    leases.drain()


@signals.worker_shutdown.connect
def _stop_heartbeat(**_kwargs: Any) -> None:
    leases.heartbeat.stop()
