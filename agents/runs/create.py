"""Creating runs: one builder for a single run and for a bulk batch, each run with its hold, one commit.

A run and its hold are created together (the usual run in one statement, others in one transaction) and
the task is enqueued when that commits; too few tokens and nothing exists. An Idempotency-Key names one
request of a merchant: the same key and body answer the first run (also under concurrent replays), another
body answers 409.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, cast

from celery import current_app
from django.db import IntegrityError, connection, transaction
from django.db.models import NOT_PROVIDED

from agents.errors import IdempotencyConflict
from agents.models import Batch, Run
from agents.runs.estimate import Estimate, request_hash, run_estimate, stored_input
from agents.runs.failures import failed_runs_check
from agents.runs.memos import run_memo
from merchants.actors import Actor
from merchants.api_keys import ReadAlong
from merchants.models import Merchant
from wallets.balance_events import wallet_spent_if_low
from wallets.exceptions import InsufficientTokens
from wallets.funding import PAID, funding_hold, one_step_source, sources_for, wallet_pays_first
from wallets.services import LedgerStep, hold_step

logger = logging.getLogger(__name__)

# The task is named, not imported: the engine sits below the tasks module that calls it.
EXECUTE_TASK = "agents.tasks.run_execute"


def hold_key(run_id: uuid.UUID | str) -> str:
    return f"run:{run_id}:hold"


def run_enqueue(run_id: uuid.UUID | str, *, countdown: float | None = None) -> None:
    """Send the run to a worker. A broker outage only delays it: recovery re-enqueues queued runs whose
    message was lost (docs/architecture.md, "Recovery")."""
    run = str(run_id)
    try:
        # The log's rendering of the arguments given as Celery would write it: its safe repr of every
        # message's arguments was a sixth of this call's CPU, for a value whose repr is known.
        current_app.send_task(
            EXECUTE_TASK, args=[run], countdown=countdown, argsrepr=f"['{run}']", kwargsrepr="{}"
        )
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


def runs_build(
    *, merchant: Merchant, specs: Sequence[RunSpec], actor: Actor, failures_read: ReadAlong | None = None
) -> list[Run]:
    """Hold for and insert each run, all or none; enqueue them all when the caller's transaction commits
    (at once when there is none).

    Raises InsufficientTokens at the first hold the wallet cannot cover; every earlier hold rolls back with
    it. Raises TooManyFailedRuns while the store is slowed for failing runs (agents.runs.failures), before
    anything is held (`failures_read`: that check's first read, made already with the API key's).
    """
    failed_runs_check(merchant_id=merchant.pk, read=failures_read)
    if len(specs) == 1 and (
        run := _run_build_in_one_statement(merchant=merchant, spec=specs[0], actor=actor)
    ):
        return [run]
    with transaction.atomic():
        return _runs_build_in_one_transaction(merchant=merchant, specs=specs, actor=actor)


def _runs_build_in_one_transaction(
    *, merchant: Merchant, specs: Sequence[RunSpec], actor: Actor
) -> list[Run]:
    runs: list[Run] = []
    spent: dict[int, int] = {}
    for spec in specs:
        run_id = uuid.uuid4()
        where = f" (bulk row {spec.batch_row})" if spec.batch is not None else ""
        funded = funding_hold(
            merchant=merchant,
            tool=spec.estimate.tool.slug,
            amount=spec.estimate.held,
            key=hold_key(run_id),
            actor=actor,
            memo=run_memo(spec.estimate.tool.slug, run_id, where),
            reference=str(run_id),
        )
        for wallet_id in funded.wallet_ids:  # the lowest each wallet went in this batch
            left = funded.available[wallet_id]
            spent[wallet_id] = min(spent.get(wallet_id, left), left)
        run = _run_row(run_id=run_id, merchant=merchant, spec=spec)
        run.hold = funded.parts[0]
        runs.append(run)
    if len(runs) == 1:
        runs[0].save(force_insert=True)
    else:
        Run.objects.bulk_create(runs, batch_size=500)
    transaction.on_commit(partial(runs_enqueue, [run.pk for run in runs]))
    for wallet_id, available in sorted(spent.items()):
        transaction.on_commit(partial(wallet_spent_if_low, wallet_id=wallet_id, available=available))
    return runs


def _run_row(*, run_id: uuid.UUID, merchant: Merchant, spec: RunSpec) -> Run:
    tool = spec.estimate.tool
    return Run(
        id=run_id,
        merchant=merchant,
        tool=tool.slug,
        input=stored_input(spec.estimate.data),
        model=tool.model,
        price=spec.estimate.price,
        held=spec.estimate.held,
        idempotency_key=spec.idempotency_key,
        request_hash=spec.request_hash,
        created_by=spec.created_by,
        api_key_id=spec.api_key_id,
        batch=spec.batch,
        batch_row=spec.batch_row,
    )


_RUN_TABLE = Run._meta.db_table
_HOLD_COLUMN = Run._meta.get_field("hold").column


_VALUE_FIELDS = [field for field in Run._meta.concrete_fields if field.column != _HOLD_COLUMN]
# A None may be left out of the insert only where leaving it out stores NULL: not in a column with a
# database default, where it would store the default instead.
_NULL_WHEN_LEFT_OUT = frozenset(field.column for field in _VALUE_FIELDS if field.db_default is NOT_PROVIDED)


@cache
def _insert_from_hold_sql(columns: tuple[str, ...]) -> str:
    """`INSERT INTO run (...) SELECT ... FROM hold`: the run's row, its hold id taken from the `hold` CTE,
    each of `columns` a parameter cast to its column's type. Built once per set of columns."""
    names, values = [connection.ops.quote_name(_HOLD_COLUMN)], ["hold.id"]
    for field in _VALUE_FIELDS:
        if field.column in columns:
            names.append(connection.ops.quote_name(cast(str, field.column)))
            values.append(f"%s::{field.cast_db_type(connection)}")
    # Table, column and CTE names are ours; every value is a parameter.
    return (
        f"INSERT INTO {connection.ops.quote_name(_RUN_TABLE)} ({', '.join(names)}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM hold RETURNING (SELECT id FROM hold), (SELECT balance_after FROM hold), "
        "(SELECT held_after FROM hold), (SELECT wallet_id FROM hold)"
    )


def _insert_from_hold(run: Run) -> tuple[str, list[Any]]:
    """The run's insert from the `hold` CTE, with its values prepared as Django's own insert prepares them.

    A column whose value is None is left out where PostgreSQL stores NULL for it all the same: a new run has
    a dozen of them, each a parameter to adapt and send."""
    columns, params = [], []
    for field in _VALUE_FIELDS:
        value = field.pre_save(run, add=True)
        if value is not None or field.column not in _NULL_WHEN_LEFT_OUT:
            columns.append(cast(str, field.column))
            params.append(field.get_db_prep_save(value, connection))
    return _insert_from_hold_sql(tuple(columns)), params


def _run_build_in_one_statement(*, merchant: Merchant, spec: RunSpec, actor: Actor) -> Run | None:
    """The usual run (one source pays all of it, PostgreSQL): its hold and its row in one statement, so the
    wallet row is locked only for that statement and its commit (the merchant's own burst queues on it).

    First straight to the store's wallet, under the condition that nothing draws before it (no promotional
    tokens, no sponsorship): most runs then cost one statement and nothing read before it. Else the sources
    are read and, when one promotional block pays all of it, that block's hold is the statement.

    None when this does not apply (a sponsorship or several sources pay, or another database) or the
    guard refused because a racing run took the tokens since they were read: the caller then goes through
    wallets.funding, which plans again or answers InsufficientTokens. A duplicate Idempotency-Key raises
    IntegrityError with nothing held, as the general path does.
    """
    if connection.vendor != "postgresql":
        return None
    run_id = uuid.uuid4()
    where = f" (bulk row {spec.batch_row})" if spec.batch is not None else ""
    hold = partial(
        hold_step,
        amount=spec.estimate.held,
        key=hold_key(run_id),
        actor=actor,
        memo=run_memo(spec.estimate.tool.slug, run_id, where),
        reference=str(run_id),
    )
    run = _run_row(run_id=run_id, merchant=merchant, spec=spec)
    first = hold(wallet_of_merchant=merchant.pk, only_if=wallet_pays_first(merchant=merchant))
    if (moved := _hold_and_insert(run, first, PAID)) is None:
        sources = sources_for(merchant=merchant, tool=spec.estimate.tool.slug)
        if (source := one_step_source(sources, spec.estimate.held)) is None:
            return None  # several sources or a sponsor pay, or nothing can: wallets.funding plans it
        if (moved := _hold_and_insert(run, hold(account_id=source.account_id), source.kind)) is None:
            return None
        wallet = sources[-1]  # the store's own wallet; its balance moved only if it paid
        if moved[0] != wallet.account_id:
            moved = (wallet.account_id, wallet.available)
    wallet_id, available = moved
    transaction.on_commit(partial(runs_enqueue, [run.pk]))
    transaction.on_commit(partial(wallet_spent_if_low, wallet_id=wallet_id, available=available))
    return run


def _hold_and_insert(run: Run, step: LedgerStep, source: str) -> tuple[int, int] | None:
    """Hold and insert `run` in one statement: the account held on and what is available on it after, or
    None when the hold's guard refused (nothing moved)."""
    insert, params = _insert_from_hold(run)
    # Inside a caller's transaction a failed statement would poison it: isolate it in a savepoint.
    with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
        cursor.execute(f"WITH {step.sql} {insert}", step.params + params)
        row = cursor.fetchone()
    if row is None:
        return None
    run.hold = step.saved(row)
    run.hold.known_source = source
    run._state.adding, run._state.db = False, connection.alias
    _id, balance_after, held_after, account_id = row
    return account_id, balance_after - held_after


def run_create(
    *,
    merchant: Merchant,
    tool: str,
    input: dict,
    actor: Actor,
    idempotency_key: str | None = None,
    created_by: Any = None,
    api_key_id: int | None = None,
    failures_read: ReadAlong | None = None,
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
        return runs_build(merchant=merchant, specs=[spec], actor=actor, failures_read=failures_read)[0]
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
