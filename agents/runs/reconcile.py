"""Invariant 5, registered with `wallets.reconcile`: every succeeded run has exactly one settlement, and
a failed or canceled run is charged nothing. One set-based query over runs and the transfers they name."""

import uuid

from django.db import connection

from agents.models import Run
from wallets.models import Transfer
from wallets.reconcile import Violation

R = Run._meta.db_table
T = Transfer._meta.db_table

# Per run, what is wrong, if anything: `s` is the settlement the run names, `res` whatever resolved its hold.
_BAD_RUNS = f"""
SELECT problem, id FROM (
  SELECT r.id,
         CASE
           WHEN res.kind = 'settle' AND r.status <> 'succeeded' THEN 'charged_without_success'
           WHEN r.status IN ('succeeded', 'failed', 'canceled') AND s.id IS NULL THEN 'finished_unsettled'
           WHEN s.id IS NOT NULL AND s.pending_id IS DISTINCT FROM r.hold_id THEN 'settlement_of_other_hold'
           WHEN r.status = 'succeeded' AND s.kind = 'settle' AND s.amount <> r.cost THEN 'charge_differs_from_cost'
           WHEN r.status = 'succeeded' AND s.kind <> 'settle' AND COALESCE(r.cost, 0) <> 0 THEN 'cost_not_charged'
           WHEN r.status IN ('failed', 'canceled') AND COALESCE(r.cost, 0) <> 0 THEN 'unsuccessful_with_cost'
         END AS problem
    FROM {R} r
    LEFT JOIN {T} s ON s.id = r.settlement_id
    LEFT JOIN {T} res ON res.pending_id = r.hold_id
) bad
WHERE problem IS NOT NULL
ORDER BY problem, id
"""  # noqa: S608 (table names are ours)

_PROBLEMS = {
    "charged_without_success": "run(s) charged but not succeeded",
    "finished_unsettled": "finished run(s) without a settlement",
    "settlement_of_other_hold": "run(s) whose settlement resolves another hold",
    "charge_differs_from_cost": "succeeded run(s) charged another amount than their cost",
    "cost_not_charged": "succeeded run(s) with a cost but a released hold",
    "unsuccessful_with_cost": "failed or canceled run(s) with a cost",
}


def check_runs_settled_once() -> list[Violation]:
    """Invariant 5. Violation ids are run UUIDs (as text), not transfer ids."""
    bad: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        # Portable SQL (PostgreSQL and the SQLite dev default); only offending runs come back.
        cursor.execute(_BAD_RUNS)
        for problem, run_id in cursor.fetchall():
            bad.setdefault(problem, []).append(str(uuid.UUID(str(run_id))))  # SQLite: dashless hex
    return [
        Violation(5, problem, f"{len(ids)} {_PROBLEMS[problem]}", tuple(ids)) for problem, ids in bad.items()
    ]
