"""Support balance adjustments with four-eyes approval above a threshold.

What one staff member adjusts on one wallet adds up: an adjustment posts at once while the absolute sum of
their adjustments to that wallet over ADJUSTMENT_APPROVAL_WINDOW, this one included, stays within
settings.ADJUSTMENT_APPROVAL_THRESHOLD; past it, it becomes a pending AdjustmentRequest that another staff
member with `wallets.approve_adjustmentrequest` approves (posting it) or rejects. The requester can never
decide their own request, not even a superuser. Approving posts with the key `adjust-request:<id>`, so two
approvals racing post once. A debit the wallet cannot cover is refused when asked for, not at approval; a
request nobody decides expires after ADJUSTMENT_REQUEST_EXPIRY (beat runs `adjustment_requests_expire`).
"""

from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import Abs
from django.utils import timezone

from merchants.actors import Actor
from merchants.models import User
from wallets import services
from wallets.balance_events import wallet_spent
from wallets.exceptions import LedgerError
from wallets.models import Account, AdjustmentRequest, Transfer

APPROVE_PERMISSION = "wallets.approve_adjustmentrequest"
REQUEST_PERMISSION = "wallets.add_adjustmentrequest"


class AdjustmentNotAllowed(LedgerError):
    code = "adjustment_not_allowed"


class AdjustmentNotCoverable(AdjustmentNotAllowed):
    code = "adjustment_not_coverable"


class AdjustmentAlreadyDecided(LedgerError):
    code = "adjustment_already_decided"


def needs_approval(*, wallet: Account, staff: User, amount: int) -> bool:
    """Whether this adjustment, added to what `staff` adjusted on `wallet` in the window, passes the threshold.

    Counted in absolute tokens (a credit and a debit do not cancel out), over adjustments that posted without
    a second person and requests of theirs still waiting (so splitting a large request does not help).
    """
    since = timezone.now() - settings.ADJUSTMENT_APPROVAL_WINDOW
    posted = (
        Transfer.objects.filter(
            wallet=wallet,
            kind=Transfer.Kind.ADJUSTMENT,
            actor_kind=Transfer.ActorKind.STAFF,
            actor_user_id=staff.pk,
            created_at__gte=since,
        )
        .exclude(idempotency_key__startswith="adjust-request:")
        .aggregate(total=Sum("amount"))["total"]
        or 0
    )
    waiting = (
        AdjustmentRequest.objects.filter(
            wallet=wallet,
            requested_by_id=staff.pk,
            status=AdjustmentRequest.Status.PENDING,
            created_at__gte=since,
        ).aggregate(total=Sum(Abs("amount")))["total"]
        or 0
    )
    return posted + waiting + abs(amount) > settings.ADJUSTMENT_APPROVAL_THRESHOLD


def _check_coverable(wallet: Account, amount: int) -> None:
    """A debit beyond what the wallet has available could never be approved: refuse it when asked for."""
    if amount < 0:
        available = services.wallet_available(wallet_id=wallet.pk)
        if -amount > available:
            raise AdjustmentNotCoverable(
                f"The wallet has {available:,} tokens available, so a debit of {-amount:,} could never be "
                f"posted. Debit at most {available:,} tokens."
            )


def _require_staff(user: User, permission: str) -> None:
    if not (user.is_active and user.is_staff and user.has_perm(permission)):
        raise AdjustmentNotAllowed(f"{user} lacks {permission}.")


def _validate(amount: int, reason: str) -> str:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        raise AdjustmentNotAllowed(
            f"An adjustment must be a non-zero whole number of tokens, not {amount!r}."
        )
    if not reason or not reason.strip():
        raise AdjustmentNotAllowed("A reason is required for every balance adjustment.")
    return reason.strip()


def adjustment_submit(
    *,
    wallet: Account,
    amount: int,
    reason: str,
    staff: User,
    key: str,
    ticket_reference: str = "",
) -> Transfer | AdjustmentRequest:
    """What the admin form calls: post a small adjustment now, or open a request for a large one.

    `key` comes from the form (`adjust:<uuid>` issued with the page), so a double-submitted form posts once.
    """
    _require_staff(staff, REQUEST_PERMISSION)
    reason = _validate(amount, reason)
    if (replayed := Transfer.objects.filter(idempotency_key=key).first()) is not None:
        return replayed  # the same form page submitted again: it posted already, count it once
    with transaction.atomic():
        # The wallet's row lock: one staff member's adjustments submitted at once are summed one after the
        # other, so two of them cannot each pass under the threshold.
        Account.objects.select_for_update().filter(pk=wallet.pk).first()
        _check_coverable(wallet, amount)
        if needs_approval(wallet=wallet, staff=staff, amount=amount):
            return adjustment_request_create(
                wallet=wallet,
                amount=amount,
                reason=reason,
                requested_by=staff,
                ticket_reference=ticket_reference,
            )
        transfer = services.adjustment_create(
            wallet=wallet,
            amount=amount,
            reason=reason,
            actor=Actor.staff(staff),
            reference=ticket_reference,
            key=key,
        )
        if amount < 0:  # a debit may cross an alert or auto-recharge threshold
            transaction.on_commit(partial(wallet_spent, wallet_id=wallet.pk))
        return transfer


def adjustment_request_create(
    *, wallet: Account, amount: int, reason: str, requested_by: User, ticket_reference: str = ""
) -> AdjustmentRequest:
    """Open a request that a second staff member must approve; nothing moves yet."""
    _require_staff(requested_by, REQUEST_PERMISSION)
    reason = _validate(amount, reason)
    _check_coverable(wallet, amount)
    return AdjustmentRequest.objects.create(
        wallet=wallet,
        amount=amount,
        reason=reason,
        ticket_reference=ticket_reference,
        requested_by=requested_by,
    )


def _lock_pending(request_id: int, decider: User) -> AdjustmentRequest:
    # The row lock makes a second approver wait and then see the decision, instead of deciding again.
    request = AdjustmentRequest.objects.select_for_update().get(pk=request_id)
    if request.status != AdjustmentRequest.Status.PENDING:
        raise AdjustmentAlreadyDecided(
            f"Request {request_id} is already {request.get_status_display().lower()}."
        )
    if request.created_at < timezone.now() - settings.ADJUSTMENT_REQUEST_EXPIRY:
        raise AdjustmentAlreadyDecided(f"Request {request_id} has expired; ask for the adjustment again.")
    if request.requested_by_id == decider.pk:
        raise AdjustmentNotAllowed("A second staff member must decide an adjustment; you requested this one.")
    return request


def adjustment_request_approve(*, request_id: int, approver: User) -> AdjustmentRequest:
    """Post the requested adjustment and record who approved it, once.

    A debit the wallet can no longer cover raises InsufficientTokens and leaves the request pending.
    """
    _require_staff(approver, APPROVE_PERMISSION)
    with transaction.atomic():
        request = _lock_pending(request_id, approver)
        transfer = services.adjustment_create(
            wallet=request.wallet,
            amount=request.amount,
            # The memo is on the merchant's statement: the reason only. Who asked and who approved stay on
            # the request (and the approver on the transfer's actor).
            reason=request.reason,
            actor=Actor.staff(approver),
            reference=request.ticket_reference,
            key=f"adjust-request:{request.pk}",
        )
        request.status = AdjustmentRequest.Status.APPROVED
        request.decided_by = approver
        request.decided_at = timezone.now()
        request.transfer = transfer
        request.save(update_fields=["status", "decided_by", "decided_at", "transfer"])
        if request.amount < 0:
            transaction.on_commit(partial(wallet_spent, wallet_id=request.wallet_id))
    return request


def adjustment_request_reject(*, request_id: int, approver: User) -> AdjustmentRequest:
    """Close the request without moving tokens."""
    _require_staff(approver, APPROVE_PERMISSION)
    with transaction.atomic():
        request = _lock_pending(request_id, approver)
        request.status = AdjustmentRequest.Status.REJECTED
        request.decided_by = approver
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_by", "decided_at"])
    return request


def adjustment_requests_expire(*, now=None) -> int:
    """Close the requests nobody decided within ADJUSTMENT_REQUEST_EXPIRY; nothing moves. Returns how many."""
    cutoff = (now or timezone.now()) - settings.ADJUSTMENT_REQUEST_EXPIRY
    return AdjustmentRequest.objects.filter(
        status=AdjustmentRequest.Status.PENDING, created_at__lt=cutoff
    ).update(status=AdjustmentRequest.Status.EXPIRED, decided_at=timezone.now())
