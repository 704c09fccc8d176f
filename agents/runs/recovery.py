"""Recovery: no run stays unfinished, no hold stays forever, and nothing needs a human.

Every RUN_RECOVERY_INTERVAL_SECONDS one process (beat's task, or any worker's heartbeat thread, whichever
takes the Redis lock first) sweeps:
- `running` whose lease lapsed (its worker died: SIGKILL, OOM, a lost machine): taken back to the queue
  and run again under a new claim, at most RUN_MAX_RECOVERIES times, then failed as `worker_lost`;
- `running` or `queued` past the run's deadline: failed with the honest reason (the provider's last busy
  answer if it was retrying, else `timed_out`);
- `queued` whose message seems lost (not claimed RUN_REQUEUE_AFTER after it was enqueued or due): enqueued
  again. A duplicate message is harmless: only one delivery can claim a run;
- `queued` that no worker started within RUN_QUEUE_TIMEOUT: failed as `not_started`.
Each change is the same conditional, row-locked transaction as settling (`agents.runs.settle`), so a
worker finishing at this instant and recovery can never both win.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.models import Run
from agents.runs.create import run_enqueue
from agents.runs.messages import NOT_STARTED_MESSAGE, TIMED_OUT_MESSAGE, gave_up_message, worker_lost_message
from agents.runs.settle import TIMED_OUT, WORKER_LOST, run_finish_unpaid, run_requeue
from merchants.actors import Actor
from tokenhub import metrics
from tokenhub.redis import REDIS_ERRORS, shared_redis

logger = logging.getLogger(__name__)

Status = Run.Status
RECOVERY = Actor.system("run recovery")
NOT_STARTED = "not_started"
LOCK_KEY = "tokenhub:runs-recovery"


def _fail_overdue(run: Run, now: datetime) -> bool:
    """A run past its deadline ends with the reason it did not finish."""
    if run.retry_cause:
        code, message = run.retry_cause, gave_up_message(run.retry_cause, run.retries + 1)
    else:
        code, message = TIMED_OUT, TIMED_OUT_MESSAGE
    return (
        run_finish_unpaid(
            run_id=run.pk,
            where=Q(status=run.status, attempts=run.attempts, deadline_at__lt=now),
            status=Status.FAILED,
            code=code,
            message=message,
            actor=RECOVERY,
        )
        is not None
    )


def runs_recover(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """One sweep. Returns how many runs it took back, re-enqueued, and failed, by reason."""
    now = now or timezone.now()
    counts = {"recovered": 0, "requeued": 0, "timed_out": 0, WORKER_LOST: 0, NOT_STARTED: 0}
    fields = ("pk", "status", "attempts", "recoveries", "retries", "retry_cause", "deadline_at")

    overdue = Run.objects.filter(status__in=[Status.QUEUED, Status.RUNNING], deadline_at__lt=now).only(
        *fields
    )
    for run in overdue[:batch]:
        counts["timed_out"] += _fail_overdue(run, now)

    lapsed = Run.objects.filter(status=Status.RUNNING, lease_expires_at__lt=now).only(*fields)
    for run in lapsed[:batch]:
        where = Q(status=Status.RUNNING, attempts=run.attempts, lease_expires_at__lt=now)
        if run.recoveries >= settings.RUN_MAX_RECOVERIES:
            failed = run_finish_unpaid(
                run_id=run.pk,
                where=where,
                status=Status.FAILED,
                code=WORKER_LOST,
                message=worker_lost_message(run.recoveries + 1),
                actor=RECOVERY,
            )
            counts[WORKER_LOST] += failed is not None
        elif run_requeue(
            run_id=run.pk, where=where, waiting=Run.Waiting.WORKER_LOST, recoveries=F("recoveries") + 1
        ):
            counts["recovered"] += 1

    never_started = now - settings.RUN_QUEUE_TIMEOUT
    for run_id in list(
        Run.objects.filter(
            status=Status.QUEUED, started_at__isnull=True, created_at__lt=never_started
        ).values_list("pk", flat=True)[:batch]
    ):
        failed = run_finish_unpaid(
            run_id=run_id,
            where=Q(status=Status.QUEUED, started_at__isnull=True),
            status=Status.FAILED,
            code=NOT_STARTED,
            message=NOT_STARTED_MESSAGE,
            actor=RECOVERY,
        )
        counts[NOT_STARTED] += failed is not None

    cutoff = now - settings.RUN_REQUEUE_AFTER
    stale = Run.objects.filter(status=Status.QUEUED, enqueued_at__lt=cutoff).filter(
        Q(not_before__isnull=True) | Q(not_before__lt=cutoff)
    )
    for run_id in list(stale.values_list("pk", flat=True)[:batch]):
        with transaction.atomic():
            # Conditional, so two overlapping sweeps re-enqueue a run once per threshold, not twice.
            bumped = Run.objects.filter(pk=run_id, status=Status.QUEUED, enqueued_at__lt=cutoff).update(
                requeues=F("requeues") + 1, enqueued_at=now
            )
            if bumped:
                transaction.on_commit(partial(run_enqueue, run_id))
        counts["requeued"] += bumped

    for outcome, count in counts.items():
        if count:
            metrics.incr("runs_recovery_total", count, outcome=outcome)
    if any(counts.values()):
        logger.info("Runs recovery: %s", counts)
    return counts


def runs_recover_if_due() -> dict[str, int] | None:
    """Sweep unless another process swept within the interval (a Redis lock that expires by itself)."""
    if settings.REDIS_URL:
        interval_ms = int(float(settings.RUN_RECOVERY_INTERVAL_SECONDS) * 1000)
        try:
            got = shared_redis(settings.REDIS_URL).set(LOCK_KEY, "1", nx=True, px=max(500, interval_ms - 250))
        except REDIS_ERRORS:
            got = True  # without the lock every process sweeps: conditional updates keep that safe
        if not got:
            return None
    return runs_recover()
