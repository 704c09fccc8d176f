"""Wallet → Sponsorships: a store offers to pay for another, the other accepts, and either side sees it."""

import pytest
from django.urls import reverse

from merchants.models import OutboundEmail
from tests.factories import MembershipFactory
from tests.plugins.workers import funded
from wallets.models import Sponsorship
from wallets.sponsorships import sponsorship_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def sponsor_owner(client):
    membership = MembershipFactory(merchant=funded(1_000_000), role="owner")
    client.force_login(membership.user)
    return membership


def test_an_owner_offers_a_sponsorship_and_the_other_stores_owner_is_emailed(client, sponsor_owner):
    beneficiary_owner = MembershipFactory(
        role="owner", merchant__slug="reseller", user__email="owner@reseller.example"
    )

    response = client.post(
        reverse("wallet-sponsorships"),
        {"store": "reseller", "monthly_limit": "50000", "tools": ["listing-writer"]},
    )

    assert response.status_code == 302
    sponsorship = Sponsorship.objects.get()
    assert (sponsorship.sponsor, sponsorship.beneficiary) == (
        sponsor_owner.merchant,
        beneficiary_owner.merchant,
    )
    assert (sponsorship.status, sponsorship.tools) == ("invited", ["listing-writer"])
    email = OutboundEmail.objects.get(to="owner@reseller.example")
    assert sponsor_owner.merchant.name in email.subject


@pytest.mark.parametrize(
    "data, error",
    [
        ({"store": "nobody", "monthly_limit": "10"}, "There is no store with this address."),
        ({"store": "reseller", "monthly_limit": "0"}, "greater than or equal to 1"),
        ({"store": "reseller", "monthly_limit": "ten"}, "Enter a whole number."),
        ({"store": "reseller", "monthly_limit": "10", "tools": ["nope"]}, "Select a valid choice."),
    ],
)
def test_a_bad_offer_is_shown_next_to_its_field_and_creates_nothing(client, sponsor_owner, data, error):
    MembershipFactory(role="owner", merchant__slug="reseller")

    response = client.post(reverse("wallet-sponsorships"), data)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Sponsorship.objects.exists()


def test_a_store_cannot_sponsor_itself_and_is_told_so(client, sponsor_owner):
    response = client.post(
        reverse("wallet-sponsorships"), {"store": sponsor_owner.merchant.slug, "monthly_limit": "10"}
    )

    assert "A store cannot sponsor itself." in response.content.decode()
    assert not Sponsorship.objects.exists()


def test_the_beneficiary_accepts_and_then_both_pages_show_the_sponsorship(client, sponsor_owner):
    beneficiary_owner = MembershipFactory(role="owner", merchant__name="Reseller Ltd")
    sponsorship = sponsorship_create(
        sponsor=sponsor_owner.merchant, beneficiary=beneficiary_owner.merchant, monthly_limit=5_000
    )
    client.force_login(beneficiary_owner.user)

    assert "A store offers to pay for your tools." in client.get(reverse("wallet")).content.decode()
    client.post(reverse("wallet-sponsorship-action", args=[sponsorship.pk, "accept"]))

    sponsorship.refresh_from_db()
    assert sponsorship.status == "active"
    page = client.get(reverse("wallet-sponsorships")).content.decode()
    assert f"{sponsor_owner.merchant.name} pays for you" in page
    client.force_login(sponsor_owner.user)
    assert "You pay for Reseller Ltd" in client.get(reverse("wallet-sponsorships")).content.decode()


def test_only_the_sponsor_pauses_and_only_the_beneficiary_accepts(client, sponsor_owner):
    beneficiary_owner = MembershipFactory(role="owner")
    sponsorship = sponsorship_create(
        sponsor=sponsor_owner.merchant, beneficiary=beneficiary_owner.merchant, monthly_limit=5_000
    )

    assert (
        client.post(reverse("wallet-sponsorship-action", args=[sponsorship.pk, "accept"])).status_code == 404
    )
    client.force_login(beneficiary_owner.user)
    client.post(reverse("wallet-sponsorship-action", args=[sponsorship.pk, "accept"]))
    assert (
        client.post(reverse("wallet-sponsorship-action", args=[sponsorship.pk, "pause"])).status_code == 404
    )
    client.force_login(sponsor_owner.user)
    client.post(reverse("wallet-sponsorship-action", args=[sponsorship.pk, "pause"]))

    sponsorship.refresh_from_db()
    assert sponsorship.status == "paused"


def test_another_stores_sponsorship_answers_404(client, sponsor_owner):
    other = sponsorship_create(
        sponsor=MembershipFactory().merchant, beneficiary=MembershipFactory().merchant, monthly_limit=5_000
    )

    for action in ("accept", "end", "pause"):
        assert client.post(reverse("wallet-sponsorship-action", args=[other.pk, action])).status_code == 404
    assert (
        client.post(reverse("wallet-sponsorship-limit", args=[other.pk]), {"monthly_limit": "9"}).status_code
        == 404
    )
    other.refresh_from_db()
    assert (other.status, other.monthly_limit) == ("invited", 5_000)


def test_a_staff_member_sees_sponsorships_but_cannot_offer_one(client):
    staff = MembershipFactory(role="staff")
    client.force_login(staff.user)

    assert client.get(reverse("wallet-sponsorships")).status_code == 200
    MembershipFactory(role="owner", merchant__slug="reseller")
    assert (
        client.post(reverse("wallet-sponsorships"), {"store": "reseller", "monthly_limit": "10"}).status_code
        == 404
    )
    assert not Sponsorship.objects.exists()
