"""The ledger's invariants (docs/architecture.md, "The ledger and its money paths"), checked as set-based SQL.

Every check is one or two aggregate queries over the transfers table (hash joins and GROUP BYs, no Python
loop over rows), so `manage.py reconcile_ledger` stays fast over millions of transfers. Other apps add
their invariants with `register_check` (agents: 5, runs ↔ settlements) so that wallets never imports them:
dependencies point agents → wallets → merchants. Invariant 6 (Stripe sessions ↔ top-ups) is the ledger's
own and lives here with 1 to 4.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from wallets.models import Account, SponsorshipMonth, TopupPayment, Transfer

T = Transfer._meta.db_table
A = Account._meta.db_table
_POSTED = ", ".join(f"'{kind}'" for kind in sorted(Transfer.POSTED_KINDS))
_RESOLVING = ", ".join(f"'{kind}'" for kind in sorted(Transfer.RESOLVING_KINDS))


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: int
    code: str
    message: str
    ids: tuple[int | str, ...] = field(default=())  # transfer ids, or run UUIDs as text (invariant 5)

    def __str__(self) -> str:
        ids = f" [ids: {', '.join(map(str, self.ids[:20]))}{', …' if len(self.ids) > 20 else ''}]"
        return f"invariant {self.invariant} {self.code}: {self.message}{ids if self.ids else ''}"


Check = Callable[[], Iterable[Violation]]
_CHECKS: dict[str, Check] = {}


def register_check(fn: Check) -> Check:
    """Add an invariant check; usable as a decorator. Registering the same function twice keeps one."""
    _CHECKS[f"{fn.__module__}.{fn.__qualname__}"] = fn
    return fn


def reconcile_ledger() -> list[Violation]:
    """Every violation of every registered invariant; an empty list means the ledger is consistent."""
    violations: list[Violation] = []
    for name, check in list(_CHECKS.items()):
        try:
            # A savepoint, so one failing query cannot abort the checks after it in the same transaction.
            with transaction.atomic():
                violations.extend(check())
        except DatabaseError as exc:
            # A check that cannot run proves nothing: report it, never pass silently.
            violations.append(Violation(0, "check_failed", f"{name} could not run: {exc}".strip()))
    return violations


def sweep_grace() -> timedelta:
    """How long past its timeout a hold may wait for the sweeper: a setting, else two beat intervals."""
    if (grace := getattr(settings, "HOLD_SWEEP_GRACE", None)) is not None:
        return grace
    for entry in getattr(settings, "CELERY_BEAT_SCHEDULE", {}).values():
        if entry.get("task") == "wallets.tasks.holds_expire" and isinstance(entry["schedule"], timedelta):
            return 2 * entry["schedule"]
    return timedelta(minutes=2)


def _rows(sql: str, params: Iterable = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


# Per wallet: what its counters should be, from its transfers. A hold counts as pending until a
# resolution points at it (the LEFT JOIN), whatever the resolution's amount.
_WALLET_SUMS = f"""
SELECT t.wallet_id,
       COALESCE(SUM(CASE WHEN t.kind IN ({_POSTED}) AND t.credit_account_id = t.wallet_id
                         THEN t.amount ELSE 0 END), 0) AS credits,
       COALESCE(SUM(CASE WHEN t.kind IN ({_POSTED}) AND t.debit_account_id = t.wallet_id
                         THEN t.amount ELSE 0 END), 0) AS debits,
       COALESCE(SUM(CASE WHEN t.kind = 'hold' AND r.id IS NULL THEN t.amount ELSE 0 END), 0) AS pending
  FROM {T} t LEFT JOIN {T} r ON r.pending_id = t.id
 GROUP BY t.wallet_id
"""  # noqa: S608 (table names and kinds are ours)

_COUNTER_MISMATCH = f"""
SELECT a.id, a.credits_posted, a.debits_posted, a.debits_pending,
       COALESCE(s.credits, 0), COALESCE(s.debits, 0), COALESCE(s.pending, 0)
  FROM {A} a LEFT JOIN ({_WALLET_SUMS}) s ON s.wallet_id = a.id
 WHERE a.kind IN ('wallet', 'promo')
   AND (a.credits_posted <> COALESCE(s.credits, 0) OR a.debits_posted <> COALESCE(s.debits, 0)
        OR a.debits_pending <> COALESCE(s.pending, 0))
 ORDER BY a.id
"""  # noqa: S608


@register_check
def check_counters_match_transfers() -> list[Violation]:
    """Invariant 1: each wallet's counters equal the sums of its transfers."""
    violations = []
    for wallet_id, credits, debits, pending, want_credits, want_debits, want_pending in _rows(
        _COUNTER_MISMATCH
    ):
        diffs = [
            f"{name} is {have:,}, transfers say {want:,}"
            for name, have, want in (
                ("credits_posted", credits, want_credits),
                ("debits_posted", debits, want_debits),
                ("debits_pending", pending, want_pending),
            )
            if have != want
        ]
        violations.append(
            Violation(1, "counters_mismatch", f"wallet {wallet_id}: {'; '.join(diffs)}", (wallet_id,))
        )
    return violations


# Every transfer moves tokens between its own merchant wallet and one system account. A transfer that
# names no wallet, a wallet that is neither side, or two wallets would escape invariants 1 and 2.
_MISSHAPEN = f"""
SELECT t.id
  FROM {T} t
  LEFT JOIN {A} w ON w.id = t.wallet_id
  JOIN {A} d ON d.id = t.debit_account_id
  JOIN {A} c ON c.id = t.credit_account_id
 WHERE w.id IS NULL OR w.kind NOT IN ('wallet', 'promo')
    OR NOT ((d.id = w.id AND c.kind NOT IN ('wallet', 'promo'))
            OR (c.id = w.id AND d.kind NOT IN ('wallet', 'promo')))
 ORDER BY t.id
"""  # noqa: S608

_BALANCE_SUM = f"""
SELECT (SELECT COALESCE(SUM(credits_posted - debits_posted), 0) FROM {A} WHERE kind IN ('wallet', 'promo')),
       (SELECT COALESCE(SUM(CASE WHEN c.kind NOT IN ('wallet', 'promo') THEN t.amount ELSE 0 END)
                      - SUM(CASE WHEN d.kind NOT IN ('wallet', 'promo') THEN t.amount ELSE 0 END), 0)
          FROM {T} t JOIN {A} d ON d.id = t.debit_account_id JOIN {A} c ON c.id = t.credit_account_id
         WHERE t.kind IN ({_POSTED}))
"""  # noqa: S608


@register_check
def check_balances_sum_to_zero() -> list[Violation]:
    """Invariant 2: wallet balances (counters) plus system balances (from transfers) sum to zero."""
    violations = []
    if misshapen := [row[0] for row in _rows(_MISSHAPEN)]:
        violations.append(
            Violation(
                2,
                "transfer_misshapen",
                f"{len(misshapen)} transfer(s) do not move tokens between their wallet and a system account",
                tuple(misshapen),
            )
        )
    wallets, system = _rows(_BALANCE_SUM)[0]
    if wallets + system != 0:
        violations.append(
            Violation(
                2,
                "balances_nonzero_sum",
                f"wallet balances sum to {wallets:,} and system balances to {system:,}: "
                f"the total is {wallets + system:,}, not 0",
            )
        )
    return violations


_OVERDRAWN = f"""
SELECT id, credits_posted - debits_posted - debits_pending, in_debt
  FROM {A}
 WHERE kind IN ('wallet', 'promo') AND credits_posted - debits_posted - debits_pending < 0
 ORDER BY id
"""  # noqa: S608


def flagged_wallets() -> list[tuple[int, int]]:
    """(wallet id, available) of wallets below zero and flagged in_debt: allowed (a clawback), for support."""
    return [(wallet_id, available) for wallet_id, available, in_debt in _rows(_OVERDRAWN) if in_debt]


@register_check
def check_no_unflagged_overdraft() -> list[Violation]:
    """Invariant 3: no wallet's available balance is below zero unless a clawback flagged it."""
    return [
        Violation(
            3,
            "overdrawn",
            f"wallet {wallet_id} has {available:,} available and is not flagged in_debt",
            (wallet_id,),
        )
        for wallet_id, available, in_debt in _rows(_OVERDRAWN)
        if not in_debt
    ]


# One pass over resolutions joined to what they resolve: each line names one way a resolution is wrong.
_BAD_RESOLUTIONS = f"""
SELECT r.id, h.id,
       CASE WHEN h.kind <> 'hold' THEN 'resolves_non_hold'
            WHEN r.kind NOT IN ({_RESOLVING}) THEN 'resolution_kind'
            WHEN r.wallet_id <> h.wallet_id OR r.debit_account_id <> h.debit_account_id
                 OR r.credit_account_id <> h.credit_account_id THEN 'resolution_accounts'
            WHEN r.kind = 'settle' AND r.amount > h.amount THEN 'settle_exceeds_hold'
            WHEN r.kind IN ('void', 'expire') AND r.amount <> h.amount THEN 'release_amount'
       END AS problem
  FROM {T} r JOIN {T} h ON h.id = r.pending_id
 WHERE h.kind <> 'hold' OR r.kind NOT IN ({_RESOLVING})
    OR r.wallet_id <> h.wallet_id OR r.debit_account_id <> h.debit_account_id
    OR r.credit_account_id <> h.credit_account_id
    OR (r.kind = 'settle' AND r.amount > h.amount)
    OR (r.kind IN ('void', 'expire') AND r.amount <> h.amount)
 ORDER BY r.id
"""  # noqa: S608

_RESOLVED_TWICE = f"""
SELECT pending_id FROM {T} WHERE pending_id IS NOT NULL GROUP BY pending_id HAVING COUNT(*) > 1
"""  # noqa: S608

_UNRESOLVED_TOO_LONG = f"""
SELECT h.id FROM {T} h LEFT JOIN {T} r ON r.pending_id = h.id
 WHERE h.kind = 'hold' AND r.id IS NULL AND h.timeout_at < %s
 ORDER BY h.id
"""  # noqa: S608

_PROBLEMS = {
    "resolves_non_hold": "resolves a transfer that is not a hold",
    "resolution_kind": "points at a hold but is not a settle, void or expire",
    "resolution_accounts": "moves between other accounts than its hold",
    "settle_exceeds_hold": "charges more than its hold",
    "release_amount": "releases another amount than its hold",
}


@register_check
def check_holds_resolved_once_and_in_time(*, now: datetime | None = None) -> list[Violation]:
    """Invariant 4: every hold is resolved at most once, correctly, and none outlives timeout + a sweep."""
    violations = [
        Violation(4, "resolved_twice", f"hold {hold_id} has more than one resolution", (hold_id,))
        for (hold_id,) in _rows(_RESOLVED_TWICE)
    ]
    violations += [
        Violation(
            4,
            problem,
            f"transfer {resolution_id} {_PROBLEMS[problem]} ({target_id})",
            (resolution_id, target_id),
        )
        for resolution_id, target_id, problem in _rows(_BAD_RESOLUTIONS)
    ]
    cutoff = (now or timezone.now()) - sweep_grace()
    if stale := [row[0] for row in _rows(_UNRESOLVED_TOO_LONG, [cutoff])]:
        violations.append(
            Violation(
                4,
                "hold_outlived_timeout",
                f"{len(stale)} hold(s) are unresolved more than {sweep_grace()} past their timeout",
                tuple(stale),
            )
        )
    return violations


# Invariant 6: Stripe checkouts ↔ top-ups. Only Stripe's own top-ups (key `stripe:<session id>`) count:
# a won dispute's return (`stripe-dispute-won:...`) and support's top-ups are not a session's credit.
_P = TopupPayment._meta.db_table
_FULFILLED = ", ".join(f"'{status}'" for status in TopupPayment.FULFILLED)

_PAID_WITHOUT_TOPUP = f"""
SELECT p.id FROM {_P} p
  LEFT JOIN {T} t ON t.id = p.transfer_id
  LEFT JOIN {A} w ON w.id = t.wallet_id
 WHERE p.status IN ({_FULFILLED})
   AND (t.id IS NULL OR t.kind <> 'topup' OR t.amount <> p.tokens
        OR t.idempotency_key IS DISTINCT FROM 'stripe:' || p.checkout_session_id
        OR w.merchant_id IS DISTINCT FROM p.merchant_id)
 ORDER BY p.id
"""  # noqa: S608 (table names and statuses are ours)

_TOPUP_WITHOUT_PAYMENT = f"""
SELECT t.id FROM {T} t
  LEFT JOIN {_P} p ON p.transfer_id = t.id AND p.status IN ({_FULFILLED})
 WHERE t.kind = 'topup' AND t.idempotency_key LIKE %s AND p.id IS NULL
 ORDER BY t.id
"""  # noqa: S608


@register_check
def check_paid_sessions_topped_up_once() -> list[Violation]:
    """Invariant 6: every paid session has exactly one top-up of its tokens, and every Stripe top-up a
    paid session (the key is unique, so "one" is "the linked transfer is the session's")."""
    unpaid = tuple(row[0] for row in _rows(_PAID_WITHOUT_TOPUP))
    orphans = tuple(row[0] for row in _rows(_TOPUP_WITHOUT_PAYMENT, ["stripe:%"]))
    violations = []
    if unpaid:
        violations.append(
            Violation(6, "paid_without_topup", f"{len(unpaid)} paid payment(s) lack their top-up", unpaid)
        )
    if orphans:
        violations.append(
            Violation(
                6, "topup_without_payment", f"{len(orphans)} Stripe top-up(s) lack a paid payment", orphans
            )
        )
    return violations


# Invariant 7: a sponsorship's month counters equal its transfers, and never pass its limit (the CHECK
# keeps held + spent <= limit_tokens; this proves the counters are the transfers' own).
_M = SponsorshipMonth._meta.db_table
_MONTH_MISMATCH = f"""
SELECT m.id, m.held, m.spent, COALESCE(x.held, 0), COALESCE(x.spent, 0), m.limit_tokens
  FROM {_M} m LEFT JOIN (
    SELECT h.sponsorship_month_id AS month_id,
           SUM(CASE WHEN r.id IS NULL THEN h.amount ELSE 0 END) AS held,
           SUM(CASE WHEN r.kind = 'settle' THEN r.amount ELSE 0 END) AS spent
      FROM {T} h LEFT JOIN {T} r ON r.pending_id = h.id
     WHERE h.kind = 'hold' AND h.sponsorship_month_id IS NOT NULL
     GROUP BY h.sponsorship_month_id
  ) x ON x.month_id = m.id
 WHERE m.held <> COALESCE(x.held, 0) OR m.spent <> COALESCE(x.spent, 0)
    OR m.held + m.spent > m.limit_tokens
 ORDER BY m.id
"""  # noqa: S608 (table names are ours)

# A sponsored transfer moves the sponsor's wallet for another store, and resolves like its hold.
_SPONSORED_MISSHAPEN = f"""
SELECT t.id FROM {T} t
  JOIN {A} w ON w.id = t.wallet_id
  JOIN {A} b ON b.id = t.beneficiary_id
  LEFT JOIN {T} h ON h.id = t.pending_id
 WHERE w.kind <> 'wallet' OR b.kind <> 'wallet' OR w.merchant_id = b.merchant_id
    OR (h.id IS NOT NULL AND (h.sponsorship_month_id IS DISTINCT FROM t.sponsorship_month_id
                              OR h.beneficiary_id IS DISTINCT FROM t.beneficiary_id))
 ORDER BY t.id
"""  # noqa: S608


@register_check
def check_sponsorship_months() -> list[Violation]:
    """Invariant 7: every sponsorship month's held and spent equal its sponsored holds and charges, within
    its limit; every sponsored transfer moves a sponsor's wallet for another store."""
    violations = [
        Violation(
            7,
            "sponsorship_month_mismatch",
            f"sponsorship month {month_id}: held {held:,} / spent {spent:,}, transfers say "
            f"{want_held:,} / {want_spent:,}, limit {limit:,}",
            (month_id,),
        )
        for month_id, held, spent, want_held, want_spent, limit in _rows(_MONTH_MISMATCH)
    ]
    if misshapen := tuple(row[0] for row in _rows(_SPONSORED_MISSHAPEN)):
        violations.append(
            Violation(
                7, "sponsored_misshapen", f"{len(misshapen)} sponsored transfer(s) are misshapen", misshapen
            )
        )
    return violations


# Invariant 8: promotional credits are gone once they expire (give the sweeper a grace period).
_EXPIRED_PROMOS_LEFT = f"""
SELECT id FROM {A}
 WHERE kind = 'promo' AND expires_at < %s AND credits_posted - debits_posted - debits_pending > 0
 ORDER BY id
"""  # noqa: S608


@register_check
def check_expired_promotions_gone(*, now: datetime | None = None) -> list[Violation]:
    """Invariant 8: no expired promotional block still lends tokens a sweep past its expiry."""
    cutoff = (now or timezone.now()) - sweep_grace()
    if left := tuple(row[0] for row in _rows(_EXPIRED_PROMOS_LEFT, [cutoff])):
        return [
            Violation(
                8,
                "expired_promotion_left",
                f"{len(left)} expired promotional block(s) still hold tokens",
                left,
            )
        ]
    return []


def ledger_summary() -> str:
    """One line for a clean run: how much was checked, and which wallets are flagged in debt."""
    transfers, wallets = _rows(
        f"SELECT (SELECT COUNT(*) FROM {T}), (SELECT COUNT(*) FROM {A} WHERE kind = 'wallet')"  # noqa: S608
    )[0]
    flagged = flagged_wallets()
    flag_text = (
        f"; {len(flagged)} wallet(s) flagged in debt: {', '.join(str(w) for w, _ in flagged)}"
        if flagged
        else ""
    )
    return (
        f"Ledger consistent: {transfers:,} transfers over {wallets:,} wallets, "
        f"{len(_CHECKS)} checks passed{flag_text}."
    )
