"""Support → Chat widget, Knowledge articles and Outcomes in the dashboard; manage.py create_widget."""

from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from tests.factories import MembershipFactory, WidgetFactory
from widgets.models import Article, Widget

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def owner_client(client):
    membership = MembershipFactory(role="owner")
    client.force_login(membership.user)
    return client, membership.merchant


def test_an_owner_creates_a_widget_and_gets_the_one_line_tag(owner_client):
    client, merchant = owner_client

    response = client.post(
        "/support/widget/",
        {"name": "Shop chat", "origins": "https://shop.example/\nhttps://www.shop.example", "color": "#aa3300",
         "language": "zh", "greeting": "", "daily_token_budget": 5000, "conversation_token_cap": 1000},
        follow=True,
    )  # fmt: skip

    widget = Widget.objects.get(merchant=merchant)
    assert widget.allowed_origins == ["https://shop.example", "https://www.shop.example"]
    assert widget.color == "#aa3300" and widget.language == "zh" and widget.daily_token_budget == 5000
    assert (
        f'<script src="http://testserver/widget/{widget.public_key}.js" async></script>'
        in response.content.decode().replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    )


def test_a_path_is_not_an_origin(owner_client):
    client, merchant = owner_client

    client.post("/support/widget/", {"name": "x", "origins": "https://shop.example/checkout", "color": "#000000",
                                      "language": "en", "daily_token_budget": 1, "conversation_token_cap": 1})  # fmt: skip

    assert not Widget.objects.filter(merchant=merchant).exists()


def test_revoking_stops_the_script_and_another_stores_widget_is_404(owner_client):
    client, merchant = owner_client
    widget = WidgetFactory(merchant=merchant)
    theirs = WidgetFactory()

    assert client.post(f"/support/widget/{theirs.pk}/revoke/").status_code == 404
    client.post(f"/support/widget/{widget.pk}/revoke/")

    widget.refresh_from_db()
    theirs.refresh_from_db()
    assert widget.revoked_at is not None and theirs.revoked_at is None
    assert client.get(f"/widget/{widget.public_key}.js").status_code == 404


def test_a_staff_member_cannot_manage_widgets(client):
    membership = MembershipFactory(role="staff")
    client.force_login(membership.user)

    assert client.get("/support/widget/").status_code == 403


def test_articles_are_added_pasted_and_uploaded_as_csv_or_markdown(owner_client):
    client, merchant = owner_client

    client.post(
        "/support/articles/", {"action": "add", "title": "Shipping", "url": "", "body": "We ship to Canada."}
    )
    client.post("/support/articles/", {"action": "upload", "file": SimpleUploadedFile(
        "faq.csv", b"title,body,url\nReturns,Within 30 days.,https://shop.example/returns\n")})  # fmt: skip
    client.post("/support/articles/", {"action": "upload", "file": SimpleUploadedFile(
        "sizes.md", "# Sizes\nS, M, L.\n\n# 尺码\n小、中、大。\n".encode())})  # fmt: skip
    page = client.get("/support/articles/")

    assert sorted(Article.objects.filter(merchant=merchant).values_list("title", flat=True)) == [
        "Returns", "Shipping", "Sizes", "尺码",
    ]  # fmt: skip
    assert "4 articles" in page.content.decode()


def test_the_outcomes_page_draws_its_chart(owner_client):
    client, _merchant = owner_client

    page = client.get("/support/outcomes/")

    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-testid="outcomes-chart"' in body and body.count('class="outcome-total"') == 30
    assert "style=" not in body


def test_create_widget_prints_the_public_key_alone_on_its_last_line():
    merchant = MembershipFactory().merchant
    out = StringIO()

    call_command(
        "create_widget",
        merchant.slug,
        "--origin",
        "https://shop.example",
        "--origin",
        "http://localhost:8100",
        stdout=out,
    )

    last = out.getvalue().strip().splitlines()[-1]
    widget = Widget.objects.get(merchant=merchant)
    assert last == widget.public_key and last.startswith("pk_")
    assert widget.allowed_origins == ["https://shop.example", "http://localhost:8100"]
    with pytest.raises(CommandError):
        call_command("create_widget", "no-such-store", "--origin", "https://shop.example")
