"""The operator's analytics page: staff only, every store, from the fact table (docs/analytics.md)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from analytics.charts import bar_chart, heat_class
from analytics.selectors import PERIODS, RETENTION_WEEKS, operator_report
from analytics.services import economics_refresh

DEFAULT_WEEKS = 12


def _day(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


@staff_member_required
def analytics_page(request: HttpRequest) -> HttpResponse:
    started = time.monotonic()
    today = datetime.now(tz=UTC).date()
    until_day = _day(request.GET.get("until"), today)
    since_day = _day(request.GET.get("since"), until_day - timedelta(weeks=DEFAULT_WEEKS))
    asked = request.GET.get("period", "week")
    period = asked if asked in PERIODS else "week"
    report = operator_report(since=since_day, until=until_day, period=period)
    charts = {}
    for name, rows in (("tool", report.by_tool), ("model", report.by_model)):
        charts[name] = [
            bar_chart(rows, value=lambda r: r.stores_active, title=_("Active stores")),
            bar_chart(rows, value=lambda r: r.runs, title=_("Runs")),
            bar_chart(rows, value=lambda r: r.tokens, title=_("Tokens charged")),
            bar_chart(rows, value=lambda r: r.revenue_usd, title=_("Revenue (USD)"), money=True),
            bar_chart(rows, value=lambda r: r.provider_cost_usd, title=_("Provider cost (USD)"), money=True),
            bar_chart(rows, value=lambda r: r.gross_margin_usd, title=_("Gross margin (USD)"), money=True),
        ]
    cohorts = [(c, [(pct, heat_class(pct)) for pct in c.retained_pct]) for c in report.retention]
    context = {
        "report": report,
        "charts": charts,
        "cohorts": cohorts,
        "retention_weeks": range(1, RETENTION_WEEKS + 1),
        "bot": report.bot,
        "since": report.since,
        "until": until_day,
        "period": period,
        "periods": PERIODS,
        "elapsed_ms": round((time.monotonic() - started) * 1000),
        "title": _("Analytics"),
    }
    return render(request, "analytics/page.html", context)


@staff_member_required
@require_POST
def analytics_refresh(request: HttpRequest) -> HttpResponse:
    refresh = economics_refresh()
    messages.success(
        request,
        _("Figures rebuilt from the ledger: %(runs)s runs in %(seconds).1f s.")
        % {"runs": refresh.runs, "seconds": refresh.seconds},
    )
    # Back to the same range: only our own path, with the page's query string (no open redirect).
    query = QueryDict(request.POST.get("query", ""))
    return redirect(f"{reverse('staff-analytics')}?{query.urlencode()}")
