"""Creating runs: one builder for a single run and for a bulk batch, each run with its hold, one commit.

A run and its hold are created in one transaction and the task is enqueued when it commits; too few tokens
and nothing exists. An Idempotency-Key names one request of a merchant: the same key and body answer the
first run (also under concurrent replays), another body answers 409.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from celery import current_app
from django.db import IntegrityError, transaction

from agents.errors import IdempotencyConflict
from agents.models import Batch, Run
from agents.runs.estimate import Estimate, request_hash, run_estimate, stored_input
from agents.runs.failures import failed_runs_check
from agents.runs.memos import run_memo
from merchants.actors import Actor
from merchants.models import Merchant
from wallets.balance_events import wallet_spent
from wallets.exceptions import InsufficientTokens
from wallets.funding import funding_hold

logger = logging.getLogger(__name__)

# The task is named, not imported: the engine sits below the tasks module that calls it.
EXECUTE_TASK = "agents.tasks.run_execute"


def hold_key(run_id: uuid.UUID | str) -> str:
    return f"run:{run_id}:hold"


def run_enqueue(run_id: uuid.UUID | str, *, countdown: float | None = None) -> None:
    """Send the run to a worker. A broker outage only delays it: recovery re-enqueues queued runs whose
    message was lost (docs/architecture.md, "Recovery")."""
    try:
        current_app.send_task(EXECUTE_TASK, args=[str(run_id)], countdown=countdown)
    except Exception:
        logger.exception("Could not enqueue run %s; recovery will enqueue it again.", run_id)


def runs_enqueue(run_ids: Sequence[uuid.UUID | str]) -> None:
    for run_id in run_ids:
        run_enqueue(run_id)


@dataclass(frozen=True)
class RunSpec:
    """One run to build: its estimate and where it came from."""

    estimate: Estimate
    request_hash: str
    idempotency_key: str | None = None
    created_by: Any = None
    api_key_id: int | None = None
    batch: Batch | None = None
    batch_row: int | None = None


def runs_build(*, merchant: Merchant, specs: Sequence[RunSpec], actor: Actor) -> list[Run]:
    """Hold for and insert each run, inside the caller's transaction; enqueue them all when it commits.

    Raises InsufficientTokens at the first hold the wallet cannot cover; the caller's transaction then
    rolls every earlier hold back with it. Raises TooManyFailedRuns while the store is slowed for failing
    runs (agents.runs.failures), before anything is held.
    """
    failed_runs_check(merchant_id=merchant.pk)
    runs: list[Run] = []
    spent_wallets: set[int] = set()
    for spec in specs:
        run_id = uuid.uuid4()
        tool = spec.estimate.tool
        where = f" (bulk row {spec.batch_row})" if spec.batch is not None else ""
        funded = funding_hold(
            merchant=merchant,
            tool=tool.slug,
            amount=spec.estimate.held,
            key=hold_key(run_id),
            actor=actor,
            memo=run_memo(tool.slug, run_id, where),
            reference=str(run_id),
        )
        spent_wallets |= funded.wallet_ids
        runs.append(
            Run(
                id=run_id,
                merchant=merchant,
                tool=tool.slug,
                input=stored_input(spec.estimate.data),
                model=tool.model,
                price=spec.estimate.price,
                held=spec.estimate.held,
                hold=funded.parts[0],
                idempotency_key=spec.idempotency_key,
                request_hash=spec.request_hash,
                created_by=spec.created_by,
                api_key_id=spec.api_key_id,
                batch=spec.batch,
                batch_row=spec.batch_row,
            )
        )
    if len(runs) == 1:
        runs[0].save(force_insert=True)
    else:
        Run.objects.bulk_create(runs, batch_size=500)
    transaction.on_commit(partial(runs_enqueue, [run.pk for run in runs]))
    for wallet_id in sorted(spent_wallets):
        transaction.on_commit(partial(wallet_spent, wallet_id=wallet_id))
    return runs


def run_create(
    *,
    merchant: Merchant,
    tool: str,
    input: dict,
    actor: Actor,
    idempotency_key: str | None = None,
    created_by: Any = None,
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
    spec = RunSpec(
        estimate=run_estimate(merchant=merchant, tool=tool, input=input),
        request_hash=digest,
        idempotency_key=idempotency_key,
        created_by=created_by,
        api_key_id=api_key_id,
    )
    try:
        with transaction.atomic():
            return runs_build(merchant=merchant, specs=[spec], actor=actor)[0]
    except (IntegrityError, InsufficientTokens):
        # A concurrent request with the same key committed first (our hold rolled back with our run), or
        # it took the last tokens: either way its run is the answer.
        if idempotency_key is not None and (winner := _run_by_key(merchant, idempotency_key)) is not None:
            return _replayed(winner, digest)
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
