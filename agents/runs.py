"""Creating and canceling runs, and the one way a run ends unpaid.

A run is created with its hold in one transaction and enqueued on commit; too few tokens and nothing
exists. Every path that ends a run without charging it (fail, cancel, time out) goes through
`run_finish_unpaid`: lock the run row only while it is still in the expected state, release the hold with
the run's one settlement key, and record the outcome, all in one transaction. Whoever locks the row in the
expected state wins; everyone else finds nothing to do. Lock order is always run row, then wallet row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from pydantic import BaseModel

from agents import tokens
from agents.exceptions import (
    IdempotencyConflict,
    InvalidRunInput,
    RunNotCancelable,
    RunNotRefundable,
    ToolUnavailable,
    UnknownTool,
)
from agents.models import Run
from agents.tools import registry
from agents.tools.base import InvalidToolInput, MerchantProfile, Tool
from agents.tools.base import UnknownTool as RegistryUnknownTool
from merchants.models import Merchant
from wallets import selectors as wallet_selectors
from wallets.actors import Actor
from wallets.exceptions import HoldAlreadyResolved, InsufficientTokens
from wallets.models import Price, Transfer
from wallets.services import hold_create, hold_void, refund_credit, wallet_of

logger = logging.getLogger(__name__)

Status = Run.Status


def hold_key(run_id: uuid.UUID | str) -> str:
    return f"run:{run_id}:hold"


def settle_key(run_id: uuid.UUID | str) -> str:
    """The one key of a run's settlement, charge or release: the ledger resolves a run at most once."""
    return f"run:{run_id}:settle"


def merchant_profile(merchant: Merchant) -> MerchantProfile:
    return MerchantProfile(
        store_name=merchant.name,
        brand_voice=merchant.brand_voice,
        default_language=merchant.default_language,
        knowledge_base=merchant.knowledge_base,
    )


# The customer-service bot replays the conversation: at most this many turns, within this many tokens.
HISTORY_MAX_TURNS = 20
HISTORY_TOKEN_BUDGET = 3000


def run_messages(*, tool: Tool, input: Any, merchant: Merchant, before=None) -> list[dict[str, str]]:
    """The messages a run sends: the tool's prompt and, for a tool that takes a history (the bot), the
    conversation's earlier turns created before `before` (the run's creation; None while estimating).

    The estimate and the call build the same prompt, so the hold covers the history that is replayed.
    """
    history: list[dict[str, str]] = []
    if tool.uses_history:
        from agents.selectors import conversation_history

        data = tool.validate_input(input)
        history = conversation_history(
            merchant=merchant,
            conversation_id=getattr(data, "conversation", None),
            before=before,
            max_turns=HISTORY_MAX_TURNS,
            token_budget=HISTORY_TOKEN_BUDGET,
        )
    return tool.build_messages(input, merchant_profile(merchant), history=history)


def request_hash(*, tool: str, input: Any) -> str:
    """What "the same request" means for an idempotency key: the tool and the input, as sent."""
    body = json.dumps({"tool": tool, "input": input}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def tool_of(slug: str) -> Tool:
    try:
        return registry.get(slug)
    except RegistryUnknownTool:
        raise UnknownTool(str(slug)) from None


def input_validate(tool: Tool, input: Any) -> BaseModel:
    """The input as the tool's model; InvalidRunInput with {field path: message} otherwise."""
    try:
        return tool.validate_input(input)
    except InvalidToolInput as exc:
        details: dict[str, str] = {}
        for error in exc.errors:
            field = error["field"] or "input"
            details[field] = f"{details[field]}; {error['message']}" if field in details else error["message"]
        raise InvalidRunInput(
            f"The input does not fit the {tool.slug} tool: {exc.message}", details=details
        ) from None


@dataclass(frozen=True)
class Estimate:
    tool: Tool
    data: BaseModel  # the validated input
    prompt_tokens: int
    price: Price
    held: int  # the most the run can cost: the prompt plus `max_tokens` of output at today's price


def run_estimate(*, merchant: Merchant, tool: str | Tool, input: Any) -> Estimate:
    """Validate `input` and price the worst case. Raises UnknownTool, InvalidRunInput, ToolUnavailable."""
    tool = tool if isinstance(tool, Tool) else tool_of(tool)
    data = input_validate(tool, input)
    messages = run_messages(tool=tool, input=data, merchant=merchant)
    prompt_tokens = tokens.count_prompt_tokens(messages, tool.model)
    price = wallet_selectors.price_for(model=tool.model)
    if price is None:
        raise ToolUnavailable(f"The {tool.slug} tool is not available: its model {tool.model} has no price.")
    held = price.cost(input_tokens=prompt_tokens, output_tokens=tool.max_tokens)
    return Estimate(tool=tool, data=data, prompt_tokens=prompt_tokens, price=price, held=max(held, 1))


def stored_input(data: BaseModel) -> dict[str, Any]:
    """The validated input as stored: normalised, but only the fields the caller set."""
    return data.model_dump(mode="json", exclude_unset=True)


def run_enqueue(run_id: uuid.UUID | str) -> None:
    """Send the run to a worker. A broker outage only delays it: the sweeper re-enqueues queued runs."""
    from agents.tasks import run_execute

    try:
        run_execute.apply_async(args=[str(run_id)])
    except Exception:
        logger.exception("Could not enqueue run %s; the sweeper will re-enqueue it.", run_id)


def run_create(
    *,
    merchant: Merchant,
    tool: str,
    input: dict,
    actor: Actor,
    idempotency_key: str | None = None,
    created_by=None,
    api_key_id: int | None = None,
) -> Run:
    """A queued run and its hold, in one transaction; the task is enqueued when it commits.

    Raises UnknownTool, InvalidRunInput, ToolUnavailable, InsufficientTokens (nothing created), and
    IdempotencyConflict when `idempotency_key` already names another request of this merchant. Replaying
    the same key and body returns the first run and holds nothing more, also under concurrent replays.
    """
    digest = request_hash(tool=tool, input=input)
    if idempotency_key is not None and (existing := _run_by_key(merchant, idempotency_key)) is not None:
        return _replayed(existing, digest)
    estimate = run_estimate(merchant=merchant, tool=tool, input=input)
    return _create(
        merchant=merchant,
        estimate=estimate,
        actor=actor,
        idempotency_key=idempotency_key,
        request_hash=digest,
        created_by=created_by,
        api_key_id=api_key_id,
    )


def _create(
    *,
    merchant: Merchant,
    estimate: Estimate,
    actor: Actor,
    idempotency_key: str | None,
    request_hash: str,
    created_by,
    api_key_id: int | None,
) -> Run:
    run_id = uuid.uuid4()
    try:
        with transaction.atomic():
            hold = hold_create(
                wallet=wallet_of(merchant=merchant),
                amount=estimate.held,
                key=hold_key(run_id),
                actor=actor,
                memo=f"{estimate.tool.slug} run {run_id}",
            )
            run = Run.objects.create(
                id=run_id,
                merchant=merchant,
                tool=estimate.tool.slug,
                input=stored_input(estimate.data),
                model=estimate.tool.model,
                price=estimate.price,
                held=estimate.held,
                hold=hold,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                created_by=created_by,
                api_key_id=api_key_id,
            )
            transaction.on_commit(partial(run_enqueue, run_id))
            return run
    except IntegrityError:
        # A concurrent request with the same key committed first; our hold rolled back with our run.
        if idempotency_key is not None and (winner := _run_by_key(merchant, idempotency_key)) is not None:
            return _replayed(winner, request_hash)
        raise
    except InsufficientTokens:
        # The winner of a concurrent replay may have taken the last tokens: its run is the answer.
        if idempotency_key is not None and (winner := _run_by_key(merchant, idempotency_key)) is not None:
            return _replayed(winner, request_hash)
        raise


def _run_by_key(merchant: Merchant, key: str) -> Run | None:
    return Run.objects.filter(merchant=merchant, idempotency_key=key).first()


def _replayed(run: Run, digest: str) -> Run:
    if run.request_hash != digest:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request.",
            details={"idempotency_key": run.idempotency_key, "run": str(run.id)},
        )
    return run


def hold_release(*, run: Run, actor: Actor, memo: str) -> Transfer:
    """Release the run's whole hold under its settlement key; an already expired hold is its own release."""
    try:
        return hold_void(hold=run.hold, key=settle_key(run.pk), actor=actor, memo=memo)
    except HoldAlreadyResolved:
        resolution = Transfer.objects.get(pending_id=run.hold_id)
        if resolution.kind == Transfer.Kind.SETTLE:  # only a charge under our own key could do this
            raise
        return resolution


def run_finish_unpaid(
    *, run_id: uuid.UUID | str, where: Q, status: str, code: str, message: str, actor: Actor
) -> Run | None:
    """End the run as `status` with nothing charged, if it still matches `where`; None if it did not.

    The row lock is taken only on a run that still matches, so of a worker settling, the sweeper timing
    out and a merchant canceling, exactly one changes the run; the hold is released in the same commit.
    """
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("hold")
            .filter(where, pk=run_id)
            .first()
        )
        if run is None:
            return None
        settlement = hold_release(run=run, actor=actor, memo=f"{run.tool} run {run.pk} {status}")
        now = timezone.now()
        fields = {
            "status": status,
            "settlement": settlement,
            "cost": 0,
            "error_code": code,
            "error_message": message[:500],
            "finished_at": now,
        }
        Run.objects.filter(pk=run.pk).update(**fields)
        for name, value in fields.items():
            setattr(run, name, value)
        return run


def run_cancel(*, run: Run, actor: Actor) -> Run:
    """Cancel a queued run and release its hold. Raises RunNotCancelable once a worker has claimed it."""
    canceled = run_finish_unpaid(
        run_id=run.pk, where=Q(status=Status.QUEUED), status=Status.CANCELED, code="", message="", actor=actor
    )
    if canceled is None:
        current = Run.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        raise RunNotCancelable(
            f"Only a queued run can be canceled; this one is {current}.", details={"status": current}
        )
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
    return refund_credit(
        wallet=wallet_of(merchant=run.merchant),
        amount=amount,
        key=f"run:{run.pk}:refund",
        actor=actor,
        memo=memo or f"Refund of {run.tool} run {run.pk}",
        reference=str(run.pk),
    )
