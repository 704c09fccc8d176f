"""The operator's figures as plain data: what `usage_report` prints and the page's CSV/JSON agree on."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from analytics.selectors import Cohort, OperatorReport, Row

CENT = Decimal("0.000001")


def _usd(value: Decimal) -> str:
    """USD as a string with six decimals: a JSON float would round a micro-dollar cost away."""
    return str(value.quantize(CENT))


def _row(row: Row, name: str) -> dict[str, Any]:
    return {
        name: row.key,
        "stores_active": row.stores_active,
        "runs": row.runs,
        "tokens": row.tokens,
        "revenue_usd": _usd(row.revenue_usd),
        "provider_cost_usd": _usd(row.provider_cost_usd),
        "gross_margin_usd": _usd(row.gross_margin_usd),
    }


def _cohort(cohort: Cohort) -> dict[str, Any]:
    return {
        "tool": cohort.tool,
        "cohort_week": cohort.cohort_week.isoformat(),
        "stores": cohort.stores,
        "retained": cohort.retained,
    }


def report_data(report: OperatorReport) -> dict[str, list[dict[str, Any]]]:
    return {
        "tools": [_row(r, "tool") for r in report.tools],
        "models": [_row(r, "model") for r in report.models],
        "retention": [_cohort(c) for c in report.retention],
    }


CSV_HEADER = [
    "section",
    "name",
    "stores_active",
    "runs",
    "tokens",
    "revenue_usd",
    "provider_cost_usd",
    "gross_margin_usd",
    "cohort_week",
    "stores",
    *[f"w{k}" for k in range(1, 9)],
]


def report_rows(data: dict[str, list[dict[str, Any]]]) -> list[list[Any]]:
    """One CSV row per tool, model and cohort, under one header (the section column tells them apart)."""
    rows: list[list[Any]] = []
    for section, name in (("tool", "tool"), ("model", "model")):
        for r in data[f"{section}s"]:
            rows.append(
                [section, r[name], r["stores_active"], r["runs"], r["tokens"], r["revenue_usd"]]
                + [r["provider_cost_usd"], r["gross_margin_usd"], "", ""]
                + [""] * 8
            )
    for c in data["retention"]:
        retained = ["" if n is None else n for n in c["retained"]]
        rows.append(
            ["retention", c["tool"], "", "", "", "", "", "", c["cohort_week"], c["stores"], *retained]
        )
    return rows
