"""Support works in admin: find a store, read its figures, open its wallet, runs and ledger from its page."""

import uuid

import pytest
from django.urls import reverse

from tests.factories import MembershipFactory
from wallets import adjustments
from wallets.models import AdjustmentRequest, Transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(wallet_factory):
    wallet = wallet_factory(tokens=5_000_000, name="Juniper Outfitters", slug="juniper")
    MembershipFactory(merchant=wallet.merchant, user__email="owner@juniper.example")
    return wallet


def test_support_finds_a_merchant_by_an_owners_email_and_opens_its_page(client, store, support_user):
    client.force_login(support_user)

    found = client.get(reverse("admin:merchants_merchant_changelist"), {"q": "owner@juniper"})
    assert "Juniper Outfitters" in found.content.decode()
    page = client.get(reverse("admin:merchants_merchant_change", args=[store.merchant.pk])).content.decode()

    for figure in ("Balance", "5,000,000", "Available", "Held by runs"):
        assert figure in page
    links = {
        "wallet": reverse("admin:wallets_account_change", args=[store.pk]),
        "ledger": reverse("admin:wallets_transfer_changelist") + f"?wallet__id__exact={store.pk}",
        "runs": reverse("admin:agents_run_changelist") + f"?merchant__id__exact={store.merchant.pk}",
        "members": reverse("admin:merchants_membership_changelist")
        + f"?merchant__id__exact={store.merchant.pk}"
        if _registered("merchants_membership")
        else "",
        "keys": reverse("admin:merchants_apikey_changelist") + f"?merchant__id__exact={store.merchant.pk}",
    }
    for name, url in links.items():
        if url:
            assert url.replace("&", "&amp;") in page, name
    if _registered("agents_conversation"):
        assert reverse("admin:agents_conversation_changelist") in page


def _registered(name: str) -> bool:
    from django.urls import NoReverseMatch

    try:
        reverse(f"admin:{name}_changelist")
    except NoReverseMatch:
        return False
    return True


def test_support_opens_the_wallet_and_runs_of_a_merchant(client, store, support_user):
    client.force_login(support_user)

    assert client.get(reverse("admin:wallets_account_change", args=[store.pk])).status_code == 200
    runs = client.get(reverse("admin:agents_run_changelist"), {"merchant__id__exact": store.merchant.pk})
    assert runs.status_code == 200


def test_the_transfers_list_shows_amounts_with_thousands_separators(client, store, support_user):
    client.force_login(support_user)

    page = client.get(reverse("admin:wallets_transfer_changelist")).content.decode()

    assert "5,000,000" in page
    assert "juniper" in page


def test_support_cannot_edit_a_ledger_row(client, store, support_user):
    client.force_login(support_user)
    transfer = Transfer.objects.filter(wallet=store).first()
    url = reverse("admin:wallets_transfer_change", args=[transfer.pk])

    client.post(url, {"amount": "1", "memo": "edited"})

    assert Transfer.objects.get(pk=transfer.pk).amount == transfer.amount
    assert client.post(reverse("admin:wallets_transfer_delete", args=[transfer.pk])).status_code == 403


def test_support_cannot_approve_their_own_adjustment_in_admin(client, store, support_user, settings):
    settings.ADJUSTMENT_APPROVAL_THRESHOLD = 100
    request = adjustments.adjustment_submit(
        wallet=store, staff=support_user, amount=5_000, reason="Refund", key=f"adjust:{uuid.uuid4()}"
    )
    client.force_login(support_user)

    response = client.post(
        reverse("admin:wallets_adjustmentrequest_changelist"),
        {"action": "approve_selected", "_selected_action": [request.pk]},
        follow=True,
    )

    assert "A second staff member must decide" in response.content.decode()
    assert AdjustmentRequest.objects.get(pk=request.pk).status == "pending"
