"""The wallet, its ledger statement and the tool catalogue, as a key sees them."""

import pytest

from agents.tools import registry
from tests.api.conftest import LISTING, TOKENS, fund
from tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db


def test_the_wallet_shows_balance_held_and_available_in_tokens(api):
    run = api.post("/api/v1/runs", LISTING, format="json").json()
    response = api.get("/api/v1/wallet")
    assert response.status_code == 200
    assert response.json() == {
        "balance": TOKENS,
        "held": run["held"],
        "available": TOKENS - run["held"],
        "paid_available": TOKENS - run["held"],
        "promotional_available": 0,
        "promotional": [],
        "sponsored_available": 0,
    }


def test_a_merchant_without_a_wallet_sees_zeros(api_for):
    assert api_for(MerchantFactory()).get("/api/v1/wallet").json() == {
        "balance": 0,
        "held": 0,
        "available": 0,
        "paid_available": 0,
        "promotional_available": 0,
        "promotional": [],
        "sponsored_available": 0,
    }


def test_transfers_are_newest_first_with_signed_amounts_and_the_run_they_belong_to(api):
    run = api.post("/api/v1/runs", LISTING, format="json").json()
    page = api.get("/api/v1/wallet/transfers").json()
    hold, grant = page["results"]
    assert hold["kind"] == "hold" and hold["run_id"] == run["id"]
    assert hold["amount"] == run["held"] and hold["signed_amount"] == 0
    assert hold["held_after"] == run["held"]
    assert grant["kind"] == "promotion" and grant["signed_amount"] == TOKENS and grant["run_id"] is None
    assert set(hold) == {
        "id",
        "kind",
        "amount",
        "signed_amount",
        "balance_after",
        "held_after",
        "memo",
        "reference",
        "run_id",
        "source",
        "sponsorship",
        "created_at",
    }
    assert hold["source"] == "paid" and hold["sponsorship"] is None


def test_transfers_page_by_cursor_without_repeats_or_gaps(api_for):
    merchant = MerchantFactory()
    for tokens in range(1, 6):
        fund(merchant, tokens)
    api = api_for(merchant)
    seen, url = [], "/api/v1/wallet/transfers?limit=2"
    while url:
        page = api.get(url).json()
        seen += [t["amount"] for t in page["results"]]
        url = page["next"]
    assert seen == [5, 4, 3, 2, 1]


def test_tools_list_every_tool_with_schema_model_and_prices(api):
    tools = {tool["slug"]: tool for tool in api.get("/api/v1/tools").json()}
    assert set(tools) == {"listing-writer", "customer-service", "marketing-copy"}
    listing = tools["listing-writer"]
    assert listing["input_schema"] == registry.get("listing-writer").input_schema()
    assert listing["model"] == "qwen-plus"
    assert listing["prices"] == {"input_weight": 1.0, "output_weight": 3.0}
    assert {"name", "description", "max_output_tokens"} <= set(listing)
