"""Support adjustments: the threshold counts one staff member's sum per wallet over a window, a debit that
could never be approved is refused when asked for, a stale request expires, and merchants never see who."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from merchants.actors import STAFF_LABEL
from tests.factories import MembershipFactory
from tests.wallets.helpers import reload
from wallets import adjustments, tasks
from wallets.adjustments import AdjustmentAlreadyDecided, AdjustmentNotCoverable
from wallets.models import AdjustmentRequest, Transfer

pytestmark = pytest.mark.django_db
THRESHOLD = 1_000_000


@pytest.fixture(autouse=True)
def _rules(settings):
    settings.ADJUSTMENT_APPROVAL_THRESHOLD = THRESHOLD
    settings.ADJUSTMENT_APPROVAL_WINDOW = timedelta(days=1)


def _submit(wallet, staff, amount, reason="Goodwill"):
    return adjustments.adjustment_submit(
        wallet=wallet, staff=staff, amount=amount, reason=reason, key=f"adjust:{uuid.uuid4()}"
    )


def test_three_adjustments_of_a_million_by_one_person_need_a_second_approver(wallet, support_user):
    first = _submit(wallet, support_user, 1_000_000)
    second = _submit(wallet, support_user, 1_000_000)
    third = _submit(wallet, support_user, 1_000_000)

    assert isinstance(first, Transfer)
    assert isinstance(second, AdjustmentRequest) and isinstance(third, AdjustmentRequest)
    assert reload(wallet).balance == 1_001_000


def test_credits_and_debits_do_not_cancel_out_in_the_sum(wallet_factory, support_user):
    wallet = wallet_factory(tokens=2_000_000)
    _submit(wallet, support_user, 600_000)
    _submit(wallet, support_user, -300_000)

    assert isinstance(_submit(wallet, support_user, 200_000), AdjustmentRequest)


def test_the_sum_is_per_staff_member_per_wallet(wallet, wallet_factory, support_user, second_support_user):
    _submit(wallet, support_user, 1_000_000)

    assert isinstance(_submit(wallet, second_support_user, 1_000_000), Transfer)
    assert isinstance(_submit(wallet_factory(tokens=0), support_user, 1_000_000), Transfer)


def test_adjustments_older_than_the_window_no_longer_count(settings, wallet, support_user):
    _submit(wallet, support_user, 1_000_000)
    settings.ADJUSTMENT_APPROVAL_WINDOW = timedelta(
        0
    )  # as if the window had passed (the ledger is immutable)

    assert isinstance(_submit(wallet, support_user, 1_000_000), Transfer)


def test_a_debit_beyond_the_available_balance_is_refused_when_asked_for(wallet_factory, support_user):
    wallet = wallet_factory(tokens=6_000_000)

    with pytest.raises(AdjustmentNotCoverable, match="The wallet has 6,000,000 tokens available"):
        _submit(wallet, support_user, -99_999_999)

    assert not AdjustmentRequest.objects.exists()


def test_the_admin_form_refuses_an_unapprovable_debit_with_the_reason(client, wallet_factory, support_user):
    wallet = wallet_factory(tokens=6_000_000)
    client.force_login(support_user)
    url = reverse("admin:wallets_account_adjust", args=[wallet.pk])
    key = client.get(url).context["form"].initial["key"]

    response = client.post(
        url, {"key": key, "amount": "-99999999", "reason": "Chargeback", "ticket_reference": ""}
    )

    assert "6,000,000" in str(response.context["form"].non_field_errors())
    assert not AdjustmentRequest.objects.exists()


def test_a_stale_pending_request_expires_when_beat_sweeps(
    settings, wallet, support_user, second_support_user
):
    settings.ADJUSTMENT_REQUEST_EXPIRY = timedelta(days=7)
    stale = _submit(wallet, support_user, 2_000_000)
    fresh = _submit(wallet, second_support_user, 2_000_000)
    AdjustmentRequest.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=8))

    assert tasks.adjustment_requests_expire() == 1

    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, fresh.status) == ("expired", "pending")
    with pytest.raises(AdjustmentAlreadyDecided):
        adjustments.adjustment_request_approve(request_id=stale.pk, approver=second_support_user)


def test_merchants_see_tokenhub_support_never_a_staff_email(
    client, wallet_factory, support_user, second_support_user
):
    wallet = wallet_factory(tokens=0)
    owner = MembershipFactory(merchant=wallet.merchant).user
    _submit(wallet, support_user, 500, reason="Sorry for the slow run")
    request = _submit(wallet, support_user, 2_000_000, reason="Annual credit")
    adjustments.adjustment_request_approve(request_id=request.pk, approver=second_support_user)
    client.force_login(owner)

    page = client.get(reverse("wallet")).content.decode()
    csv = b"".join(client.get(reverse("wallet-statement-csv")).streaming_content).decode()

    for shown in (page, csv):
        assert STAFF_LABEL in shown
        assert support_user.email not in shown and second_support_user.email not in shown
