from django.db.models import QuerySet

from merchants.models import Membership, Merchant, User


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
