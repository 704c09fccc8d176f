"""Rebuilding the analytics fact table from the ledger and the runs, in one set-based SQL statement.

Revenue per run follows the cost basis of the tokens it spent (docs/analytics.md, "Revenue per token"):
every merchant wallet is a queue of lots (credits, in id order) drawn down first-in first-out by its
spending (debits, in id order). A lot's tokens carry a price per token in USD: a paid top-up the price its
payment paid over its tokens, everything else 0. With both sides as running totals, a spend covers the
interval (spent before it, spent before it + amount] and takes from each lot the overlap with that lot's
interval, at the lot's price: window functions and a range join, no loop over rows.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from analytics.models import EconomicsRefresh
from analytics.selectors import OUTCOMES_ROLLUP_SQL
from widgets.selectors import RESOLUTION_WINDOW

# Lots (credits to a wallet): a top-up paid through Stripe (a checkout, or an auto-recharge) carries
# amount_cents / tokens; the tokens a
# clawback took back come off that payment's lot (and a won dispute's give-back is the same lot restored,
# so it is not a lot of its own); adjustments, legacy promotion credits, run refunds and top-ups without a
# payment carry 0. Spends (debits of a wallet): settle transfers and negative adjustments. Settle
# transfers from promotional credit blocks (accounts of kind "promo") carry 0 and draw no lot.
REFRESH_SQL = """
WITH wallets AS (
    SELECT id FROM wallets_account WHERE kind = 'wallet'
),
payments AS (
    SELECT transfer_id, tokens, amount_cents, tokens_clawed_back FROM wallets_topuppayment
    WHERE transfer_id IS NOT NULL
    {recharges}
),
lots AS (
    SELECT t.credit_account_id AS account_id, t.id,
           CASE WHEN p.transfer_id IS NOT NULL THEN t.amount - p.tokens_clawed_back ELSE t.amount END AS size,
           CASE WHEN p.transfer_id IS NOT NULL THEN (p.amount_cents::numeric / 100) / p.tokens ELSE 0 END
               AS unit_usd
    FROM wallets_transfer t
    JOIN wallets ON wallets.id = t.credit_account_id
    LEFT JOIN payments p ON p.transfer_id = t.id
    WHERE t.kind IN ('topup', 'adjustment', 'promotion', 'refund')
      AND NOT (t.kind = 'topup' AND (t.idempotency_key LIKE 'stripe-dispute-won:%%'
                                     OR t.idempotency_key LIKE 'stripe-recharge-dispute-won:%%'))
),
lot_ranges AS (
    SELECT account_id, unit_usd,
           SUM(size) OVER (PARTITION BY account_id ORDER BY id) - size AS lo,
           SUM(size) OVER (PARTITION BY account_id ORDER BY id) AS hi
    FROM lots WHERE size > 0
),
spends AS (
    SELECT t.debit_account_id AS account_id, t.id, t.amount, t.kind
    FROM wallets_transfer t
    JOIN wallets ON wallets.id = t.debit_account_id
    WHERE t.kind IN ('settle', 'adjustment')
),
spend_ranges AS (
    SELECT id, account_id, amount,
           SUM(amount) OVER (PARTITION BY account_id ORDER BY id) - amount AS lo,
           SUM(amount) OVER (PARTITION BY account_id ORDER BY id) AS hi
    FROM spends
),
spend_revenue AS (
    SELECT s.id, SUM((LEAST(s.hi, l.hi) - GREATEST(s.lo, l.lo)) * l.unit_usd) AS revenue_usd
    FROM spend_ranges s
    JOIN lot_ranges l ON l.account_id = s.account_id AND l.lo < s.hi AND l.hi > s.lo AND l.unit_usd > 0
    GROUP BY s.id
),
settles AS (
    SELECT COALESCE(r1.id, r2.id) AS run_id, s.amount,
           CASE WHEN a.kind = 'wallet' THEN 0 ELSE s.amount END AS promo_amount,
           CASE WHEN a.kind = 'wallet' THEN COALESCE(sr.revenue_usd, 0) ELSE 0 END AS revenue_usd
    FROM wallets_transfer s
    JOIN wallets_account a ON a.id = s.debit_account_id
    JOIN wallets_transfer h ON h.id = s.pending_id
    LEFT JOIN spend_revenue sr ON sr.id = s.id
    -- Run.hold is a run's first hold part; the other parts name the run in their reference.
    LEFT JOIN agents_run r1 ON r1.hold_id = h.id
    LEFT JOIN agents_run r2 ON r1.id IS NULL
        AND r2.id = CASE WHEN h.reference ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                         THEN h.reference::uuid END
    WHERE s.kind = 'settle'
),
per_run AS (
    SELECT run_id, SUM(amount) AS tokens, SUM(promo_amount) AS promo_tokens, SUM(revenue_usd) AS revenue_usd
    FROM settles WHERE run_id IS NOT NULL GROUP BY run_id
)
INSERT INTO analytics_runeconomics (
    run_id, merchant_id, tool, model, status, created_at, week, tokens, promo_tokens, revenue_usd,
    provider_cost_usd, provider_input_tokens, provider_output_tokens
)
SELECT r.id, r.merchant_id, r.tool, r.model, r.status, r.created_at,
       date_trunc('week', r.created_at AT TIME ZONE 'UTC')::date,
       COALESCE(x.tokens, 0), COALESCE(x.promo_tokens, 0), COALESCE(x.revenue_usd, 0),
       r.provider_cost_usd, r.provider_input_tokens, r.provider_output_tokens
FROM agents_run r
LEFT JOIN per_run x ON x.run_id = r.id
WHERE r.status IN ('succeeded', 'failed', 'canceled')
"""


ROLLUP_SQL = """
INSERT INTO analytics_storeweek (
    merchant_id, tool, model, week, month, runs, failed_runs, tokens, revenue_usd, provider_cost_usd, first_week
)
SELECT g.*, MIN(week) FILTER (WHERE runs > 0) OVER (PARTITION BY tool, merchant_id)
FROM (
    SELECT merchant_id, tool, model, week, date_trunc('month', created_at AT TIME ZONE 'UTC')::date,
           COUNT(*) FILTER (WHERE status = 'succeeded') AS runs, COUNT(*) FILTER (WHERE status = 'failed'),
           SUM(tokens), SUM(revenue_usd), SUM(provider_cost_usd)
    FROM analytics_runeconomics
    GROUP BY 1, 2, 3, 4, 5
) g
"""


MONTHS_SQL = """
INSERT INTO analytics_storemonth (
    merchant_id, tool, model, month, runs, failed_runs, tokens, revenue_usd, provider_cost_usd
)
SELECT merchant_id, tool, model, month, SUM(runs), SUM(failed_runs), SUM(tokens), SUM(revenue_usd),
       SUM(provider_cost_usd)
FROM analytics_storeweek GROUP BY 1, 2, 3, 4
"""

# Auto-recharge payments (wallets.RechargeAttempt) are priced like checkouts, where that feature exists.
RECHARGES_SQL = """
    UNION ALL
    SELECT transfer_id, tokens, amount_cents, tokens_clawed_back FROM wallets_rechargeattempt
    WHERE transfer_id IS NOT NULL
"""


def _refresh_sql() -> str:
    from django.apps import apps

    try:
        apps.get_model("wallets", "RechargeAttempt")
    except LookupError:
        return REFRESH_SQL.replace("{recharges}", "")
    return REFRESH_SQL.replace("{recharges}", RECHARGES_SQL)


def economics_refresh() -> EconomicsRefresh:
    """Rebuild the fact table in one transaction: readers see the old rows until it commits."""
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        # One rebuild at a time (beat and a staff member's button may race); the second waits, then redoes it.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('analytics_economics_refresh'))")
        cursor.execute("DELETE FROM analytics_storeweek")
        cursor.execute("DELETE FROM analytics_storemonth")
        cursor.execute("DELETE FROM analytics_botweek")
        cursor.execute("DELETE FROM analytics_runeconomics")
        cursor.execute(_refresh_sql())
        runs = cursor.rowcount
        cursor.execute(ROLLUP_SQL)
        cursor.execute(MONTHS_SQL)
        cursor.execute(
            OUTCOMES_ROLLUP_SQL,
            {
                "since": datetime(2000, 1, 1, tzinfo=UTC),
                "until": timezone.now() + timedelta(days=1),
                "settled_before": timezone.now() - RESOLUTION_WINDOW,
                "tz": "UTC",
            },
        )
        refresh = EconomicsRefresh.objects.create(
            finished_at=timezone.now(), seconds=time.monotonic() - started, runs=runs
        )
        EconomicsRefresh.objects.exclude(pk=refresh.pk).delete()
    return refresh
