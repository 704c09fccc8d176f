"""Doing a run: claim it, call the model with no database connection held, settle it in one transaction.

A claim is a conditional UPDATE whose result is a claim number (the run's `attempts` after it). Only the
holder of the current claim number may settle or fail the run, or re-enter it after a retry (which takes
the next number); a second delivery of the same message finds the run no longer queued, or its claim
number moved on, and stops. Settling locks the run row only while it is still `running` under that claim,
then posts the hold under the run's one settlement key, so a run is charged at most once even when the
sweeper or a stale duplicate gets there at the same instant.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from agents import llm
from agents.conversations import conversation_message_flag, conversation_reply_record
from agents.models import Run
from agents.runs import hold_release, run_finish_unpaid, run_messages, settle_key, tool_of
from agents.streams import stream_publish, stream_restart
from agents.tools.base import InvalidToolInput
from wallets.actors import Actor
from wallets.exceptions import HoldAlreadyResolved, HoldExpired
from wallets.services import hold_post

logger = logging.getLogger(__name__)

Status = Run.Status
WORKER = Actor.system("run worker")
# The run must settle a little before its hold times out, or the hold sweeper could expire it first.
HOLD_MARGIN = timedelta(seconds=60)
REPAIR_NOTE = (
    "Your previous reply could not be used: it was not one valid JSON object following the format above. "
    "Reply again with only that JSON object."
)

TIMED_OUT = "timed_out"
TIMED_OUT_MESSAGE = "The run did not finish in time. Nothing was charged; please try again."
INTERNAL_ERROR_MESSAGE = "Something went wrong on our side. Nothing was charged; please try again."


@dataclass(frozen=True)
class Outcome:
    """What a worker should do next: nothing (`done`/`skipped`), or retry in `retry_in` seconds as `claim`."""

    status: str  # "succeeded" | "failed" | "skipped" | "retry"
    claim: int | None = None
    retry_in: float | None = None


def _release_connection() -> None:
    """Give the database connection back (to the pool, if one is configured). Never inside an atomic
    block (a test's transaction, or a caller's): closing there would break it."""
    if not connection.in_atomic_block:
        connection.close()


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
    slots = _db_slots()
    with slots:
        try:
            yield
        finally:
            _release_connection()


def backoff_seconds(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with equal jitter, capped; never sooner than the provider's Retry-After."""
    base = settings.QWEN_RETRY_BACKOFF_SECONDS
    cap = settings.QWEN_RETRY_BACKOFF_MAX_SECONDS
    delay = min(cap, base * (2**retries))
    delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not security
    return max(delay, retry_after or 0.0)


def run_claim(*, run_id: uuid.UUID | str, claim: int | None = None) -> Run | None:
    """Take the run for one model call; None when someone else has it or it is finished.

    First delivery (`claim` None): queued → running, with its deadline. A retry (`claim` n): running
    under claim n → running under claim n + 1, only before the deadline. A run whose deadline has passed
    is timed out here (the sweeper would do the same a little later).
    """
    now = timezone.now()
    run = Run.objects.select_related("merchant", "hold", "price").filter(pk=run_id).first()
    if run is None:
        logger.warning("Run %s does not exist; nothing to do.", run_id)
        return None
    if claim is None:
        if run.status != Status.QUEUED:
            return None
        deadline = min(now + settings.RUN_DEADLINE, run.hold.timeout_at - HOLD_MARGIN)
        if deadline <= now:
            run_time_out(run_id=run.pk, where=Q(status=Status.QUEUED))
            return None
        claimed = Run.objects.filter(pk=run.pk, status=Status.QUEUED, attempts=run.attempts).update(
            status=Status.RUNNING, attempts=F("attempts") + 1, started_at=now, deadline_at=deadline
        )
        run.started_at, run.deadline_at = now, deadline
    else:
        if run.status != Status.RUNNING or run.attempts != claim:
            return None
        claimed = Run.objects.filter(
            pk=run.pk, status=Status.RUNNING, attempts=claim, deadline_at__gt=now
        ).update(attempts=F("attempts") + 1)
        if not claimed:
            run_time_out(run_id=run.pk, where=Q(status=Status.RUNNING, attempts=claim, deadline_at__lte=now))
            return None
    if not claimed:
        return None
    # The update matched the exact row state read above, so the new state is known without reading it.
    run.status, run.attempts = Status.RUNNING, run.attempts + 1
    return run


def run_time_out(*, run_id: uuid.UUID | str, where: Q, actor: Actor = WORKER) -> Run | None:
    return run_finish_unpaid(
        run_id=run_id,
        where=where,
        status=Status.FAILED,
        code=TIMED_OUT,
        message=TIMED_OUT_MESSAGE,
        actor=actor,
    )


def run_fail(*, run: Run, claim: int, code: str, message: str) -> Run | None:
    """Fail the run held under `claim`, charging nothing. None when the claim was lost meanwhile."""
    return run_finish_unpaid(
        run_id=run.pk,
        where=Q(status=Status.RUNNING, attempts=claim),
        status=Status.FAILED,
        code=code,
        message=message,
        actor=WORKER,
    )


def run_succeed(*, run: Run, claim: int, completion: llm.Completion, output: dict[str, Any]) -> Run | None:
    """Charge the actual cost (capped at the hold), release the rest and store the answer, in one commit.

    None when the claim was lost (the sweeper timed the run out, or a duplicate settled it): nothing is
    charged then. A hold that expired meanwhile fails the run instead: nothing is charged either.
    """
    actual = run.price.cost(input_tokens=completion.input_tokens, output_tokens=completion.output_tokens)
    charged = min(actual, run.held)
    if actual > run.held:
        logger.warning("Run %s cost %s, above its hold of %s; charging the hold.", run.pk, actual, run.held)
    with transaction.atomic():
        # Lock the row only while it is still ours; whoever else got here first made this match nothing.
        mine = Run.objects.select_for_update().filter(pk=run.pk, status=Status.RUNNING, attempts=claim)
        if not mine.values_list("pk", flat=True).first():
            return None
        try:
            settlement = hold_post(
                hold=run.hold,
                amount=charged,
                key=settle_key(run.pk),
                actor=WORKER,
                memo=f"{run.tool} run {run.pk}: {completion.input_tokens} in, {completion.output_tokens} out",
            )
        except (HoldExpired, HoldAlreadyResolved):
            settlement = None
        if settlement is None or settlement.pending_id != run.hold_id:
            # The hold outlived its timeout: charging now would take tokens the merchant was told are free.
            settlement = hold_release(run=run, actor=WORKER, memo=f"{run.tool} run {run.pk} timed out")
            fields: dict[str, Any] = {
                "status": Status.FAILED,
                "cost": 0,
                "error_code": TIMED_OUT,
                "error_message": TIMED_OUT_MESSAGE,
            }
        else:
            fields = {
                "status": Status.SUCCEEDED,
                "output": output,
                "cost": charged,
                "uncharged": actual - charged,
                "input_tokens": completion.input_tokens,
                "output_tokens": completion.output_tokens,
                "model": completion.model or run.model,
                "error_code": "",
                "error_message": "",
            }
        fields.update(settlement=settlement, finished_at=timezone.now())
        Run.objects.filter(pk=run.pk).update(**fields)
        for name, value in fields.items():
            setattr(run, name, value)
        if run.status == Status.SUCCEEDED:
            # The bot's reply joins its conversation in the same commit as the charge.
            conversation_reply_record(run=run)
        return run


def _call(run: Run, messages: list[dict[str, str]]) -> tuple[llm.Completion, dict[str, Any]]:
    """One model call, and at most one repaired call when the answer does not parse.

    Only the answer that is used is charged: a reply we could not use is our cost, not the merchant's.
    """
    tool = tool_of(run.tool)
    if tool.uses_history and settings.RUN_STREAM_REPLIES:
        completion = _streamed(run, messages, max_tokens=tool.max_tokens)
    else:
        completion = llm.complete(
            model=run.model,
            messages=messages,
            max_tokens=tool.max_tokens,
            request_id=f"{run.pk}:{run.attempts}",
        )
    try:
        return completion, tool.parse_output(completion.text, run.input).model_dump(mode="json")
    except llm.InvalidModelOutput as exc:
        logger.info("Run %s: unusable answer (%s); asking once more.", run.pk, exc.detail)
    if tool.uses_history and settings.RUN_STREAM_REPLIES:
        stream_restart(run.pk)  # the unusable text must not stay on screen
    repaired = [*messages, {"role": "user", "content": REPAIR_NOTE}]
    completion = llm.complete(
        model=run.model,
        messages=repaired,
        max_tokens=tool.max_tokens,
        request_id=f"{run.pk}:{run.attempts}:repair",
    )
    # A second unusable answer raises InvalidModelOutput: the run fails, no half-parsed output is kept.
    return completion, tool.parse_output(completion.text, run.input).model_dump(mode="json")


def _streamed(run: Run, messages: list[dict[str, str]], *, max_tokens: int) -> llm.Completion:
    """The same call as `llm.complete`, streamed: each piece is published for the dashboard as it arrives.

    The usage and the whole text come from the finished stream, parsed and charged exactly like a
    completed call; publishing is best effort and never changes the outcome.
    """
    stream_restart(run.pk)
    reply = llm.stream(
        model=run.model, messages=messages, max_tokens=max_tokens, request_id=f"{run.pk}:{run.attempts}"
    )
    for piece in reply:
        stream_publish(run.pk, piece)
    return reply.completion


def _retry_deadline_allows(run: Run, delay: float, now: datetime) -> bool:
    return run.deadline_at is not None and now + timedelta(seconds=delay) < run.deadline_at


def run_execute(*, run_id: uuid.UUID | str, claim: int | None = None, retries: int = 0) -> Outcome:
    """Claim, call, settle. `retries` is how many times this run's call was already retried as busy.

    Returns `retry` (with the claim to re-enter under) for a busy model while retries and the deadline
    allow; every other failure fails the run at once, charging nothing.
    """
    with db_slot():
        run = run_claim(run_id=run_id, claim=claim)
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
    try:
        completion, output = _call(run, messages)
    except llm.ModelBusy as exc:
        delay = backoff_seconds(retries, exc.retry_after)
        if retries < settings.QWEN_MAX_RETRIES and _retry_deadline_allows(run, delay, timezone.now()):
            logger.info("Run %s: model busy (%s); retry %s in %.1fs.", run.pk, exc.code, retries + 1, delay)
            return Outcome("retry", claim=claim, retry_in=delay)
        message = (
            f"The AI model was busy or did not answer after {retries + 1} attempts. Nothing was charged."
        )
        with db_slot():
            run_fail(run=run, claim=claim, code=exc.code, message=message)
        return Outcome("failed")
    except llm.LLMError as exc:  # rejected, moderation, arrears, unusable output: retrying cannot help
        logger.info("Run %s failed: %s", run.pk, exc)
        with db_slot(), transaction.atomic():
            failed = run_fail(run=run, claim=claim, code=exc.code, message=exc.message)
            if failed is not None and exc.code == "moderation":
                # A flagged message would fail every later turn of its conversation: leave it out.
                conversation_message_flag(run=failed)
        return Outcome("failed")
    except Exception:
        logger.exception("Run %s: unexpected error during the model call.", run.pk)
        with db_slot():
            run_fail(run=run, claim=claim, code="internal_error", message=INTERNAL_ERROR_MESSAGE)
        raise
    with db_slot():
        settled = run_succeed(run=run, claim=claim, completion=completion, output=output)
    return Outcome("skipped") if settled is None else Outcome(settled.status)
