from django.db import IntegrityError, transaction
from django.utils.text import slugify

from merchants.exceptions import EmailTaken, NotAllowed, SlugTaken
from merchants.models import Membership, Merchant, User


def merchant_create(*, name: str, slug: str | None = None) -> Merchant:
    """A new tenant. Raises SlugTaken when the slug belongs to another merchant."""
    slug = slug or _free_slug(name)
    try:
        with transaction.atomic():
            return Merchant.objects.create(name=name, slug=slug)
    except IntegrityError as exc:
        raise SlugTaken(f"The store address {slug!r} is taken.") from exc


def user_signup(*, email: str, password: str, store_name: str) -> tuple[User, Merchant]:
    """Email-and-password sign-up: the user, their store, and their owner membership, or none of them."""
    email = email.strip().lower()
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise EmailTaken("An account with this email already exists.")
        user = User.objects.create_user(email=email, password=password)
        merchant = merchant_create(name=store_name)
        Membership.objects.create(user=user, merchant=merchant, role=Membership.Role.OWNER)
    return user, merchant


def owner_create(*, merchant: Merchant, email: str, password: str | None = None) -> User:
    """Attach an owner to a merchant, creating the user when new (operator CLI and seeding)."""
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password)
    membership_set(merchant=merchant, user=user, role=Membership.Role.OWNER)
    return user


def membership_set(*, merchant: Merchant, user: User, role: str, by: Membership | None = None) -> Membership:
    """Add a member or change their role. Only owners grant ownership; a store keeps at least one owner."""
    if role not in Membership.Role.values:
        raise NotAllowed(f"Unknown role {role!r}.")
    if by is not None and (not by.can_manage or (role == Membership.Role.OWNER and not by.is_owner)):
        raise NotAllowed("You may not grant this role.")
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            merchant=merchant, user=user, defaults={"role": role}
        )
        if not created and membership.role != role:
            if membership.is_owner and _owner_count(merchant) == 1:
                raise NotAllowed("A store needs at least one owner.")
            membership.role = role
            membership.save(update_fields=["role"])
    return membership


def membership_remove(*, membership: Membership, by: Membership) -> None:
    if not by.can_manage or (membership.is_owner and not by.is_owner):
        raise NotAllowed("You may not remove this member.")
    with transaction.atomic():
        if membership.is_owner and _owner_count(membership.merchant) == 1:
            raise NotAllowed("A store needs at least one owner.")
        membership.delete()


def store_profile_update(
    *, merchant: Merchant, by: Membership, brand_voice: str, default_language: str, knowledge_base: str
) -> Merchant:
    if not by.can_manage:
        raise NotAllowed("Only owners and managers edit the store profile.")
    merchant.brand_voice = brand_voice
    merchant.default_language = default_language
    merchant.knowledge_base = knowledge_base
    merchant.save(update_fields=["brand_voice", "default_language", "knowledge_base"])
    return merchant


def _owner_count(merchant: Merchant) -> int:
    return Membership.objects.filter(merchant=merchant, role=Membership.Role.OWNER).count()


def _free_slug(name: str) -> str:
    base = slugify(name)[:50] or "store"
    slug, n = base, 1
    while Merchant.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug
