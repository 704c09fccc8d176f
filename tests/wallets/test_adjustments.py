"""Four-eyes approval of large support adjustments."""

import uuid

import pytest
from django.db import IntegrityError, transaction

from tests.factories import UserFactory
from tests.wallets.helpers import SYSTEM, key, reload, run_in_threads
from wallets import adjustments, services
from wallets.adjustments import AdjustmentAlreadyDecided, AdjustmentNotAllowed
from wallets.exceptions import InsufficientTokens
from wallets.models import AdjustmentRequest, Transfer
from wallets.reconcile import reconcile_ledger

pytestmark = pytest.mark.django_db
THRESHOLD = 1_000


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.ADJUSTMENT_APPROVAL_THRESHOLD = THRESHOLD


def _submit(wallet, staff, amount):
    return adjustments.adjustment_submit(
        wallet=wallet, staff=staff, amount=amount, reason="Ticket says so", key=f"adjust:{uuid.uuid4()}"
    )


def test_an_adjustment_up_to_the_threshold_posts_at_once(wallet, support_user):
    transfer = _submit(wallet, support_user, THRESHOLD)
    assert isinstance(transfer, Transfer)
    assert (transfer.actor_user_id, reload(wallet).balance) == (support_user.pk, 2_000)


@pytest.mark.parametrize("amount", [THRESHOLD + 1, -(THRESHOLD + 1)])
def test_an_adjustment_above_the_threshold_waits_and_moves_nothing(wallet_factory, support_user, amount):
    wallet = wallet_factory(tokens=5_000)
    request = _submit(wallet, support_user, amount)
    assert isinstance(request, AdjustmentRequest)
    assert request.status == AdjustmentRequest.Status.PENDING
    assert reload(wallet).balance == 5_000


def test_a_second_staff_member_approves_and_the_adjustment_posts_once(
    wallet, support_user, second_support_user
):
    request = _submit(wallet, support_user, 5_000)
    approved = adjustments.adjustment_request_approve(request_id=request.pk, approver=second_support_user)
    assert approved.status == AdjustmentRequest.Status.APPROVED
    assert (approved.transfer.amount, approved.transfer.actor_user_id) == (5_000, second_support_user.pk)
    assert approved.transfer.idempotency_key == f"adjust-request:{request.pk}"
    with pytest.raises(AdjustmentAlreadyDecided):
        adjustments.adjustment_request_approve(request_id=request.pk, approver=second_support_user)
    assert reload(wallet).balance == 6_000
    assert reconcile_ledger() == []


def test_the_requester_can_never_approve_their_own_request(wallet, superuser):
    request = _submit(wallet, superuser, 5_000)
    with pytest.raises(AdjustmentNotAllowed, match="second staff member"):
        adjustments.adjustment_request_approve(request_id=request.pk, approver=superuser)
    assert reload(wallet).balance == 1_000


def test_the_database_also_refuses_a_self_approved_request(wallet, support_user):
    request = _submit(wallet, support_user, 5_000)
    request.status, request.decided_by = AdjustmentRequest.Status.REJECTED, support_user
    with pytest.raises(IntegrityError), transaction.atomic():
        request.save()


def test_staff_without_the_approve_permission_cannot_decide(wallet, support_user):
    request = _submit(wallet, support_user, 5_000)
    clerk = UserFactory(is_staff=True)
    with pytest.raises(AdjustmentNotAllowed):
        adjustments.adjustment_request_approve(request_id=request.pk, approver=clerk)
    with pytest.raises(AdjustmentNotAllowed):
        adjustments.adjustment_request_reject(request_id=request.pk, approver=clerk)


def test_a_rejected_request_moves_nothing_and_cannot_be_approved_later(
    wallet, support_user, second_support_user
):
    request = _submit(wallet, support_user, 5_000)
    adjustments.adjustment_request_reject(request_id=request.pk, approver=second_support_user)
    with pytest.raises(AdjustmentAlreadyDecided):
        adjustments.adjustment_request_approve(request_id=request.pk, approver=second_support_user)
    assert reload(wallet).balance == 1_000


def test_approving_a_debit_the_wallet_can_no_longer_cover_is_refused_and_stays_pending(
    wallet_factory, support_user, second_support_user
):
    wallet = wallet_factory(tokens=2_000)
    request = _submit(wallet, support_user, -1_001)
    services.hold_create(wallet=wallet, amount=1_500, key=key("hold"), actor=SYSTEM)  # a run since
    with pytest.raises(InsufficientTokens):
        adjustments.adjustment_request_approve(request_id=request.pk, approver=second_support_user)
    assert reload(wallet).balance == 2_000
    request.refresh_from_db()
    assert request.status == AdjustmentRequest.Status.PENDING


def test_a_non_staff_user_cannot_submit(wallet):
    with pytest.raises(AdjustmentNotAllowed):
        _submit(wallet, UserFactory(), 5)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvers_racing_post_the_adjustment_once(wallet_factory, support_user):
    wallet = wallet_factory(tokens=1_000)
    request = _submit(wallet, support_user, 5_000)
    approvers = [UserFactory(is_staff=True, is_superuser=True) for _ in range(8)]
    results = run_in_threads(
        8, lambda i: adjustments.adjustment_request_approve(request_id=request.pk, approver=approvers[i])
    )
    assert sum(isinstance(r, AdjustmentRequest) for r in results) == 1, results
    assert all(isinstance(r, AdjustmentRequest | AdjustmentAlreadyDecided) for r in results)
    assert reload(wallet).balance == 6_000
    assert reconcile_ledger() == []
