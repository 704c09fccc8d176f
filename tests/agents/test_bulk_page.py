"""The bulk page a merchant works from: a sample file to start with, each batch's status and what it was
charged (not what it held), and results a spreadsheet opens correctly."""

import csv
import io

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from agents import bulk
from agents.models import Run
from agents.runs.execute import run_execute
from merchants.actors import Actor
from tests.factories import MembershipFactory
from tests.plugins.workers import funded
from wallets.reconcile import reconcile_ledger

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


@pytest.fixture
def member(client):
    membership = MembershipFactory(role="owner", merchant=funded(1_000_000))
    client.force_login(membership.user)
    return membership


def test_the_sample_csv_is_linked_and_every_row_of_it_is_accepted(client, member):
    page = client.get(reverse("bulk-listings")).content.decode()
    assert "sample-products.csv" in page and "Download a sample CSV" in page
    with open(finders.find("sample-products.csv"), encoding="utf-8") as sample:
        content = sample.read()
    rows = bulk.bulk_rows(content)
    assert len(rows) == 3
    assert {row["marketplace"] for _, row in rows} == {"shopify", "amazon", "taobao"}


def test_a_finished_batch_shows_what_it_was_charged_not_what_it_held(client, member, llm_endpoint):
    batch = bulk.bulk_create(
        merchant=member.merchant,
        content="product_name\nLinen apron\nBamboo spoon\n",
        actor=SYSTEM,
        filename="a.csv",
    )
    page = client.get(reverse("batch-detail", args=[batch.pk])).content.decode()
    assert "Charged so far: 0 tokens" in page

    for run in Run.objects.filter(batch=batch):
        run_execute(run_id=run.pk)
    charged = sum(Run.objects.filter(batch=batch).values_list("cost", flat=True))
    assert 0 < charged < batch.total_held

    page = client.get(reverse("batch-detail", args=[batch.pk])).content.decode()
    assert f"Charged for the batch: <strong>{charged:,} tokens</strong>" in page
    listing = client.get(reverse("bulk-listings")).content.decode()
    assert f"{charged:,} tokens charged" in listing and "Finished" in listing
    assert reconcile_ledger() == []


def test_a_batch_still_running_shows_how_far_it_got(client, member):
    bulk.bulk_create(
        merchant=member.merchant, content="product_name\nLinen apron\nBamboo spoon\n", actor=SYSTEM
    )
    page = client.get(reverse("bulk-listings")).content.decode()
    assert "0 of 2 done" in page and "0 tokens charged" in page


def test_the_results_csv_starts_with_a_byte_order_mark_for_excel(client, member):
    batch = bulk.bulk_create(merchant=member.merchant, content="product_name\n陶瓷马克杯\n", actor=SYSTEM)
    response = client.get(reverse("batch-results", args=[batch.pk]))
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0]["product_name"] == "陶瓷马克杯"
    assert response["Content-Type"] == "text/csv; charset=utf-8"
