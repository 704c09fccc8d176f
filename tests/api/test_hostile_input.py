"""The hostile inputs of issue 11, each answered with a clear 4xx, never a 500, and nothing stored."""

import io

import pytest
from django.urls import reverse

from agents.conversations import services as conversations
from agents.models import Conversation, Message, Run
from merchants.actors import Actor
from tests.api.conftest import LISTING, error_of, fund
from tests.factories import MembershipFactory
from wallets.reconcile import reconcile_ledger

pytestmark = pytest.mark.django_db


def _nested(depth: int) -> str:
    return '{"tool": "listing-writer", "input": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [33, 20_000])
def test_json_nested_deeper_than_the_limit_is_invalid_input(api, depth):
    response = api.post("/api/v1/runs", data=_nested(depth), content_type="application/json")

    assert response.status_code == 400
    assert "32 levels" in error_of(response)["message"]
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        '{"tool": "listing-writer", "input": {"product_name": "Lamp\\u0000", "marketplace": "amazon"}}',
        '{"tool": "listing-writer", "input": {"product_name": "Lamp\\ud800", "marketplace": "amazon"}}',
        '{"tool": "listing-writer", "input": {"product_name\\u0000": "Lamp", "marketplace": "amazon"}}',
    ],
)
def test_a_nul_or_lone_surrogate_in_a_run_input_is_invalid_input_naming_where(api, body):
    response = api.post("/api/v1/runs", data=body, content_type="application/json")

    error = error_of(response)
    assert response.status_code == 400 and error["code"] == "invalid_input"
    assert "NUL" in error["message"] and error["message"].startswith("input.product_name")
    assert not Run.objects.exists()
    assert reconcile_ledger() == []


@pytest.mark.parametrize("path", ["/api/v1/runs", "/api/v1/wallet/transfers", "/api/v1/conversations"])
@pytest.mark.parametrize(
    "cursor",
    ["cD1hYmM=", "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "cD0lMDA=", "bz0xJnA9MjAyMC0xMy0wMQ==", "garbage"],
)
def test_a_crafted_cursor_on_every_paginated_endpoint_is_invalid_input(api, path, cursor):
    response = api.get(path, {"cursor": cursor})

    assert response.status_code == 400
    assert error_of(response)["details"] == {"cursor": "This cursor is not valid."}


def test_a_cursor_the_api_issued_still_pages(api):
    for index in range(3):
        api.post("/api/v1/runs", LISTING | {"input": {"product_name": f"P{index}"}}, format="json")
    first = api.get("/api/v1/runs", {"limit": 2}).json()

    second = api.get(first["next"])

    assert second.status_code == 200 and len(second.json()["results"]) == 1


def test_a_nul_in_a_query_parameter_is_invalid_input_in_the_error_body(api):
    response = api.get("/api/v1/runs", {"status": "queued\x00"})

    assert response.status_code == 400
    assert error_of(response)["details"] == {
        "status": ["Text may not contain NUL characters or unpaired surrogates."]
    }


@pytest.fixture
def member(client):
    membership = MembershipFactory(role="owner")
    fund(membership.merchant, 1_000_000)
    client.force_login(membership.user)
    return membership


HEADER = "product_name,marketplace\n"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (HEADER + "Lamp\x00,amazon\n", "Row 2 contains a NUL character"),
        (HEADER + "x" * 131_073 + ",amazon\n", "Row 2 has a cell longer than 10,000 characters"),
        (HEADER + "x" * 20_000 + ",amazon\n", "Row 2 has a cell longer than 10,000 characters"),
        ("product_name," + "y" * 20_000 + "\nLamp\n", "not a valid CSV header"),
    ],
)
def test_a_bulk_csv_with_a_nul_or_a_huge_cell_is_refused_by_row(client, member, content, says):
    upload = io.BytesIO(content.encode())
    upload.name = "products.csv"

    response = client.post(reverse("bulk-listings"), {"file": upload})

    assert response.status_code in (200, 400)
    assert says in response.content.decode()
    assert not Run.objects.exists()


def test_a_staff_reply_with_a_nul_is_refused_and_stores_nothing(client, member):
    conversation, _, _ = conversations.conversation_start(
        merchant=member.merchant, actor=Actor.system("t"), customer_ref="Bo", message="A person please"
    )
    before = Message.objects.count()

    response = client.post(
        reverse("support-staff-reply", args=[conversation.id]), {"content": "Hi\x00 there", "then": ""}
    )

    assert response.status_code == 400
    assert "“content”" in response.content.decode()
    assert Message.objects.count() == before


def test_a_test_console_message_with_a_nul_is_refused_and_starts_nothing(client, member):
    response = client.post(reverse("support"), {"customer_ref": "Ana", "message": "Hello\x00"})

    assert response.status_code == 400
    assert not Conversation.objects.exists() and not Run.objects.exists()
    assert reconcile_ledger() == []


def test_a_nul_in_an_admin_form_is_refused(admin_client):
    response = admin_client.post("/admin/merchants/merchant/add/", {"name": "Shop\x00"})

    assert response.status_code == 400


def test_a_nul_in_a_url_is_refused_not_looked_up(client):
    response = client.get("/invitations/abc%00def/")

    assert response.status_code == 400


@pytest.mark.parametrize("signed", [True, False])
def test_a_webhook_nested_twenty_thousand_deep_is_refused_not_a_500(client, signed):
    from tests.wallets.fake_stripe import sign

    body = ('{"id": "evt_deep", "data": ' + "[" * 20_000 + "]" * 20_000 + "}").encode()
    headers = {"HTTP_STRIPE_SIGNATURE": sign(body) if signed else "t=1,v1=00"}

    response = client.post(reverse("stripe-webhook"), data=body, content_type="application/json", **headers)

    assert response.status_code == 400
