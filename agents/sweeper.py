"""The beat sweeper for runs a worker lost: no run stays unfinished, no hold stays forever.

- `running` past its deadline (the worker died, or its retry message was lost): failed as `timed_out`,
  hold released. The same conditional lock as settling, so a worker finishing at this instant and the
  sweeper cannot both win; the run's unique settlement key backs that up in the ledger.
- `queued` for longer than RUN_REQUEUE_AFTER (the enqueue failed, or the message was lost): enqueued
  again, at most RUN_MAX_REQUEUES times, then failed as `not_started`. A duplicate message is harmless:
  only one delivery can claim the run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.execution import run_time_out
from agents.models import Run
from agents.runs import run_enqueue, run_finish_unpaid
from wallets.actors import Actor

logger = logging.getLogger(__name__)

Status = Run.Status
SWEEPER = Actor.system("run sweeper")
NOT_STARTED_MESSAGE = "The run could not be started. Nothing was charged; please try again."


def requeue_after() -> timedelta:
    return settings.RUN_REQUEUE_AFTER


def max_requeues() -> int:
    return settings.RUN_MAX_REQUEUES


def runs_sweep(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """One sweep. Returns how many runs it timed out, re-enqueued and gave up on."""
    now = now or timezone.now()
    counts = {"timed_out": 0, "requeued": 0, "not_started": 0}

    overdue = Run.objects.filter(status=Status.RUNNING, deadline_at__lt=now).values_list("pk", flat=True)
    for run_id in list(overdue[:batch]):
        if run_time_out(run_id=run_id, where=Q(status=Status.RUNNING, deadline_at__lt=now), actor=SWEEPER):
            counts["timed_out"] += 1

    cutoff = now - requeue_after()
    stale = Run.objects.filter(status=Status.QUEUED, enqueued_at__lt=cutoff).values_list("pk", "requeues")
    for run_id, requeues in list(stale[:batch]):
        if requeues >= max_requeues():
            gave_up = run_finish_unpaid(
                run_id=run_id,
                where=Q(status=Status.QUEUED, enqueued_at__lt=cutoff),
                status=Status.FAILED,
                code="not_started",
                message=NOT_STARTED_MESSAGE,
                actor=SWEEPER,
            )
            counts["not_started"] += gave_up is not None
            continue
        with transaction.atomic():
            # Conditional, so two overlapping sweeps re-enqueue a run once per threshold, not twice.
            bumped = Run.objects.filter(pk=run_id, status=Status.QUEUED, enqueued_at__lt=cutoff).update(
                requeues=F("requeues") + 1, enqueued_at=now
            )
            if bumped:
                transaction.on_commit(partial(run_enqueue, run_id))
        counts["requeued"] += bumped

    if any(counts.values()):
        logger.info("Runs sweep: %s", counts)
    return counts
