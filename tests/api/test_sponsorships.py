"""GET /api/v1/sponsorships, the wallet's funding sources, and who paid each run."""

from datetime import timedelta

import pytest
from django.utils import timezone

from merchants.actors import Actor
from tests.factories import MerchantFactory
from tests.plugins.workers import funded
from wallets.services import promo_grant
from wallets.sponsorships import sponsorship_create

pytestmark = pytest.mark.django_db
LISTING = {"tool": "listing-writer", "input": {"product_name": "Linen apron", "marketplace": "shopify"}}


def test_the_wallet_shows_paid_promotional_and_sponsored_tokens_apart(api_for):
    store = funded(1_000)
    expires = timezone.now() + timedelta(days=5)
    promo_grant(merchant=store, amount=300, expires_at=expires, key="campaign:a", actor=Actor.system("tests"))
    sponsorship_create(sponsor=funded(10_000), beneficiary=store, monthly_limit=2_500, accepted=True)

    body = api_for(store).get("/api/v1/wallet").json()

    assert {
        key: body[key]
        for key in ("available", "paid_available", "promotional_available", "sponsored_available")
    } == {
        "available": 1_300,
        "paid_available": 1_000,
        "promotional_available": 300,
        "sponsored_available": 2_500,
    }
    assert [block["tokens"] for block in body["promotional"]] == [300]


def test_a_store_without_sponsorships_has_zero_sponsored_available(api_for):
    assert api_for(funded(10)).get("/api/v1/wallet").json()["sponsored_available"] == 0


def test_sponsorships_list_both_roles_and_nothing_of_other_stores(api_for):
    store, partner = funded(0, name="Reseller"), funded(0, name="Brand")
    sponsorship_create(
        sponsor=partner, beneficiary=store, monthly_limit=500, tools=["listing-writer"], accepted=True
    )
    sponsorship_create(sponsor=store, beneficiary=MerchantFactory(name="Small shop"), monthly_limit=90)
    sponsorship_create(sponsor=partner, beneficiary=MerchantFactory(), monthly_limit=7)  # not ours

    body = api_for(store).get("/api/v1/sponsorships").json()

    assert sorted(
        (row["role"], row["sponsor"], row["beneficiary"], row["status"], row["monthly_limit"]) for row in body
    ) == [
        ("beneficiary", "Brand", "Reseller", "active", 500),
        ("sponsor", "Reseller", "Small shop", "invited", 90),
    ]


def test_a_sponsored_run_says_who_pays_which_part_and_hides_the_sponsors_balance(api_for):
    store = funded(100_000, name="Reseller")
    sponsorship_create(
        sponsor=funded(1_000_000, name="Brand"), beneficiary=store, monthly_limit=1_000, accepted=True
    )
    api = api_for(store)

    run = api.post("/api/v1/runs", LISTING, format="json").json()

    assert [(part["source"], part["sponsor"]) for part in run["funding"]] == [
        ("sponsored", "Brand"),
        ("paid", ""),
    ]
    assert run["funding"][0]["held"] == 1_000
    assert sum(part["held"] for part in run["funding"]) == run["held"]
    holds = [t for t in api.get("/api/v1/wallet/transfers").json()["results"] if t["kind"] == "hold"]
    sponsored = next(t for t in holds if t["source"] == "sponsored")
    assert sponsored["sponsorship"] == {"sponsor": "Brand", "beneficiary": "Reseller"}
    assert sponsored["balance_after"] is None and sponsored["held_after"] is None
    assert next(t for t in holds if t["source"] == "paid")["balance_after"] == 100_000


def test_a_store_with_no_tokens_anywhere_gets_402_and_nothing_is_held(api_for):
    store = funded(0)

    response = api_for(store).post("/api/v1/runs", LISTING, format="json")

    assert response.status_code == 402
    assert response.json()["error"]["details"]["available"] == 0
