"""Bulk listings: a CSV of products becomes one batch of listing-writer runs, all or nothing.

Choices a merchant can rely on:
- Every row is validated first; if any row is invalid, nothing is created and every bad row is reported
  by its spreadsheet row number (the header is row 1) and field.
- The whole batch is checked against the wallet as one total before anything is held: too few tokens and
  InsufficientTokens says how many the whole file needs. Each run still has its own hold, created in the
  same transaction under the wallet's row lock, so the check and the holds cannot disagree.
- Bounded: at most MAX_ROWS products, MAX_BYTES of file and MAX_CELL_CHARS per cell; a NUL character
  (which no stored text may hold, tokenhub.text) is refused with its row. Unknown columns are an error (a misspelt
  header would otherwise silently drop a field). `features` split on `|` or `;`; `keywords` also on `,`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from typing import Any

from django.db import transaction
from django.utils.translation import gettext, ngettext

from agents.errors import BulkFileInvalid, InvalidRunInput
from agents.models import Batch, Run
from agents.runs.create import RunSpec, runs_build
from agents.runs.estimate import Estimate, request_hash, run_estimate, tool_of
from merchants.actors import Actor
from merchants.models import Merchant
from wallets.exceptions import InsufficientTokens
from wallets.funding import sources_for, spendable

TOOL = "listing-writer"


def spendable_by(merchant: Merchant, *, tool: str) -> int:
    """All the store could spend on `tool` now: sponsorship, promotional credits and paid tokens."""
    return spendable(sources_for(merchant=merchant, tool=tool))


MAX_ROWS = 1000
MAX_BYTES = 2 * 1024 * 1024
# Far above any field's own limit (those say which field is too long); below the csv module's 131,072,
# past which it raises instead of returning the cell.
MAX_CELL_CHARS = 10_000
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


def file_too_large_message() -> str:
    return gettext("The file is larger than %(megabytes)s MB.") % {"megabytes": MAX_BYTES // 1024 // 1024}


def _text(content: bytes | str) -> str:
    if isinstance(content, str):
        content = content.encode()
    if len(content) > MAX_BYTES:
        raise BulkFileInvalid(
            file_too_large_message(),
            details={"file": "too large"},
        )
    try:
        text = content.decode("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError:
        raise BulkFileInvalid(
            gettext("The file must be UTF-8 encoded CSV."), details={"file": "not UTF-8"}
        ) from None
    if "\x00" in text:
        row = text.count("\n", 0, text.index("\x00")) + 1
        raise BulkFileInvalid(
            gettext("Row %(row)s contains a NUL character; remove it and upload the file again.")
            % {"row": row},
            details={"rows": {str(row): {"row": "NUL character"}}},
        )
    return text


def _cells(reader: Any) -> Any:
    """The reader's rows, with a cell too long for the csv module (or for us) reported by its row."""
    while True:
        before = reader.line_num
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            cells = None
        if cells is None or any(len(value or "") > MAX_CELL_CHARS for value in cells.values()):
            # After a csv.Error the reader's count stops on the line before: the bad row is the next one.
            number = reader.line_num if cells is not None else before + 1
            raise BulkFileInvalid(
                gettext("Row %(row)s has a cell longer than %(characters)s characters.")
                % {"row": number, "characters": f"{MAX_CELL_CHARS:,}"},
                details={
                    "rows": {str(number): {"row": f"a cell is longer than {MAX_CELL_CHARS} characters"}}
                },
            )
        yield cells


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
    try:
        fieldnames = reader.fieldnames
    except csv.Error:
        fieldnames = None
    if (fieldnames is None and reader.line_num) or any(
        len(name) > MAX_CELL_CHARS for name in fieldnames or []
    ):
        raise BulkFileInvalid(
            gettext("The first row (the column names) is not a valid CSV header."),
            details={"rows": {"1": {"row": "not a valid header"}}},
        )
    header = [name.strip().lower() for name in (fieldnames or [])]
    if "product_name" not in header:
        raise BulkFileInvalid(
            gettext("The first row must name the columns, including product_name."),
            details={"file": f"missing product_name column; columns are {', '.join(COLUMNS)}"},
        )
    unknown = sorted(set(header) - set(COLUMNS) - {""})
    if unknown:
        raise BulkFileInvalid(
            gettext("Unknown columns: %(unknown)s. Accepted: %(accepted)s.")
            % {"unknown": ", ".join(unknown), "accepted": ", ".join(COLUMNS)},
            details={"file": f"unknown columns: {', '.join(unknown)}"},
        )
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, Any]]] = []
    for cells in _cells(reader):
        number = reader.line_num  # the line the row ends on: the spreadsheet's row number, header = 1
        if None in cells:  # more cells than columns
            raise BulkFileInvalid(
                gettext("Row %(row)s has more cells than the header has columns.") % {"row": number},
                details={"rows": {str(number): {"row": "more cells than columns"}}},
            )
        if not any((value or "").strip() for value in cells.values()):
            continue  # blank line
        rows.append((number, _row_input(cells)))
        if len(rows) > MAX_ROWS:
            raise BulkFileInvalid(
                gettext("A file may hold at most %(rows)s products.") % {"rows": MAX_ROWS},
                details={"file": f"more than {MAX_ROWS} rows"},
            )
    if not rows:
        raise BulkFileInvalid(gettext("The file holds no products."), details={"file": "no rows"})
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
            ngettext(
                "%(count)s row is invalid (row %(rows)s); nothing was created.",
                "%(count)s rows are invalid (rows %(rows)s); nothing was created.",
                len(errors),
            )
            % {"count": len(errors), "rows": rows},
            details={"rows": errors},
        )
    total = sum(estimate.held for _, _, estimate in estimates)
    if (available := spendable_by(merchant, tool=TOOL)) < total:
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
        raise InsufficientTokens(required=total, available=spendable_by(merchant, tool=TOOL)) from None
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
                run.error_text,
            ]
        )
    return out.getvalue()
