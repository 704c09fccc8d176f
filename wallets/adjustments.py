"""Support balance adjustments with four-eyes approval above a threshold.

An adjustment up to settings.ADJUSTMENT_APPROVAL_THRESHOLD tokens (absolute) posts at once; a larger one
becomes a pending AdjustmentRequest that another staff member with `wallets.approve_adjustmentrequest`
approves (posting it) or rejects. The requester can never decide their own request, not even a superuser.
Approving posts with the key `adjust-request:<id>`, so two approvals racing post once.
"""

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from wallets import services
from wallets.actors import Actor
from wallets.exceptions import LedgerError
from wallets.models import Account, AdjustmentRequest, Transfer

APPROVE_PERMISSION = "wallets.approve_adjustmentrequest"
REQUEST_PERMISSION = "wallets.add_adjustmentrequest"


class AdjustmentNotAllowed(LedgerError):
    code = "adjustment_not_allowed"


class AdjustmentAlreadyDecided(LedgerError):
    code = "adjustment_already_decided"


def needs_approval(amount: int) -> bool:
    return abs(amount) > settings.ADJUSTMENT_APPROVAL_THRESHOLD


def _require_staff(user: AbstractBaseUser, permission: str) -> None:
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
    staff: AbstractBaseUser,
    key: str,
    ticket_reference: str = "",
) -> Transfer | AdjustmentRequest:
    """What the admin form calls: post a small adjustment now, or open a request for a large one.

    `key` comes from the form (`adjust:<uuid>` issued with the page), so a double-submitted form posts once.
    """
    _require_staff(staff, REQUEST_PERMISSION)
    reason = _validate(amount, reason)
    if needs_approval(amount):
        return adjustment_request_create(
            wallet=wallet, amount=amount, reason=reason, requested_by=staff, ticket_reference=ticket_reference
        )
    return services.adjustment_create(
        wallet=wallet,
        amount=amount,
        reason=reason,
        actor=Actor.staff(staff),
        reference=ticket_reference,
        key=key,
    )


def adjustment_request_create(
    *, wallet: Account, amount: int, reason: str, requested_by: AbstractBaseUser, ticket_reference: str = ""
) -> AdjustmentRequest:
    """Open a request that a second staff member must approve; nothing moves yet."""
    _require_staff(requested_by, REQUEST_PERMISSION)
    return AdjustmentRequest.objects.create(
        wallet=wallet,
        amount=amount,
        reason=_validate(amount, reason),
        ticket_reference=ticket_reference,
        requested_by=requested_by,
    )


def _lock_pending(request_id: int, decider: AbstractBaseUser) -> AdjustmentRequest:
    # The row lock makes a second approver wait and then see the decision, instead of deciding again.
    request = AdjustmentRequest.objects.select_for_update().get(pk=request_id)
    if request.status != AdjustmentRequest.Status.PENDING:
        raise AdjustmentAlreadyDecided(
            f"Request {request_id} is already {request.get_status_display().lower()}."
        )
    if request.requested_by_id == decider.pk:
        raise AdjustmentNotAllowed("A second staff member must decide an adjustment; you requested this one.")
    return request


def adjustment_request_approve(*, request_id: int, approver: AbstractBaseUser) -> AdjustmentRequest:
    """Post the requested adjustment and record who approved it, once.

    A debit the wallet can no longer cover raises InsufficientTokens and leaves the request pending.
    """
    _require_staff(approver, APPROVE_PERMISSION)
    with transaction.atomic():
        request = _lock_pending(request_id, approver)
        transfer = services.adjustment_create(
            wallet=request.wallet,
            amount=request.amount,
            reason=f"{request.reason} (requested by {request.requested_by}, approved by {approver})",
            actor=Actor.staff(approver),
            reference=request.ticket_reference,
            key=f"adjust-request:{request.pk}",
        )
        request.status = AdjustmentRequest.Status.APPROVED
        request.decided_by = approver
        request.decided_at = timezone.now()
        request.transfer = transfer
        request.save(update_fields=["status", "decided_by", "decided_at", "transfer"])
    return request


def adjustment_request_reject(*, request_id: int, approver: AbstractBaseUser) -> AdjustmentRequest:
    """Close the request without moving tokens."""
    _require_staff(approver, APPROVE_PERMISSION)
    with transaction.atomic():
        request = _lock_pending(request_id, approver)
        request.status = AdjustmentRequest.Status.REJECTED
        request.decided_by = approver
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "decided_by", "decided_at"])
    return request
