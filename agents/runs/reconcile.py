"""Invariant 5, registered with `wallets.reconcile`: every finished run has resolved every part of its hold,
a succeeded run was charged exactly its cost across them, and a failed or canceled run nothing. One
set-based query over runs and the transfers they name."""

import uuid

from django.db import connection

from agents.models import Run
from wallets.models import Transfer
from wallets.reconcile import Violation

R = Run._meta.db_table
T = Transfer._meta.db_table


def _run_reference() -> str:
    """The run id as its hold parts carry it in `reference` (str(uuid), with dashes), in SQL."""
    if connection.vendor == "postgresql":
        return "CAST(r.id AS TEXT)"
    # SQLite stores a UUID as 32 hex digits.
    return (
        "substr(r.id, 1, 8) || '-' || substr(r.id, 9, 4) || '-' || substr(r.id, 13, 4) || '-' "
        "|| substr(r.id, 17, 4) || '-' || substr(r.id, 21, 12)"
    )


# Per run, what is wrong, if anything. `parts` are the run's hold parts (one per funding source: the one it
# names, and any that carry its id) with what resolved each; `s` is the settlement the run names.
def _bad_runs_sql() -> str:
    return f"""
WITH holds AS (
  -- The hold the run names, and the other parts that carry its id: two equality joins (hashable), not
  -- one OR join, so the check stays linear in the number of runs and transfers.
  SELECT r.id AS run_id, h.id AS hold_id, h.amount AS held
    FROM {R} r JOIN {T} h ON h.id = r.hold_id AND h.kind = 'hold'
  UNION ALL
  SELECT r.id, h.id, h.amount
    FROM {R} r JOIN {T} h ON h.kind = 'hold' AND h.reference = {_run_reference()} AND h.id <> r.hold_id
), parts AS (
  SELECT holds.run_id, holds.held, res.kind AS res_kind, res.amount AS res_amount
    FROM holds LEFT JOIN {T} res ON res.pending_id = holds.hold_id
), per_run AS (
  SELECT run_id,
         SUM(held) AS held,
         SUM(CASE WHEN res_kind = 'settle' THEN res_amount ELSE 0 END) AS charged,
         SUM(CASE WHEN res_kind IS NULL THEN 1 ELSE 0 END) AS open_parts,
         SUM(CASE WHEN res_kind = 'settle' THEN 1 ELSE 0 END) AS charges
    FROM parts GROUP BY run_id
)
SELECT problem, id FROM (
  SELECT r.id,
         CASE
           WHEN p.charges > 0 AND r.status <> 'succeeded' THEN 'charged_without_success'
           WHEN r.status IN ('succeeded', 'failed', 'canceled') AND (s.id IS NULL OR p.open_parts > 0)
                THEN 'finished_unsettled'
           WHEN s.id IS NOT NULL AND s.pending_id IS DISTINCT FROM r.hold_id THEN 'settlement_of_other_hold'
           WHEN p.held IS DISTINCT FROM r.held THEN 'parts_differ_from_held'
           WHEN r.status = 'succeeded' AND p.charged <> COALESCE(r.cost, 0) THEN 'charge_differs_from_cost'
           WHEN r.status IN ('failed', 'canceled') AND COALESCE(r.cost, 0) <> 0 THEN 'unsuccessful_with_cost'
         END AS problem
    FROM {R} r
    LEFT JOIN per_run p ON p.run_id = r.id
    LEFT JOIN {T} s ON s.id = r.settlement_id
) bad
WHERE problem IS NOT NULL
ORDER BY problem, id
"""  # noqa: S608 (table names are ours)


_PROBLEMS = {
    "charged_without_success": "run(s) charged but not succeeded",
    "finished_unsettled": "finished run(s) without a settlement",
    "settlement_of_other_hold": "run(s) whose settlement resolves another hold",
    "parts_differ_from_held": "run(s) whose hold parts do not add up to what they held",
    "charge_differs_from_cost": "succeeded run(s) charged another amount than their cost",
    "unsuccessful_with_cost": "failed or canceled run(s) with a cost",
}


def check_runs_settled_once() -> list[Violation]:
    """Invariant 5. Violation ids are run UUIDs (as text), not transfer ids."""
    bad: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        # Portable SQL (PostgreSQL and the SQLite dev default); only offending runs come back.
        cursor.execute(_bad_runs_sql())
        for problem, run_id in cursor.fetchall():
            bad.setdefault(problem, []).append(str(uuid.UUID(str(run_id))))  # SQLite: dashless hex
    return [
        Violation(5, problem, f"{len(ids)} {_PROBLEMS[problem]}", tuple(ids)) for problem, ids in bad.items()
    ]
