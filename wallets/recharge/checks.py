"""Invariant 10, auto-recharge ↔ top-ups: every paid recharge has exactly its one top-up (its tokens, to its
wallet, under the key naming the attempt), and every recharge top-up belongs to a paid recharge.

Registered with wallets.reconcile from WalletsConfig.ready, next to invariants 1 to 6.
"""

from wallets.models import RechargeAttempt
from wallets.reconcile import T, Violation, _rows

_R = RechargeAttempt._meta.db_table

_PAID_WITHOUT_TOPUP = f"""
SELECT r.id FROM {_R} r
  LEFT JOIN {T} t ON t.id = r.transfer_id
 WHERE r.status = 'succeeded'
   AND (t.id IS NULL OR t.kind <> 'topup' OR t.amount <> r.tokens OR t.credit_account_id <> r.wallet_id
        OR t.idempotency_key <> 'stripe-recharge:' || r.reference::text)
 ORDER BY r.id
"""  # noqa: S608 (table names are ours)

_TOPUP_WITHOUT_RECHARGE = f"""
SELECT t.id FROM {T} t
  LEFT JOIN {_R} r ON r.transfer_id = t.id AND r.status = 'succeeded'
 WHERE t.kind = 'topup' AND t.idempotency_key LIKE %s AND r.id IS NULL
 ORDER BY t.id
"""  # noqa: S608


def check_recharges_topped_up_once() -> list[Violation]:
    violations = []
    if unpaid := tuple(row[0] for row in _rows(_PAID_WITHOUT_TOPUP)):
        violations.append(
            Violation(
                10, "recharge_without_topup", f"{len(unpaid)} paid recharge(s) lack their top-up", unpaid
            )
        )
    if orphans := tuple(row[0] for row in _rows(_TOPUP_WITHOUT_RECHARGE, ["stripe-recharge:%"])):
        violations.append(
            Violation(
                10,
                "topup_without_recharge",
                f"{len(orphans)} recharge top-up(s) lack a paid recharge",
                orphans,
            )
        )
    return violations
