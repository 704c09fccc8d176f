"""Tenant-scoped reads of runs: each takes the merchant and never returns another tenant's rows."""

import uuid
from datetime import date

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from agents.models import Batch, Run
from merchants.models import Merchant


def as_uuid(value) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


# What a run's `funding` reads for a run paid from one source: no query per run in a list.
FUNDING_JOINS = ("hold__wallet__merchant", "hold__resolution")


def run_of(*, merchant: Merchant, run_id) -> Run | None:
    """The merchant's run, or None for a malformed id or another merchant's run (both answer 404)."""
    if (pk := as_uuid(run_id)) is None:
        return None
    return Run.objects.filter(merchant=merchant, pk=pk).select_related(*FUNDING_JOINS).first()


def runs_of(
    *,
    merchant: Merchant,
    tool: str | None = None,
    status: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[Run]:
    """The merchant's runs, newest first; `since`/`until` are days in the current time zone, inclusive."""
    runs = Run.objects.filter(merchant=merchant).select_related(*FUNDING_JOINS).order_by("-created_at", "-pk")
    if tool:
        runs = runs.filter(tool=tool)
    if status:
        runs = runs.filter(status=status)
    if since:
        runs = runs.filter(created_at__date__gte=since)
    if until:
        runs = runs.filter(created_at__date__lte=until)
    return runs


def batch_of(*, merchant: Merchant, batch_id) -> Batch | None:
    if (pk := as_uuid(batch_id)) is None:
        return None
    return Batch.objects.filter(merchant=merchant, pk=pk).first()


def batches_of(*, merchant: Merchant) -> QuerySet[Batch]:
    """The merchant's batches, newest first, each with `finished_runs`, `failed_runs` and `charged`
    (tokens charged so far), for the list of recent batches."""
    return (
        Batch.objects.filter(merchant=merchant)
        .annotate(
            finished_runs=Count("runs", filter=Q(runs__status__in=Run.TERMINAL)),
            failed_runs=Count("runs", filter=Q(runs__status=Run.Status.FAILED)),
            charged=Coalesce(Sum("runs__cost"), 0),
        )
        .order_by("-created_at")
    )


def batch_progress(*, batch: Batch) -> dict[str, int]:
    """Runs of the batch by status, plus `total`, `finished`, `charged` (tokens charged so far) and
    `held` (tokens still held by its unfinished runs)."""
    counts = dict.fromkeys(Run.Status.values, 0)
    charged = held = 0
    rows = Run.objects.filter(batch=batch).order_by().values("status")
    for row in rows.annotate(n=Count("pk"), cost=Sum("cost"), held=Sum("held")):
        counts[row["status"]] = row["n"]
        charged += row["cost"] or 0
        if row["status"] not in Run.TERMINAL:
            held += row["held"] or 0
    counts["total"] = sum(counts[s] for s in Run.Status.values)
    counts["finished"] = sum(counts[s] for s in Run.TERMINAL)
    counts["charged"], counts["held"] = charged, held
    return counts


def usage_by_day(*, merchant: Merchant, days: int = 14) -> list[dict]:
    """Tokens charged per day and per tool over the last `days` days, oldest first, empty days included."""
    from datetime import timedelta

    from django.db.models import Sum
    from django.db.models.functions import TruncDate
    from django.utils import timezone

    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    rows = (
        Run.objects.filter(merchant=merchant, status=Run.Status.SUCCEEDED, finished_at__date__gte=first)
        .annotate(day=TruncDate("finished_at"))
        .values("day", "tool")
        .annotate(tokens=Sum("cost"))
        .order_by()
    )
    by_day: dict = {first + timedelta(days=n): {} for n in range(days)}
    for row in rows:
        by_day.setdefault(row["day"], {})[row["tool"]] = row["tokens"] or 0
    return [
        {"day": day, "tools": tools, "total": sum(tools.values())} for day, tools in sorted(by_day.items())
    ]
