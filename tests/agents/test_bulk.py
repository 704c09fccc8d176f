"""Bulk listings from a CSV: all rows valid and affordable as one total, or nothing at all."""

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from agents import bulk, selectors
from agents.errors import BulkFileInvalid
from agents.models import Batch, Run
from agents.runs.estimate import run_estimate
from agents.runs.execute import run_execute
from tests.plugins.workers import SYSTEM, funded, wallet
from wallets.exceptions import InsufficientTokens
from wallets.models import Transfer
from wallets.reconcile import reconcile_ledger
from wallets.services import promotion_credit

pytestmark = pytest.mark.django_db

HEADER = "product_name,category,features,keywords,audience,tone,language,marketplace\n"


def csv_of(*rows: str) -> bytes:
    return (HEADER + "".join(f"{row}\n" for row in rows)).encode()


GOOD = csv_of(
    'Aurora Lamp,Lighting,Dimmable|USB-C;Warm light,"desk lamp, reading",Students,calm,en,amazon',
    "",  # a blank line is skipped
    "Boreal Mug,Kitchen,Keeps heat 6h,,,,,shopify",
)


def test_features_split_on_pipes_and_semicolons_and_blank_lines_are_skipped():
    rows = bulk.bulk_rows(b"\xef\xbb\xbf" + GOOD)  # Excel's byte-order mark too
    assert [number for number, _ in rows] == [2, 4]
    first = rows[0][1]
    assert first["features"] == ["Dimmable", "USB-C", "Warm light"]
    assert first["keywords"] == ["desk lamp", "reading"]
    assert rows[1][1] == {"product_name": "Boreal Mug", "category": "Kitchen", "features": ["Keeps heat 6h"],
                          "marketplace": "shopify"}  # fmt: skip


def test_a_batch_holds_each_runs_estimate_and_queues_every_row_in_order():
    merchant = funded(1_000_000)
    batch = bulk.bulk_create(merchant=merchant, content=GOOD, actor=SYSTEM, filename="products.csv")

    runs = list(Run.objects.filter(batch=batch).order_by("batch_row"))
    assert [(r.batch_row, r.input["product_name"], r.status) for r in runs] == [
        (2, "Aurora Lamp", "queued"),
        (4, "Boreal Mug", "queued"),
    ]
    assert batch.total_held == sum(r.held for r in runs) == wallet(merchant).debits_pending
    assert selectors.batch_progress(batch=batch)["queued"] == 2
    assert reconcile_ledger() == []


def test_invalid_rows_are_reported_by_row_number_and_field_and_nothing_is_created():
    merchant = funded(1_000_000)
    content = csv_of("Good Lamp,,,,,,,", ",Lighting,,,,,,", "Bad Market,,,,,,,ebay")
    with pytest.raises(BulkFileInvalid) as raised:
        bulk.bulk_create(merchant=merchant, content=content, actor=SYSTEM)
    assert raised.value.code == "invalid_input"
    assert set(raised.value.details["rows"]) == {"3", "4"}
    assert "product_name" in raised.value.details["rows"]["3"]
    assert "marketplace" in raised.value.details["rows"]["4"]
    assert not Batch.objects.exists() and not Run.objects.exists()


def test_a_file_the_wallet_cannot_cover_in_total_creates_nothing_and_says_the_total_needed():
    content = csv_of(*[f"Lamp {i},,,,,,," for i in range(5)])
    merchant = funded(0)
    total = sum(
        run_estimate(merchant=merchant, tool="listing-writer", input={"product_name": f"Lamp {i}"}).held
        for i in range(5)
    )
    promotion_credit(wallet=wallet(merchant), amount=total - 1, key="test:almost", actor=SYSTEM)

    with pytest.raises(InsufficientTokens) as raised:
        bulk.bulk_create(merchant=merchant, content=content, actor=SYSTEM)

    assert (raised.value.required, raised.value.available) == (total, total - 1)
    assert not Run.objects.exists()
    assert not Transfer.objects.filter(kind="hold").exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"name,category\nLamp,Lighting\n", "product_name"),
        (HEADER.replace("tone", "tonne").encode() + b"Lamp,,,,,,,\n", "unknown columns: tonne"),
        (HEADER.encode(), "no rows"),
        (b"\xff\xfe" + HEADER.encode("utf-16-le"), "UTF-8"),
        (HEADER.encode() + b"Lamp,,,,,,,,extra\n", "more cells"),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused_whole(content, problem):
    with pytest.raises(BulkFileInvalid) as raised:
        bulk.bulk_rows(content)
    assert problem in str(raised.value.details)


def test_files_are_bounded_in_rows_and_size(monkeypatch):
    monkeypatch.setattr(bulk, "MAX_ROWS", 3)
    with pytest.raises(BulkFileInvalid, match="at most 3 products"):
        bulk.bulk_rows(csv_of(*[f"Lamp {i},,,,,,," for i in range(4)]))
    monkeypatch.setattr(bulk, "MAX_BYTES", 100)
    with pytest.raises(BulkFileInvalid, match="larger than"):
        bulk.bulk_rows(csv_of(*[f"Lamp {i},,,,,,," for i in range(10)]))


def test_results_list_each_row_with_its_listing_or_its_reason_and_never_run_as_formulas(llm_endpoint):
    merchant = funded(1_000_000)
    content = csv_of('=HYPERLINK("x") Lamp,,,,,,,', "Moderated Mug,,,,,,,")
    llm_endpoint.fault("moderation", match="Moderated Mug")
    batch = bulk.bulk_create(merchant=merchant, content=content, actor=SYSTEM)
    for run in Run.objects.filter(batch=batch):
        run_execute(run_id=run.pk)

    rows = list(csv.DictReader(io.StringIO(bulk.bulk_results_csv(batch))))

    assert [(r["row"], r["status"]) for r in rows] == [("2", "succeeded"), ("3", "failed")]
    assert rows[0]["product_name"].startswith("'=HYPERLINK") and rows[0]["title"].startswith("'=")
    assert rows[0]["bullets"] and int(rows[0]["cost"]) > 0
    assert "content filter" in rows[1]["error"] and rows[1]["cost"] == "0"
    progress = selectors.batch_progress(batch=batch)
    assert (progress["succeeded"], progress["failed"], progress["finished"], progress["total"]) == (
        1,
        1,
        2,
        2,
    )
    assert reconcile_ledger() == []


def test_the_command_queues_a_batch_and_reports_bad_rows(tmp_path):
    merchant = funded(1_000_000, slug="aurora")
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(GOOD)
    bad.write_bytes(csv_of(",,,,,,,", "Lamp,,,,,,,ebay"))
    out = io.StringIO()

    call_command("bulk_listings", "aurora", str(good), stdout=out)
    assert "2 listings queued" in out.getvalue()
    assert Batch.objects.get(merchant=merchant).row_count == 2

    with pytest.raises(CommandError, match="row 3: marketplace"):
        call_command("bulk_listings", "aurora", str(bad))
    with pytest.raises(CommandError, match="No merchant"):
        call_command("bulk_listings", "nobody", str(good))


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_command_waits_for_a_real_worker_and_writes_the_results(tmp_path, llm_endpoint, celery_worker):
    funded(1_000_000, slug="boreal")
    source, results = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_bytes(csv_of(*[f"Lamp {i},Lighting,Bright|Small,,,,,generic" for i in range(20)]))

    call_command("bulk_listings", "boreal", str(source), "--out", str(results), "--wait", stdout=io.StringIO(),
                 stderr=io.StringIO())  # fmt: skip

    rows = list(csv.DictReader(results.open()))
    assert [r["product_name"] for r in rows] == [f"Lamp {i}" for i in range(20)]
    assert all(r["status"] == "succeeded" and r["title"] for r in rows)
    assert reconcile_ledger() == []
