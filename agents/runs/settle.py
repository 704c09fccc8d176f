"""How a run ends, and how it goes back to the queue: every status change after creation is here.

Each function is one transaction that locks the run row only while the run is still in the expected state
(`where`), so of a worker settling, recovery taking a run back and a merchant canceling, exactly one
changes it; everyone else finds nothing to do. The ledger backs that up: a run's hold is resolved under one
settlement key (`run:<id>:settle`), so it is charged or released at most once. Lock order is always run
row, then wallet row.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import nullcontext
from datetime import timedelta
from functools import cache, partial
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.errors import RunNotCancelable, RunNotRefundable
from agents.llm import Completion
from agents.models import Run
from agents.runs import hooks, streams
from agents.runs.create import run_enqueue
from agents.runs.failures import run_failure_record
from agents.runs.memos import run_memo, usage_memo
from agents.runs.messages import TIMED_OUT_MESSAGE
from agents.runs.usage import CallUsage, usage_cost, usage_record
from agents.tools import registry
from merchants.actors import Actor
from wallets.exceptions import HoldAlreadyResolved, HoldExpired
from wallets.funding import funding_post, funding_release, hold_parts, part_index
from wallets.models import Account, Transfer
from wallets.services import post_step, refund_credit

logger = logging.getLogger(__name__)

Status = Run.Status
Waiting = Run.Waiting
WORKER = Actor.system("run worker")

TIMED_OUT = "timed_out"
WORKER_LOST = "worker_lost"


def settle_key(run_id: uuid.UUID | str) -> str:
    """The one key of a run's settlement, charge or release: the ledger resolves a run at most once."""
    return f"run:{run_id}:settle"


def run_hold_parts(run: Run) -> list[Transfer]:
    """The run's hold parts, one per funding source, in draw order (wallets.funding)."""
    return hold_parts(first=run.hold, total=run.held)


def hold_release(*, run: Run, actor: Actor, memo: str) -> Transfer:
    """Release every part of the run's hold under its settlement key; an already expired part is its own
    release. Returns the first part's release, which the run names as its settlement."""
    return funding_release(parts=run_hold_parts(run), key=settle_key(run.pk), actor=actor, memo=memo)[0]


def _apply(run: Run, fields: dict[str, Any]) -> None:
    Run.objects.filter(pk=run.pk).update(**fields)
    if fields.get("status") in Run.TERMINAL:
        _end_announce(run)
    for name, value in fields.items():
        setattr(run, name, value)


@cache
def _tools_that_stream() -> frozenset[str]:
    return frozenset(tool.slug for tool in registry.all() if tool.uses_history)


def _end_announce(run: Run) -> None:
    """Readers of the run's live reply stop waiting, after the commit (agents.runs.streams). Only a tool
    whose reply streams has readers: announcing every other run's end was a Redis round trip for no one."""
    if run.tool in _tools_that_stream():
        transaction.on_commit(partial(streams.stream_finish, run.pk))


def _locked(run_id: uuid.UUID | str, where: Q) -> Run | None:
    return Run.objects.select_for_update(of=("self",)).select_related("hold").filter(where, pk=run_id).first()


def run_finish_unpaid(
    *, run_id: uuid.UUID | str, where: Q, status: str, code: str, message: str, actor: Actor
) -> Run | None:
    """End the run as `status` with nothing charged, if it still matches `where`; None if it did not."""
    with transaction.atomic():
        run = _locked(run_id, where)
        if run is None:
            return None
        settlement = hold_release(run=run, actor=actor, memo=run_memo(run.tool, run.pk, f" {status}"))
        _apply(
            run,
            {
                "status": status,
                "settlement": settlement,
                "cost": 0,
                "error_code": code,
                "error_message": message[:500],
                "finished_at": timezone.now(),
                "lease_expires_at": None,
                "waiting": Waiting.NONE,
            },
        )
        if status == Status.FAILED:
            transaction.on_commit(partial(run_failure_record, merchant_id=run.merchant_id, code=code))
        if code == "moderation" and (run_hooks := hooks.for_tool(run.tool)) is not None:
            run_hooks.on_moderated(run=run)
        return run


def running_under(claim: int) -> Q:
    return Q(status=Status.RUNNING, attempts=claim)


def run_fail(*, run: Run, claim: int, code: str, message: str, actor: Actor = WORKER) -> Run | None:
    """Fail the run held under `claim`, charging nothing. None when the claim was lost meanwhile."""
    return run_finish_unpaid(
        run_id=run.pk,
        where=running_under(claim),
        status=Status.FAILED,
        code=code,
        message=message,
        actor=actor,
    )


def run_time_out(*, run_id: uuid.UUID | str, where: Q, actor: Actor = WORKER) -> Run | None:
    return run_finish_unpaid(
        run_id=run_id,
        where=where,
        status=Status.FAILED,
        code=TIMED_OUT,
        message=TIMED_OUT_MESSAGE,
        actor=actor,
    )


def run_requeue(
    *, run_id: uuid.UUID | str, where: Q, waiting: str, delay: float = 0.0, **counters: Any
) -> bool:
    """Give the run back to the queue (a retry after `delay` seconds, a lapsed lease, a drain), if it still
    matches `where`. The next claim takes a new number, so the previous holder's late answer is dropped.
    `counters`: F-expressions or values to set with it (retries, recoveries, retry_cause)."""
    now = timezone.now()
    with transaction.atomic():
        moved = Run.objects.filter(where, pk=run_id).update(
            status=Status.QUEUED,
            waiting=waiting,
            lease_expires_at=None,
            enqueued_at=now,
            not_before=now + timedelta(seconds=delay) if delay else None,
            **counters,
        )
        if moved:
            transaction.on_commit(partial(run_enqueue, run_id, countdown=delay or None))
    return bool(moved)


def run_retry_later(*, run: Run, claim: int, delay: float, cause: str) -> bool:
    """The provider was busy: back to the queue for another call in `delay` seconds."""
    return run_requeue(
        run_id=run.pk,
        where=running_under(claim),
        waiting=Waiting.RETRYING,
        delay=delay,
        retries=F("retries") + 1,
        retry_cause=cause,
    )


def _succeeded_fields(
    run: Run, completion: Completion, output: dict[str, Any], actual: int, charged: int
) -> dict[str, Any]:
    return {
        "status": Status.SUCCEEDED,
        "output": output,
        "cost": charged,
        "uncharged": actual - charged,
        "input_tokens": completion.input_tokens,
        "output_tokens": completion.output_tokens,
        "cached_input_tokens": completion.cached_tokens,
        "usage_note": completion.usage_note[:300],
        "model": completion.model or run.model,
        "error_code": "",
        "error_message": "",
        "finished_at": timezone.now(),
        "lease_expires_at": None,
        "waiting": Waiting.NONE,
    }


def run_succeed(
    *,
    run: Run,
    claim: int,
    completion: Completion,
    output: dict[str, Any],
    usage: CallUsage | None = None,
) -> Run | None:
    """Charge the actual cost (capped at the hold), release the rest, store the answer and add the
    provider's usage of the calls (`usage`), in one commit.

    None when the claim was lost (recovery took the run back, or a duplicate settled it): nothing is
    charged then, and the usage is still added. A hold that expired meanwhile fails the run instead:
    nothing is charged either.
    """
    assert run.price is not None  # noqa: S101 - every run is created with the price it was held at
    actual = run.price.cost(input_tokens=completion.input_tokens, output_tokens=completion.output_tokens)
    charged = min(actual, run.held)
    if actual > run.held:
        logger.warning("Run %s cost %s, above its hold of %s; charging the hold.", run.pk, actual, run.held)
    memo = run_memo(run.tool, run.pk, usage_memo(completion.input_tokens, completion.output_tokens))
    fields = _succeeded_fields(run, completion, output, actual, charged)
    settled = _succeed_in_one_statement(
        run=run, claim=claim, charged=charged, memo=memo, fields=fields, usage=usage
    )
    if settled is not NOT_ONE_STEP:
        return settled
    with transaction.atomic():
        settled = _succeed_in_one_transaction(run=run, claim=claim, charged=charged, memo=memo, fields=fields)
        if usage is not None:
            usage_record(run_id=run.pk, usage=usage)
            usage.recorded = True
        return settled


class _NotOneStep:
    """run_succeed's one-statement path does not apply: the general path settles the run."""


NOT_ONE_STEP: Any = _NotOneStep()
_RUNS = Run._meta.db_table


@cache
def _assignment(name: str) -> tuple[models.Field, str]:
    """A run field and its `column = %s::type` for an UPDATE (the same for every run: built once)."""
    field = cast(models.Field, Run._meta.get_field(name))
    return (
        field,
        f"{connection.ops.quote_name(cast(str, field.column))} = %s::{field.cast_db_type(connection)}",
    )


def _succeed_in_one_statement(
    *, run: Run, claim: int, charged: int, memo: str, fields: dict[str, Any], usage: CallUsage | None
) -> Any:
    """The usual success (one source paid, no product hook, PostgreSQL): guard, charge, release, answer
    and provider usage in one statement. The run row is locked first, as everywhere else (run row, then
    wallet row); nothing moves unless it still runs under `claim`. NOT_ONE_STEP when this does not apply,
    or the ledger refused it (the hold was resolved meanwhile): the general path then decides."""
    if (
        connection.vendor != "postgresql"
        or run.held != run.hold.amount
        or hooks.for_tool(run.tool) is not None
    ):
        return NOT_ONE_STEP
    step = post_step(
        hold=run.hold, amount=charged, key=settle_key(run.pk), actor=WORKER, memo=memo, gate="guard"
    )
    if step is None:
        return NOT_ONE_STEP
    sets, params = [], []
    for name, value in fields.items():
        field, assignment = _assignment(name)
        sets.append(assignment)
        params.append(field.get_db_prep_save(value, connection))
    counted = usage is not None and usage.calls
    if counted:
        assert usage is not None  # noqa: S101 - for mypy
        for column, added in (
            ("provider_input_tokens", usage.input_tokens),
            ("provider_cached_tokens", usage.cached_tokens),
            ("provider_output_tokens", usage.output_tokens),
            ("provider_cost_usd", usage_cost(usage, run_id=run.pk)),
        ):
            sets.append(f"{column} = {_RUNS}.{column} + %s")
            params.append(added)
    sql = (
        f"WITH guard AS (SELECT id FROM {_RUNS} WHERE id = %s AND status = 'running' AND attempts = %s "  # noqa: S608
        f"FOR UPDATE), {step.sql} UPDATE {_RUNS} SET {', '.join(sets)}, settlement_id = resolved.id "
        f"FROM resolved WHERE {_RUNS}.id = %s RETURNING resolved.id, resolved.balance_after, resolved.held_after"
    )
    try:
        with (
            transaction.atomic() if connection.in_atomic_block else nullcontext(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [run.pk, claim, *step.params, *params, run.pk])
            row = cursor.fetchone()
    except IntegrityError:
        return NOT_ONE_STEP  # the hold was resolved meanwhile (the sweeper expired it): fail it the long way
    if row is None:  # the claim was lost: nothing moved; the calls were still billed to us
        if counted:
            assert usage is not None  # noqa: S101 - for mypy
            usage_record(run_id=run.pk, usage=usage)
            usage.recorded = True
        return None
    if usage is not None:
        usage.recorded = True
    fields["settlement"] = step.saved(row)
    for name, value in fields.items():
        setattr(run, name, value)
    _end_announce(run)
    return run


def _succeed_in_one_transaction(
    *, run: Run, claim: int, charged: int, memo: str, fields: dict[str, Any]
) -> Run | None:
    """The general success path, inside run_succeed's transaction: lock, charge each part, store."""
    # Lock the row only while it is still ours; whoever else got here first made this match nothing.
    if _locked(run.pk, running_under(claim)) is None:
        return None
    try:
        settlement: Transfer | None = funding_post(
            parts=run_hold_parts(run), amount=charged, key=settle_key(run.pk), actor=WORKER, memo=memo
        )[0]
    except (HoldExpired, HoldAlreadyResolved):
        settlement = None
    if settlement is None or settlement.pending_id != run.hold_id:
        # The hold outlived its timeout: charging now would take tokens the merchant was told are free.
        settlement = hold_release(run=run, actor=WORKER, memo=run_memo(run.tool, run.pk, " timed out"))
        fields = {
            "status": Status.FAILED,
            "cost": 0,
            "error_code": TIMED_OUT,
            "error_message": TIMED_OUT_MESSAGE,
            "finished_at": timezone.now(),
            "lease_expires_at": None,
            "waiting": Waiting.NONE,
        }
    _apply(run, {**fields, "settlement": settlement})
    if run.status == Status.SUCCEEDED and (run_hooks := hooks.for_tool(run.tool)) is not None:
        run_hooks.on_succeeded(run=run)  # in the same commit as the charge
    return run


def cancelable() -> Q:
    """A run nobody is working on: queued (also while it waits for a retry or a worker), or running
    under a lease its worker stopped renewing."""
    return Q(status=Status.QUEUED) | Q(status=Status.RUNNING, lease_expires_at__lt=timezone.now())


def run_cancel(*, run: Run, actor: Actor) -> Run:
    """Cancel a run no worker is working on and release its hold. Raises RunNotCancelable otherwise."""
    canceled = run_finish_unpaid(
        run_id=run.pk, where=cancelable(), status=Status.CANCELED, code="", message="", actor=actor
    )
    if canceled is None:
        current = Run.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        if current == Status.RUNNING:
            message = (
                "The AI is writing this run right now, so it can't be canceled; "
                f"it finishes within {int(settings.QWEN_CALL_DEADLINE_SECONDS)} seconds."
            )
        else:
            message = f"This run has already finished ({current}), so there is nothing to cancel."
        raise RunNotCancelable(message, details={"status": current})
    return canceled


def run_refund(*, run: Run, actor: Actor, amount: int | None = None, memo: str = "") -> Transfer:
    """Give back up to the run's charge (all of it by default), once: replaying returns the first refund.

    Raises RunNotRefundable for a run that was not charged or an amount above its cost.
    """
    cost = run.cost or 0
    amount = cost if amount is None else amount
    if run.status != Status.SUCCEEDED or cost <= 0:
        raise RunNotRefundable(
            "Only a succeeded run that was charged can be refunded.", details={"cost": cost}
        )
    if not 0 < amount <= cost:
        raise RunNotRefundable(
            f"A refund must be between 1 and the run's cost, {cost}.", details={"cost": cost}
        )
    # Back to whoever paid, the last-drawn source first: the store's paid tokens, then its promotional
    # credits, then a sponsor. Each part's key is fixed, so a replay refunds nothing more.
    charges = Transfer.objects.filter(
        kind=Transfer.Kind.SETTLE, pending__in=[part.pk for part in run_hold_parts(run)]
    ).select_related("wallet")
    refunds: list[Transfer] = []
    left = amount
    with transaction.atomic():  # all of a refund's parts, or none
        for index, charge in enumerate(
            sorted(charges, key=lambda c: part_index(c.idempotency_key), reverse=True)
        ):
            if left == 0:
                break
            share = min(left, charge.amount)
            refunds.append(
                refund_credit(
                    wallet=cast(Account, charge.wallet),  # a charge always names the account it took from
                    amount=share,
                    key=f"run:{run.pk}:refund" if index == 0 else f"run:{run.pk}:refund:{index}",
                    actor=actor,
                    memo=memo or f"Refund of {run_memo(run.tool, run.pk)}",
                    reference=str(run.pk),
                )
            )
            left -= share
    return refunds[0]
