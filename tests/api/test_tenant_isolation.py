"""Merchant B's key against merchant A's objects: every answer is 404, and nothing of A's changes."""

import pytest

from agents.models import Run
from tests.api.conftest import LISTING, error_of
from wallets.selectors import transfers_of, wallet_balance

pytestmark = pytest.mark.django_db


def snapshot(merchant):
    runs = list(Run.objects.filter(merchant=merchant).order_by("pk").values())
    return wallet_balance(merchant=merchant), list(transfers_of(merchant=merchant).values()), runs


def test_another_merchants_key_finds_none_of_its_runs_and_changes_nothing(
    funded_merchant, other_merchant, api_for
):
    a_api, b_api = api_for(funded_merchant), api_for(other_merchant)
    a_run = a_api.post("/api/v1/runs", LISTING, format="json", HTTP_IDEMPOTENCY_KEY="a-1").json()
    before = snapshot(funded_merchant)

    for response in (
        b_api.get(f"/api/v1/runs/{a_run['id']}"),
        b_api.post(f"/api/v1/runs/{a_run['id']}/cancel"),
    ):
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"

    assert b_api.get("/api/v1/runs").json()["results"] == []
    b_transfer_ids = {t["id"] for t in b_api.get("/api/v1/wallet/transfers").json()["results"]}
    a_transfer_ids = {t["id"] for t in a_api.get("/api/v1/wallet/transfers").json()["results"]}
    assert not b_transfer_ids & a_transfer_ids
    assert b_api.get("/api/v1/wallet").json()["held"] == 0

    # B replaying A's idempotency key makes B's own run: keys are scoped to the merchant.
    b_run = b_api.post("/api/v1/runs", LISTING, format="json", HTTP_IDEMPOTENCY_KEY="a-1").json()
    assert b_run["id"] != a_run["id"]
    assert snapshot(funded_merchant) == before


def test_a_cursor_from_another_merchant_pages_only_the_callers_own_rows(
    funded_merchant, other_merchant, api_for
):
    a_api, b_api = api_for(funded_merchant), api_for(other_merchant)
    for _ in range(3):
        a_api.post("/api/v1/runs", LISTING, format="json")
    a_next = a_api.get("/api/v1/runs?limit=1").json()["next"]
    assert a_next
    assert b_api.get(a_next).json()["results"] == []


def test_another_merchants_key_finds_none_of_its_conversations_and_changes_nothing(
    funded_merchant, other_merchant, api_for
):
    from agents.models import Conversation, Message

    a_api, b_api = api_for(funded_merchant), api_for(other_merchant)
    a_conv = a_api.post("/api/v1/conversations", {"message": "Do you ship to Canada?"}, format="json").json()
    before = snapshot(funded_merchant), list(Message.objects.order_by("pk").values())

    for response in (
        b_api.get(f"/api/v1/conversations/{a_conv['id']}"),
        b_api.post(f"/api/v1/conversations/{a_conv['id']}/messages", {"message": "Hi"}, format="json"),
    ):
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"

    assert (snapshot(funded_merchant), list(Message.objects.order_by("pk").values())) == before
    assert not Conversation.objects.filter(merchant=other_merchant).exists()
    assert b_api.get("/api/v1/wallet").json()["held"] == 0
