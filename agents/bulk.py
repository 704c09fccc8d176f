"""Bulk listings: a CSV of products becomes one batch of listing-writer runs, all or nothing.

Choices a merchant can rely on:
- Every row is validated first; if any row is invalid, nothing is created and every bad row is reported
  by its spreadsheet row number (the header is row 1) and field.
- The whole batch is checked against the wallet as one total before anything is held: too few tokens and
  InsufficientTokens says how many the whole file needs. Each run still has its own hold, created in the
  same transaction under the wallet's row lock, so the check and the holds cannot disagree.
- Bounded: at most MAX_ROWS products and MAX_BYTES of file. Unknown columns are an error (a misspelt
  header would otherwise silently drop a field). `features` split on `|` or `;`; `keywords` also on `,`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from typing import Any

from django.db import transaction

from agents.errors import BulkFileInvalid, InvalidRunInput
from agents.models import Batch, Run
from agents.runs.create import RunSpec, runs_build
from agents.runs.estimate import Estimate, request_hash, run_estimate, tool_of
from merchants.actors import Actor
from merchants.models import Merchant
from wallets.exceptions import InsufficientTokens
from wallets.services import wallet_of

TOOL = "listing-writer"
MAX_ROWS = 1000
MAX_BYTES = 2 * 1024 * 1024
COLUMNS = ("product_name", "category", "features", "keywords", "audience", "tone", "language", "marketplace")
_SPLIT = {"features": re.compile(r"[|;]"), "keywords": re.compile(r"[|;,]")}
RESULT_COLUMNS = (
    "row",
    "product_name",
    "status",
    "title",
    "bullets",
    "description",
    "seo_title",
    "seo_meta_description",
    "seo_keywords",
    "tags",
    "cost",
    "error",
)


def _text(content: bytes | str) -> str:
    if isinstance(content, str):
        content = content.encode()
    if len(content) > MAX_BYTES:
        raise BulkFileInvalid(
            f"The file is larger than {MAX_BYTES // 1024 // 1024} MB.", details={"file": "too large"}
        )
    try:
        return content.decode("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError:
        raise BulkFileInvalid("The file must be UTF-8 encoded CSV.", details={"file": "not UTF-8"}) from None


def _row_input(cells: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for column in COLUMNS:
        value = (cells.get(column) or "").strip()
        if not value:
            continue
        if column in _SPLIT:
            data[column] = [part.strip() for part in _SPLIT[column].split(value) if part.strip()]
        else:
            data[column] = value
    return data


def bulk_rows(content: bytes | str) -> list[tuple[int, dict[str, Any]]]:
    """The file's products as (row number, tool input); raises BulkFileInvalid for the file's shape."""
    reader = csv.DictReader(io.StringIO(_text(content), newline=""))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    if "product_name" not in header:
        raise BulkFileInvalid(
            "The first row must name the columns, including product_name.",
            details={"file": f"missing product_name column; columns are {', '.join(COLUMNS)}"},
        )
    unknown = sorted(set(header) - set(COLUMNS) - {""})
    if unknown:
        raise BulkFileInvalid(
            f"Unknown columns: {', '.join(unknown)}. Accepted: {', '.join(COLUMNS)}.",
            details={"file": f"unknown columns: {', '.join(unknown)}"},
        )
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, Any]]] = []
    for cells in reader:
        number = reader.line_num  # the line the row ends on: the spreadsheet's row number, header = 1
        if None in cells:  # more cells than columns
            raise BulkFileInvalid(
                f"Row {number} has more cells than the header has columns.",
                details={"rows": {str(number): {"row": "more cells than columns"}}},
            )
        if not any((value or "").strip() for value in cells.values()):
            continue  # blank line
        rows.append((number, _row_input(cells)))
        if len(rows) > MAX_ROWS:
            raise BulkFileInvalid(
                f"A file may hold at most {MAX_ROWS} products.",
                details={"file": f"more than {MAX_ROWS} rows"},
            )
    if not rows:
        raise BulkFileInvalid("The file holds no products.", details={"file": "no rows"})
    return rows


def bulk_create(
    *,
    merchant: Merchant,
    content: bytes | str,
    actor: Actor,
    filename: str = "",
    created_by=None,
    api_key_id: int | None = None,
) -> Batch:
    """A batch of queued listing-writer runs, each with its hold, enqueued on commit.

    Raises BulkFileInvalid (details: {"file": ...} or {"rows": {row: {field: message}}}), or
    InsufficientTokens with the whole batch's total as `required`. Either way nothing is created.
    """
    tool = tool_of(TOOL)
    estimates: list[tuple[int, dict[str, Any], Estimate]] = []
    errors: dict[str, dict[str, str]] = {}
    for number, data in bulk_rows(content):
        try:
            estimates.append((number, data, run_estimate(merchant=merchant, tool=tool, input=data)))
        except InvalidRunInput as exc:
            errors[str(number)] = exc.details
    if errors:
        rows = ", ".join(list(errors)[:10]) + ("…" if len(errors) > 10 else "")
        raise BulkFileInvalid(
            f"{len(errors)} rows are invalid (rows {rows}); nothing was created.", details={"rows": errors}
        )
    total = sum(estimate.held for _, _, estimate in estimates)
    if (available := wallet_of(merchant=merchant).available) < total:
        raise InsufficientTokens(required=total, available=available)
    specs = [
        RunSpec(
            estimate=estimate,
            request_hash=request_hash(tool=tool.slug, input=data),
            created_by=created_by,
            api_key_id=api_key_id,
            batch_row=number,
        )
        for number, data, estimate in estimates
    ]
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                merchant=merchant,
                tool=tool.slug,
                filename=filename[:255],
                row_count=len(specs),
                total_held=total,
                created_by=created_by,
            )
            # Each run holds for itself through the ledger's conditional update: no separate wallet lock.
            runs_build(merchant=merchant, specs=[replace(spec, batch=batch) for spec in specs], actor=actor)
    except InsufficientTokens:
        # Another run took tokens since the check: the whole batch is refused, and says what it needs.
        raise InsufficientTokens(required=total, available=wallet_of(merchant=merchant).available) from None
    return batch


def _joined(values: Any) -> str:
    return " | ".join(str(v) for v in values) if isinstance(values, list) else ""


def _cell(value: Any) -> Any:
    """Model text opened in a spreadsheet must not run as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def bulk_results_csv(batch: Batch) -> str:
    """One line per product, in file order: the listing when it succeeded, the reason when it did not."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(RESULT_COLUMNS)
    for run in Run.objects.filter(batch=batch).order_by("batch_row"):
        output = run.output or {}
        seo = output.get("seo") or {}
        writer.writerow(
            _cell(value)
            for value in [
                run.batch_row,
                run.input.get("product_name", ""),
                run.status,
                output.get("title", ""),
                _joined(output.get("bullets")),
                output.get("description", ""),
                seo.get("title", ""),
                seo.get("meta_description", ""),
                _joined(seo.get("keywords")),
                _joined(output.get("tags")),
                "" if run.cost is None else run.cost,
                run.error_message,
            ]
        )
    return out.getvalue()
