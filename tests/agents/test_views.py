"""The tool pages a merchant uses: a form that creates a held run, its live status, bulk upload."""

import pytest
from django.urls import reverse

from agents.models import Batch, Run
from tests.factories import MembershipFactory, fund
from wallets import services
from wallets.models import Transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):
    membership = MembershipFactory(role="staff")
    client.force_login(membership.user)
    return membership


def _fund(merchant, tokens: int) -> None:
    fund(merchant, tokens, key=f"fund:{merchant.pk}:{tokens}")


def test_the_listing_form_creates_a_queued_run_with_its_hold(client, member):
    _fund(member.merchant, 100_000)

    response = client.post(
        reverse("tool", args=["listing-writer"]),
        {
            "product_name": "Bamboo toothbrush",
            "features": "Soft bristles\nCompostable handle",
            "keywords": "eco, bamboo",
            "marketplace": "amazon",
        },
    )

    run = Run.objects.get(merchant=member.merchant)
    assert response.status_code == 302
    assert response.url == reverse("run-detail", args=[run.id])
    assert run.input["features"] == ["Soft bristles", "Compostable handle"]
    assert run.input["keywords"] == ["eco", "bamboo"]
    assert Transfer.objects.get(wallet__merchant=member.merchant, kind="hold").amount == run.held


def test_an_htmx_submit_answers_with_a_panel_that_polls_the_run(client, member):
    _fund(member.merchant, 100_000)

    response = client.post(
        reverse("tool", args=["marketing-copy"]),
        {"product_name": "Tea sampler", "channel": "sms", "variants": 2},
        HTTP_HX_REQUEST="true",
    )

    run = Run.objects.get(merchant=member.merchant)
    assert 'hx-trigger="every 1s"' in response.content.decode()
    assert str(run.id) in response.content.decode()


def test_too_few_tokens_says_how_many_were_needed_and_creates_nothing(client, member):
    response = client.post(
        reverse("tool", args=["listing-writer"]), {"product_name": "Kettle", "marketplace": "generic"}
    )

    assert "needs up to" in response.content.decode()
    assert not Run.objects.exists()
    assert not Transfer.objects.filter(kind="hold").exists()


def test_too_few_tokens_says_so_in_chinese_to_a_member_who_reads_chinese(client):
    reader = MembershipFactory(role="staff", user__language="zh-hans")
    client.force_login(reader.user)
    _fund(reader.merchant, 100)

    page = client.post(
        reverse("tool", args=["listing-writer"]), {"product_name": "Kettle", "marketplace": "generic"}
    ).content.decode()

    assert "钱包当前可用 100。请先给钱包充值" in page
    assert "needs up to" not in page
    assert not Run.objects.exists()


def test_an_input_the_tool_rejects_is_shown_on_the_form_and_creates_nothing(client, member):
    _fund(member.merchant, 100_000)

    response = client.post(reverse("tool", args=["marketing-copy"]), {"channel": "email", "variants": 3})

    assert response.status_code == 200
    assert "product_name" in response.content.decode()
    assert not Run.objects.exists()


def test_another_merchants_run_answers_404(client, member):
    other = MembershipFactory()
    _fund(other.merchant, 100_000)
    client.force_login(other.user)
    client.post(
        reverse("tool", args=["listing-writer"]), {"product_name": "Secret", "marketplace": "generic"}
    )
    run = Run.objects.get(merchant=other.merchant)

    client.force_login(member.user)

    assert client.get(reverse("run-detail", args=[run.id])).status_code == 404
    assert client.post(reverse("run-cancel", args=[run.id])).status_code == 404
    run.refresh_from_db()
    assert run.status == "queued"


def test_canceling_a_queued_run_releases_its_hold(client, member):
    _fund(member.merchant, 100_000)
    client.post(reverse("tool", args=["listing-writer"]), {"product_name": "Mug", "marketplace": "generic"})
    run = Run.objects.get(merchant=member.merchant)

    client.post(reverse("run-cancel", args=[run.id]))

    run.refresh_from_db()
    assert run.status == "canceled"
    assert services.wallet_of(merchant=member.merchant).available == 100_000


def test_a_bulk_csv_becomes_a_batch_with_a_progress_page(client, member):
    _fund(member.merchant, 1_000_000)
    csv_file = b"product_name,features,marketplace\nLinen shirt,Breathable|Relaxed fit,shopify\nWool socks,Warm,generic\n"
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(reverse("bulk-listings"), {"file": SimpleUploadedFile("products.csv", csv_file)})

    batch = Batch.objects.get(merchant=member.merchant)
    assert response.url == reverse("batch-detail", args=[batch.id])
    page = client.get(response.url).content.decode()
    assert "0 of 2" in page
    assert Run.objects.filter(batch=batch).count() == 2


def test_the_runs_page_lists_runs_of_every_tool_by_what_they_were_about(client, member):
    _fund(member.merchant, 100_000)
    client.post(
        reverse("tool", args=["listing-writer"]), {"product_name": "Linen apron", "marketplace": "generic"}
    )
    client.post(
        reverse("tool", args=["marketing-copy"]),
        {"brief": "Spring sale on aprons", "channel": "email", "variants": 1},
    )

    runs_page = client.get(reverse("runs"))
    tool_page = client.get(reverse("tool", args=["listing-writer"]))
    home = client.get(reverse("home"))

    assert runs_page.status_code == tool_page.status_code == home.status_code == 200
    assert "Linen apron" in runs_page.content.decode()
    assert "Spring sale on aprons" in runs_page.content.decode()
    assert "Linen apron" in home.content.decode()


def test_a_bulk_file_with_unknown_columns_is_refused_in_chinese_to_a_member_who_reads_chinese(client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    reader = MembershipFactory(role="staff", user__language="zh-hans")
    client.force_login(reader.user)
    _fund(reader.merchant, 100_000)
    upload = SimpleUploadedFile("products.csv", b"product_name,colour\nKettle,red\n")

    page = client.post(reverse("bulk-listings"), {"file": upload}).content.decode()

    assert "无法识别的列" in page and "colour" in page
    assert "Unknown columns" not in page
    assert not Run.objects.exists()
