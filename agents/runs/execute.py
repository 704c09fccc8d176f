"""Doing a run: claim it under a lease, call the model with no database connection held, settle it.

A claim is a conditional UPDATE whose result is a claim number (the run's `attempts` after it). Only the
holder of the current claim may settle, fail or requeue the run; a second delivery of a message finds
the run no longer queued and stops, and a presumed-dead worker's late answer finds its claim moved on and
is dropped. While the call is in flight the worker renews the lease (`agents.runs.leases`); if it dies,
recovery takes the run back (`agents.runs.recovery`).

Every outcome ends the call: an answer is charged; a busy provider (429, 5xx, a timeout, a reset) sends
the run back to the queue for a retry after a backoff, at most QWEN_MAX_RETRIES times and never past the
run's deadline, then fails it naming the cause; anything else fails it at once. Nothing that fails is
charged, and the hold is released in the same commit.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

from django.conf import settings
from django.db import connection, models
from django.db.models import F, Q
from django.utils import timezone

from agents import llm
from agents.errors import InvalidToolInput
from agents.llm.deadline import CallBudget
from agents.models import Run
from agents.runs.estimate import run_messages, tool_of
from agents.runs.leases import lease_until, registry
from agents.runs.messages import INTERNAL_ERROR_MESSAGE, gave_up_message
from agents.runs.settle import (
    run_fail,
    run_retry_later,
    run_succeed,
    run_time_out,
)
from agents.runs.streams import stream_publish, stream_restart
from agents.runs.usage import CallUsage, usage_record
from merchants.models import Merchant
from tokenhub import metrics
from tokenhub.logs import log_context
from wallets.caches import price_row
from wallets.models import Transfer

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=models.Model)

Status = Run.Status
# The run must settle a little before its hold times out, or the hold sweeper could expire it first.
HOLD_MARGIN = timedelta(seconds=60)
MIN_CALL_SECONDS = 5.0
REPAIR_NOTE = (
    "Your previous reply could not be used: it was not one valid JSON object following the format above. "
    "Reply again with only that JSON object."
)


@dataclass(frozen=True)
class Outcome:
    status: str  # "succeeded" | "failed" | "skipped" | "retrying" | "draining"


_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _db_slots() -> threading.BoundedSemaphore:
    global _slots
    size = max(1, settings.RUN_DB_CONCURRENCY)
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


@contextlib.contextmanager
def db_slot() -> Iterator[None]:
    """A database connection for one short step of a run (claim, or settle), then given back.

    A worker keeps 100+ model calls in flight, but PostgreSQL's max_connections (100) is shared with the
    web processes: no connection is held during a call, and at most RUN_DB_CONCURRENCY threads of a
    process touch the database at once (size a Django pool, DATABASE_POOL_MAX_SIZE, to match).
    """
    with _db_slots():
        try:
            yield
        finally:
            if not connection.in_atomic_block:  # never close a caller's (or a test's) transaction
                connection.close()


def backoff_seconds(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with equal jitter, capped; never sooner than the provider's Retry-After
    (itself capped, so a provider asking for an hour cannot park a run past its deadline)."""
    base = settings.QWEN_RETRY_BACKOFF_SECONDS
    cap = settings.QWEN_RETRY_BACKOFF_MAX_SECONDS
    delay = min(cap, base * (2**retries))
    delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security
    return max(delay, min(retry_after or 0.0, cap))


def _columns(model: type[models.Model], alias: str) -> str:
    return ", ".join(
        f"{alias}.{connection.ops.quote_name(cast(str, f.column))}" for f in model._meta.concrete_fields
    )


_converters: dict[type[models.Model], list[tuple[Any, list[Any]]]] = {}


def _from_row(model: type[M], values: Sequence[Any]) -> M:
    """A model instance from a raw row of its concrete columns, converted as a queryset converts them (a
    JSON column's text parsed, for one)."""
    fields = model._meta.concrete_fields
    if (known := _converters.get(model)) is None:
        known = []
        for field in fields:
            column = field.get_col(model._meta.db_table)
            known.append(
                (column, connection.ops.get_db_converters(column) + field.get_db_converters(connection))
            )
        _converters[model] = known
    converted = []
    for (column, converters), value in zip(known, values, strict=True):
        for converter in converters:
            value = converter(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


_RUN_FIELDS = len(Run._meta.concrete_fields)
_HOLD_FIELDS = len(Transfer._meta.concrete_fields)
_RUNS, _TRANSFERS, _MERCHANTS = (
    connection.ops.quote_name(m._meta.db_table) for m in (Run, Transfer, Merchant)
)
# The usual claim: one statement that takes the run if it is queued, due and within its deadline, and
# answers it with its hold and merchant (the call needs both).
_CLAIM_SQL_TEMPLATE = f"""
UPDATE {_RUNS} AS r
   SET status = 'running', attempts = r.attempts + 1, started_at = COALESCE(r.started_at, %(now)s),
       deadline_at = COALESCE(r.deadline_at, LEAST(%(now)s + %(run_deadline)s, h.timeout_at - %(margin)s)),
       lease_expires_at = %(lease)s
  FROM {_TRANSFERS} AS h, {_MERCHANTS} AS m{{async_commit}}
 WHERE r.id = %(run_id)s AND r.status = 'queued' AND h.id = r.hold_id AND m.id = r.merchant_id
   AND (r.not_before IS NULL OR r.not_before <= %(now)s)
   AND COALESCE(r.deadline_at, LEAST(%(now)s + %(run_deadline)s, h.timeout_at - %(margin)s)) > %(now)s
RETURNING {_columns(Run, "r")}, {_columns(Transfer, "h")}, {_columns(Merchant, "m")}
"""  # noqa: S608 (table and column names are ours, every value is a parameter)
# A claim committed on its own does not wait for the disk (synchronous_commit off for that transaction
# alone): the worker's next step is a model call, not an answer to anyone. Should PostgreSQL crash before
# the claim reaches the disk, the run is queued again after the restart and recovery runs it again. The
# first worker's settlement (which waits for the disk, and flushes the claim with it) then finds no claim
# of its own, or, should a new claim have taken the same number, one of the two settles: the run's one
# settlement key allows one. A second model call, never a second charge. Inside a caller's transaction the
# claim is plain, since the setting would last until that transaction's commit.
_CLAIM_SQL_ON_ITS_OWN = _CLAIM_SQL_TEMPLATE.format(
    async_commit=", (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"
)
_CLAIM_SQL = _CLAIM_SQL_TEMPLATE.format(async_commit="")


def run_claim(*, run_id: uuid.UUID | str) -> Run | None:
    """Take a queued run for one model call under a new claim and lease; None when someone else has it,
    it is finished, or a retry is not due yet. The first claim starts the run's deadline."""
    if connection.vendor == "postgresql":
        params: dict[str, Any] = {
            "run_id": str(run_id), "now": timezone.now(), "run_deadline": settings.RUN_DEADLINE,
            "margin": HOLD_MARGIN, "lease": lease_until(),
        }  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL if connection.in_atomic_block else _CLAIM_SQL_ON_ITS_OWN, params)
            row = cursor.fetchone()
        if row is not None:
            run = _from_row(Run, row[:_RUN_FIELDS])
            run.hold = _from_row(Transfer, row[_RUN_FIELDS : _RUN_FIELDS + _HOLD_FIELDS])
            run.merchant = _from_row(Merchant, row[_RUN_FIELDS + _HOLD_FIELDS :])
            if run.price_id is not None:
                run.price = price_row(model=run.model, price_id=run.price_id)
            return run
    # Not claimable as the usual case (or not PostgreSQL): read why, and time out a run past its deadline.
    return _run_claim_read_first(run_id=run_id)


def _run_claim_read_first(*, run_id: uuid.UUID | str) -> Run | None:
    now = timezone.now()
    run = Run.objects.select_related("merchant", "hold", "price").filter(pk=run_id).first()
    if run is None:
        logger.warning("Run %s does not exist; nothing to do.", run_id)
        return None
    if run.status != Status.QUEUED or (run.not_before is not None and run.not_before > now):
        return None
    assert run.hold.timeout_at is not None  # noqa: S101 - a hold has a timeout (transfer_hold_has_timeout)
    deadline = run.deadline_at or min(now + settings.RUN_DEADLINE, run.hold.timeout_at - HOLD_MARGIN)
    if deadline <= now:
        run_time_out(run_id=run.pk, where=Q(status=Status.QUEUED, attempts=run.attempts))
        return None
    lease = lease_until()
    claimed = Run.objects.filter(pk=run.pk, status=Status.QUEUED, attempts=run.attempts).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=run.started_at or now,
        deadline_at=deadline,
        lease_expires_at=lease,
    )
    if not claimed:
        return None
    # The update matched the exact row state read above, so the new state is known without reading it.
    run.status, run.attempts, run.deadline_at, run.lease_expires_at = (
        Status.RUNNING,
        run.attempts + 1,
        deadline,
        lease,
    )
    run.started_at = run.started_at or now
    return run


def _call(
    run: Run, messages: list[dict[str, str]], budget: CallBudget, usage: CallUsage | None = None
) -> tuple[llm.Completion, dict[str, Any]]:
    """One model call, and at most one repaired call when the answer does not parse.

    Only the answer that is used is charged: a reply we could not use is our cost, not the merchant's.
    """
    tool = tool_of(run.tool)
    streamed = tool.uses_history and settings.RUN_STREAM_REPLIES
    request_id = f"{run.pk}:{run.attempts}"
    completion = _ask(run, messages, tool.max_tokens, request_id, budget, streamed=streamed)
    if usage is not None:
        usage.add(completion)
    try:
        return completion, tool.parse_output(completion.text, run.input).model_dump(mode="json")
    except llm.InvalidModelOutput as exc:
        logger.info("Run %s: unusable answer (%s); asking once more.", run.pk, exc.detail)
        metrics.incr("model_unusable_answers_total", model=run.model)
    repaired = [*messages, {"role": "user", "content": REPAIR_NOTE}]
    completion = _ask(run, repaired, tool.max_tokens, f"{request_id}:repair", budget, streamed=streamed)
    if usage is not None:
        usage.add(completion)  # the provider bills the repair too, whether or not it parses
    # A second unusable answer raises InvalidModelOutput: the run fails, no half-parsed output is kept.
    return completion, tool.parse_output(completion.text, run.input).model_dump(mode="json")


def _ask(
    run: Run,
    messages: list[dict[str, str]],
    max_tokens: int,
    request_id: str,
    budget: CallBudget,
    *,
    streamed: bool,
) -> llm.Completion:
    started = time.monotonic()
    outcome = "error"
    try:
        if streamed:
            # Each piece is published for the dashboard as it arrives; publishing never changes the outcome.
            stream_restart(run.pk)
            reply = llm.stream(
                model=run.model,
                messages=messages,
                max_tokens=max_tokens,
                request_id=request_id,
                budget=budget,
            )
            for piece in reply:
                stream_publish(run.pk, piece)
            completion = reply.completion
        else:
            completion = llm.complete(
                model=run.model,
                messages=messages,
                max_tokens=max_tokens,
                request_id=request_id,
                budget=budget,
            )
        outcome = "ok"
        return completion
    except llm.LLMError as exc:
        outcome = exc.code
        raise
    finally:
        elapsed = time.monotonic() - started
        metrics.observe(
            "model_latency", elapsed, model=run.model, outcome="ok" if outcome == "ok" else "error"
        )
        metrics.incr("model_calls_total", model=run.model, outcome=outcome)


def _busy(run: Run, claim: int, exc: llm.ModelBusy) -> Outcome:
    """Retry later while retries and the deadline allow; else fail, naming the cause."""
    if exc.code == "handed_back":  # our own drain stopped the call: the run is back in the queue already
        return Outcome("skipped")
    delay = backoff_seconds(run.retries, exc.retry_after)
    metrics.incr("model_retries_total", cause=exc.code)
    # A retry is worth starting only with some time left for its call before the run's deadline.
    due = timezone.now() + timedelta(seconds=delay + MIN_CALL_SECONDS)
    if run.retries < settings.QWEN_MAX_RETRIES and run.deadline_at is not None and due < run.deadline_at:
        logger.info("Run %s: model busy (%s); retry %s in %.1fs.", run.pk, exc.code, run.retries + 1, delay)
        with db_slot():
            run_retry_later(run=run, claim=claim, delay=delay, cause=exc.code)
        return Outcome("retrying")
    logger.warning(
        "Run %s: model still busy (%s) after %s calls; failing it.", run.pk, exc.code, run.retries + 1
    )
    with db_slot():
        run_fail(run=run, claim=claim, code=exc.code, message=gave_up_message(exc.code, run.retries + 1))
    return Outcome("failed")


def run_execute(*, run_id: uuid.UUID | str) -> Outcome:
    """Claim, call, settle. Whatever happens, the run ends or is back in the queue when this returns."""
    if registry.draining.is_set():
        return Outcome("draining")  # a draining worker takes no runs: the task gives the message back
    with db_slot():
        run = run_claim(run_id=run_id)
        if run is None:
            return Outcome("skipped")
        claim = run.attempts
        try:
            messages = run_messages(
                tool=tool_of(run.tool), input=run.input, merchant=run.merchant, before=run.created_at
            )
        except InvalidToolInput as exc:  # the tool's schema changed since the run was created
            run_fail(run=run, claim=claim, code="invalid_input", message=exc.message)
            return Outcome("failed")
    # Every call of the run (a repair included) shares one budget, and none outlives the run's deadline.
    assert run.deadline_at is not None  # noqa: S101 - set by the claim
    seconds = min(
        float(settings.QWEN_CALL_DEADLINE_SECONDS), (run.deadline_at - timezone.now()).total_seconds()
    )
    usage = CallUsage(model=run.model)
    try:
        return _execute_claimed(run, claim, messages, seconds, usage)
    finally:
        # Whatever the outcome, the provider billed the calls that answered (success recorded them already).
        if usage.calls and not usage.recorded:
            try:
                with db_slot():
                    usage_record(run_id=run.pk, usage=usage)
            except Exception:  # the run has ended already: a lost usage row must not turn into a retry
                logger.exception("Run %s: could not record its provider usage.", run.pk)


def _execute_claimed(
    run: Run, claim: int, messages: list[dict[str, str]], seconds: float, usage: CallUsage
) -> Outcome:
    with (
        log_context(run_id=str(run.pk), merchant_id=str(run.merchant_id)),
        registry.holding(run.pk, claim, seconds) as flight,
    ):
        try:
            completion, output = _call(run, messages, flight.budget, usage)
        except llm.ModelBusy as exc:
            return _busy(run, claim, exc)
        except llm.LLMError as exc:  # rejected, moderation, arrears, unusable output: retrying cannot help
            logger.info("Run %s failed: %s", run.pk, exc)
            with db_slot():
                run_fail(run=run, claim=claim, code=exc.code, message=exc.message)
            return Outcome("failed")
        except Exception:
            # A bug must not strand the run: fail it and release its hold now, then let it be seen.
            logger.exception("Run %s: unexpected error during the model call.", run.pk)
            with db_slot():
                run_fail(run=run, claim=claim, code="internal_error", message=INTERNAL_ERROR_MESSAGE)
            return Outcome("failed")
        try:
            with db_slot():  # the provider's usage is recorded with the charge, in the same commit
                settled = run_succeed(run=run, claim=claim, completion=completion, output=output, usage=usage)
        except Exception:
            usage.recorded = False  # nothing committed: the finally of run_execute records it
            logger.exception("Run %s: could not settle; failing it without a charge.", run.pk)
            with db_slot():
                run_fail(run=run, claim=claim, code="internal_error", message=INTERNAL_ERROR_MESSAGE)
            return Outcome("failed")
    return Outcome("skipped") if settled is None else Outcome(settled.status)
