"""Reads for the operator's analytics (staff only, every store) and a store's own usage (its home page).

The operator's numbers come from the fact table `RunEconomics` (rebuilt by `economics_refresh`); a store's
own usage is read from its runs directly, scoped to that store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from agents.models import Run
from analytics.models import EconomicsRefresh
from merchants.models import Merchant

RETENTION_WEEKS = 8
TOP_STORES = 10
PERIODS = ("week", "month")
WORK_MEM = "64MB"


@dataclass
class Figures:
    stores_active: int = 0
    runs: int = 0
    failed_runs: int = 0
    tokens: int = 0
    revenue_usd: Decimal = Decimal(0)
    provider_cost_usd: Decimal = Decimal(0)

    @property
    def gross_margin_usd(self) -> Decimal:
        return self.revenue_usd - self.provider_cost_usd

    @property
    def margin_pct(self) -> float | None:
        """Gross margin over revenue; None without revenue (promotional use only)."""
        if not self.revenue_usd:
            return None
        return float(self.gross_margin_usd / self.revenue_usd * 100)


@dataclass
class Row(Figures):
    period: date | None = None
    key: str = ""  # tool slug, model name or store name


@dataclass
class Cohort:
    tool: str
    cohort_week: date
    stores: int
    retained: list[int | None] = field(default_factory=list)  # None: that week has not ended yet

    @property
    def retained_pct(self) -> list[float | None]:
        return [None if n is None else 100 * n / self.stores for n in self.retained]


@dataclass
class OperatorReport:
    since: date  # the first day of the first week (or month) shown
    until: date
    period: str
    by_tool: list[Row]
    by_model: list[Row]
    tools: list[Row]
    models: list[Row]
    top_margin: list[Row]
    top_loss: list[Row]
    retention: list[Cohort]
    bot: BotOutcomes
    refreshed_at: datetime | None


_FIGURES = """
    COUNT(DISTINCT merchant_id) FILTER (WHERE runs > 0),
    COALESCE(SUM(runs), 0), COALESCE(SUM(failed_runs), 0),
    COALESCE(SUM(tokens), 0), COALESCE(SUM(revenue_usd), 0), COALESCE(SUM(provider_cost_usd), 0)
"""


def _table(period: str) -> str:
    return "analytics_storeweek" if period == "week" else "analytics_storemonth"


def _in_range(period: str) -> str:
    """Rows of whole weeks (or months) that start in [since, until]: the range is rounded out to them."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}")
    return f"{period} >= %s AND {period} <= %s"


def period_start(day: date, period: str) -> date:
    return day - timedelta(days=day.weekday()) if period == "week" else day.replace(day=1)


def _figures(values: tuple[Any, ...]) -> dict[str, Any]:
    stores, runs, failed, tokens, revenue, cost = values
    return {
        "stores_active": stores,
        "runs": int(runs),
        "failed_runs": int(failed),
        "tokens": int(tokens),
        "revenue_usd": Decimal(revenue),
        "provider_cost_usd": Decimal(cost),
    }


def _grouped(*, since: date, until: date, period: str) -> tuple[list[Row], ...]:
    """One scan of the range's store-weeks, grouped four ways (tool or model, with or without the period)."""
    sql = f"""
        SELECT GROUPING({period}, tool), GROUPING({period}, model), {period}, tool, model, {_FIGURES}
        FROM {_table(period)} WHERE {_in_range(period)}
        GROUP BY GROUPING SETS (({period}, tool), ({period}, model), (tool), (model))
        ORDER BY {period} NULLS FIRST, tool, model
    """  # noqa: S608 - only our own constants are formatted in
    by_tool, by_model, tools, models = [], [], [], []
    with connection.cursor() as cursor:
        cursor.execute(sql, [period_start(since, period), until])
        for g_tool, g_model, p, tool, model, *values in cursor.fetchall():
            figures = _figures(tuple(values))
            # GROUPING() is a bit mask of the columns left out of the row's grouping set.
            if g_tool == 0:
                by_tool.append(Row(period=p, key=tool, **figures))
            elif g_model == 0:
                by_model.append(Row(period=p, key=model, **figures))
            elif g_tool == 2:
                tools.append(Row(key=tool, **figures))
            elif g_model == 2:
                models.append(Row(key=model, **figures))
    return by_tool, by_model, tools, models


def _top_stores(*, since: date, until: date, period: str) -> tuple[list[Row], list[Row]]:
    """The stores with the highest gross margin, and those that cost more than they paid (worst first)."""
    sql = f"""
        SELECT merchant_id, {_FIGURES} FROM {_table(period)} WHERE {_in_range(period)} GROUP BY merchant_id
    """  # noqa: S608 - only our own constants are formatted in
    with connection.cursor() as cursor:
        cursor.execute(sql, [period_start(since, period), until])
        stores = [(r[0], Row(**_figures(tuple(r[1:])))) for r in cursor.fetchall()]
    stores.sort(key=lambda s: s[1].gross_margin_usd, reverse=True)
    best = [s for s in stores[:TOP_STORES] if s[1].gross_margin_usd > 0]
    worst = [s for s in reversed(stores[-TOP_STORES:]) if s[1].gross_margin_usd < 0]
    names = dict(Merchant.objects.filter(pk__in={pk for pk, _ in best + worst}).values_list("pk", "name"))
    for pk, row in best + worst:
        row.key = names.get(pk, str(pk))
    return [row for _, row in best], [row for _, row in worst]


def retention_cohorts(*, since: date, until: date, now: datetime | None = None) -> list[Cohort]:
    """Per tool: the stores whose first succeeded run of it fell in week W (W within the range), and how many
    of them used it again in W+1 … W+8. A week that has not ended yet is None, not 0."""
    # first_week (the cohort) is computed over all history when the roll-up is built: one scan here.
    sql = """
        SELECT tool, first_week, (week - first_week) / 7 AS k, COUNT(DISTINCT merchant_id)
        FROM analytics_storeweek
        WHERE runs > 0 AND first_week >= %s AND first_week < %s AND week - first_week <= %s
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [period_start(since, "week"), until + timedelta(days=1), RETENTION_WEEKS * 7])
        rows = cursor.fetchall()
    this_week = (now or timezone.now()).date()
    this_week -= timedelta(days=this_week.weekday())
    counts: dict[tuple[str, date], dict[int, int]] = {}
    for tool, cohort, k, n in rows:
        counts.setdefault((tool, cohort), {})[int(k)] = n
    cohorts = []
    for (tool, cohort), by_k in counts.items():
        retained: list[int | None] = [
            by_k.get(k, 0) if cohort + timedelta(weeks=k) < this_week else None
            for k in range(1, RETENTION_WEEKS + 1)
        ]
        cohorts.append(Cohort(tool=tool, cohort_week=cohort, stores=by_k.get(0, 0), retained=retained))
    return cohorts


def operator_report(*, since: date, until: date, period: str = "week") -> OperatorReport:
    """Every figure of the page for the weeks (or months) that start between `since` and `until`."""
    with transaction.atomic(), connection.cursor() as cursor:
        # The grouping sets sort the range's store-weeks; in the default 4 MB they spill to disk. JIT
        # compilation cost more than these queries take to run (600 ms of 1.3 s for the bot's outcomes).
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute("SET LOCAL jit = off")
        by_tool, by_model, tools, models = _grouped(since=since, until=until, period=period)
        top_margin, top_loss = _top_stores(since=since, until=until, period=period)
        retention = retention_cohorts(since=since, until=until)
        bot = bot_outcomes(since=since, until=until, period=period)
    refresh = EconomicsRefresh.objects.first()
    return OperatorReport(
        since=period_start(since, period),
        until=until,
        period=period,
        by_tool=by_tool,
        by_model=by_model,
        tools=tools,
        models=models,
        top_margin=top_margin,
        top_loss=top_loss,
        retention=retention,
        bot=bot,
        refreshed_at=refresh.finished_at if refresh else None,
    )


# --- A store's own usage --------------------------------------------------------------------------


def store_usage_by_week(*, merchant: Merchant, weeks: int = 8) -> list[dict[str, Any]]:
    """The store's succeeded runs per tool per week, newest week first: runs, tokens charged, and what
    each tool did (listings written, conversations the bot resolved without a human)."""
    today = timezone.localdate()
    start = today - timedelta(days=today.weekday(), weeks=weeks - 1)
    rows = (
        Run.objects.filter(merchant=merchant, status=Run.Status.SUCCEEDED, created_at__date__gte=start)
        .annotate(week=TruncWeek("created_at"))
        .values("week", "tool")
        .annotate(runs=Count("id"), tokens=Sum("cost"))
        .order_by("-week", "tool")
    )
    resolved = _resolved_conversations_by_week(merchant=merchant, start=start)
    out = []
    for row in rows:
        week = row["week"].date() if isinstance(row["week"], datetime) else row["week"]
        out.append(
            {
                "week": week,
                "tool": row["tool"],
                "runs": row["runs"],
                "tokens": row["tokens"] or 0,
                "listings": row["runs"] if row["tool"] == "listing-writer" else None,
                "resolved": resolved.get(week, 0) if row["tool"] == "customer-service" else None,
            }
        )
    return out


_OUTCOMES_SQL = """
    WITH c AS (
        SELECT id, handed_over_at, date_trunc('week', created_at AT TIME ZONE %(tz)s)::date AS week,
               date_trunc('month', created_at AT TIME ZONE %(tz)s)::date AS month
        FROM agents_conversation WHERE created_at >= %(since)s AND created_at < %(until)s {store}
    ),
    m AS (
        SELECT conversation_id,
               MAX(created_at) FILTER (WHERE role = 'assistant') AS last_reply,
               MAX(created_at) FILTER (WHERE role = 'customer') AS last_customer
        FROM agents_message WHERE conversation_id IN (SELECT id FROM c) GROUP BY conversation_id
    ),
    o AS (
        SELECT c.week, c.month,
               CASE WHEN c.handed_over_at IS NOT NULL THEN 'handed_over'
                    WHEN m.last_reply IS NULL OR m.last_customer > m.last_reply THEN 'open'
                    WHEN m.last_reply > %(settled_before)s THEN 'pending'
                    ELSE 'resolved' END AS outcome
        FROM c LEFT JOIN m ON m.conversation_id = c.id
    )
    SELECT week, outcome, COUNT(*) FROM o GROUP BY week, outcome ORDER BY week
"""

# The same outcomes for every store, rolled up per week and month by the rebuild (analytics.services).
OUTCOMES_ROLLUP_SQL = _OUTCOMES_SQL.replace(
    "SELECT week, outcome, COUNT(*) FROM o GROUP BY week, outcome ORDER BY week",
    """INSERT INTO analytics_botweek (week, month, resolved, pending, handed_over, open)
    SELECT week, month, COUNT(*) FILTER (WHERE outcome = 'resolved'), COUNT(*) FILTER (WHERE outcome = 'pending'),
           COUNT(*) FILTER (WHERE outcome = 'handed_over'), COUNT(*) FILTER (WHERE outcome = 'open')
    FROM o GROUP BY week, month""",
).replace("{store}", "")


def conversation_outcomes(
    *,
    since: datetime,
    until: datetime,
    merchant: Merchant | None = None,
    tz: str = "UTC",
    now: datetime | None = None,
) -> dict[date, dict[str, int]]:
    """Conversations started in the range by week and outcome, by the support outcomes' own rule
    (docs/widget.md, "Outcomes"): resolved by the bot when nobody asked for a person, the bot replied and the
    customer wrote nothing more for RESOLUTION_WINDOW after it; pending while inside that window; handed
    over; or open (no reply yet, or the customer wrote last). Every store, or only `merchant`'s."""
    from widgets.selectors import RESOLUTION_WINDOW

    params: dict[str, Any] = {
        "since": since,
        "until": until,
        "settled_before": (now or timezone.now()) - RESOLUTION_WINDOW,
        "tz": tz,
    }
    store = ""
    if merchant is not None:
        store, params["merchant"] = "AND merchant_id = %(merchant)s", merchant.pk
    weeks: dict[date, dict[str, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_OUTCOMES_SQL.format(store=store), params)
        for week, outcome, n in cursor.fetchall():
            counts = weeks.setdefault(week, {"resolved": 0, "pending": 0, "handed_over": 0, "open": 0})
            counts[outcome] = n
    return weeks


def _resolved_conversations_by_week(*, merchant: Merchant, start: date) -> dict[date, int]:
    since = datetime.combine(start, datetime.min.time(), tzinfo=timezone.get_current_timezone())
    # Weeks in the store's time zone, as its runs' weeks (TruncWeek uses the active time zone).
    weeks = conversation_outcomes(
        since=since,
        until=timezone.now() + timedelta(days=1),
        merchant=merchant,
        tz=timezone.get_current_timezone_name(),
    )
    return {week: counts["resolved"] for week, counts in weeks.items()}


@dataclass
class BotOutcomes:
    resolved: int = 0
    pending: int = 0
    handed_over: int = 0
    open: int = 0
    weeks: list[tuple[date, dict[str, int]]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.resolved + self.pending + self.handed_over + self.open

    @property
    def resolution_rate(self) -> float | None:
        """Resolved over the conversations whose outcome is known (pending ones left out)."""
        decided = self.total - self.pending
        return 100 * self.resolved / decided if decided else None


def bot_outcomes(*, since: date, until: date, period: str = "week") -> BotOutcomes:
    """Every store's conversations started in the range's weeks (or months), by outcome, as of the last
    rebuild (staff only)."""
    sql = f"""
        SELECT week, SUM(resolved), SUM(pending), SUM(handed_over), SUM(open) FROM analytics_botweek
        WHERE {_in_range(period)} GROUP BY week ORDER BY week
    """  # noqa: S608 - only our own constants are formatted in
    with connection.cursor() as cursor:
        cursor.execute(sql, [period_start(since, period), until])
        weeks = {
            week: {"resolved": int(r), "pending": int(p), "handed_over": int(h), "open": int(o)}
            for week, r, p, h, o in cursor.fetchall()
        }
    result = BotOutcomes(weeks=sorted(weeks.items()))
    for counts in weeks.values():
        result.resolved += counts["resolved"]
        result.pending += counts["pending"]
        result.handed_over += counts["handed_over"]
        result.open += counts["open"]
    return result
