from django.db.models import QuerySet
from django.utils import timezone

from merchants.models import Invitation, Membership, Merchant, User, UserSession


def memberships_of(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("merchant")


def membership_for(*, user: User, merchant_id: int | None) -> Membership | None:
    """The user's membership of that merchant, or of their first merchant when none is chosen."""
    memberships = memberships_of(user=user)
    if merchant_id is not None and (chosen := memberships.filter(merchant_id=merchant_id).first()):
        return chosen
    return memberships.order_by("created_at").first()


def team_of(*, merchant: Merchant) -> QuerySet[Membership]:
    return Membership.objects.filter(merchant=merchant).select_related("user").order_by("created_at")


def sessions_of(*, user: User) -> QuerySet[UserSession]:
    return UserSession.objects.filter(user=user).order_by("-created_at")


def invitations_pending(*, merchant: Merchant) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        merchant=merchant, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).select_related("invited_by")


def invitation_by_token(*, token: str) -> Invitation | None:
    from merchants.services import invitation_token_hash

    return (
        Invitation.objects.select_related("merchant").filter(token_hash=invitation_token_hash(token)).first()
    )
