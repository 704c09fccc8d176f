"""The wallet's funding sources and Wallet → Sponsorships, in Chromium at a phone's and a laptop's width."""

from datetime import timedelta

import pytest
from django.utils import timezone

from merchants.actors import Actor
from tests.factories import MembershipFactory
from tests.plugins.workers import funded
from wallets.services import promo_grant
from wallets.sponsorships import sponsorship_create

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [390, 1280])
def test_a_beneficiary_sees_its_sources_and_accepts_an_offer(page, logged_in, screenshot, width):
    page.set_viewport_size({"width": width, "height": 860})
    promo_grant(
        merchant=logged_in.merchant,
        amount=25_000,
        expires_at=timezone.now() + timedelta(days=10),
        key="e2e:campaign",
        actor=Actor.system("test"),
    )
    brand = MembershipFactory(merchant=funded(2_000_000, name="Aurora Brand"), role="owner").merchant
    sponsorship_create(
        sponsor=brand, beneficiary=logged_in.merchant, monthly_limit=80_000, tools=["listing-writer"]
    )

    page.goto("/wallet/")
    assert page.get_by_test_id("promotional-available").inner_text() == "25,000"
    assert page.get_by_test_id("sponsored-available").inner_text() == "0"
    assert "offers to pay for your tools" in page.get_by_test_id("sponsorship-offers").inner_text()
    screenshot(page, f"wallet-sources-{width}")
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    page.get_by_test_id("sponsorship-offers").get_by_role("link").click()
    page.get_by_role("button", name="Accept").click()

    assert "Sponsorship accepted." in page.content()
    assert "Aurora Brand pays for you" in page.get_by_test_id("sponsorships").inner_text()
    screenshot(page, f"sponsorships-{width}")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.goto("/wallet/")
    assert page.get_by_test_id("sponsored-available").inner_text() == "80,000"
