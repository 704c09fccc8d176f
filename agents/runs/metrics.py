"""The run engine's state for Prometheus, read from the database at scrape time (never stale)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Min, Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from agents.models import Run


def runs_collect() -> Iterable[Metric]:
    by_status = GaugeMetricFamily("tokenhub_runs", "Runs by tool and status.", labels=["tool", "status"])
    for row in Run.objects.order_by().values("tool", "status").annotate(n=Count("pk")):
        by_status.add_metric([row["tool"], row["status"]], row["n"])
    yield by_status

    unfinished = Run.objects.filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING]).order_by()
    held = unfinished.aggregate(held=Sum("held"))["held"] or 0
    yield GaugeMetricFamily("tokenhub_tokens_held", "Tokens held by runs that have not finished.", value=held)

    waiting = GaugeMetricFamily("tokenhub_runs_waiting", "Queued runs by why they wait.", labels=["reason"])
    for reason_row in unfinished.filter(status=Run.Status.QUEUED).values("waiting").annotate(n=Count("pk")):
        waiting.add_metric([reason_row["waiting"] or "not_started"], reason_row["n"])
    yield waiting

    oldest = unfinished.filter(status=Run.Status.QUEUED).aggregate(at=Min("enqueued_at"))["at"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    yield GaugeMetricFamily(
        "tokenhub_oldest_queued_run_age_seconds", "Seconds the oldest queued run has waited.", value=age
    )
