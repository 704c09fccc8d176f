import secrets

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from merchants.exceptions import AlreadyMember, EmailTaken, NotAllowed, SlugTaken
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
    """Add a member or change their role. Only owners grant or take away ownership; a store keeps an owner."""
    _check_may_grant(merchant=merchant, role=role, by=by)
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            merchant=merchant, user=user, defaults={"role": role}
        )
        if not created and membership.role != role:
            if by is not None and membership.is_owner and not by.is_owner:
                raise NotAllowed("Only an owner may change an owner's role.")
            if membership.is_owner and _owner_count(merchant) == 1:
                raise NotAllowed("A store needs at least one owner.")
            membership.role = role
            membership.save(update_fields=["role"])
    return membership


def member_add(*, merchant: Merchant, email: str, role: str, by: Membership) -> tuple[Membership, str | None]:
    """Add the person with this email to the team, creating their account when there is none.

    Returns the membership and, only when an account was created, its temporary password (it is stored
    hashed: the caller shows it once). Raises NotAllowed for a role `by` may not grant and AlreadyMember
    when the person is on the team already.
    """
    _check_may_grant(merchant=merchant, role=role, by=by)
    email = email.strip().lower()
    with transaction.atomic():
        user, password = _user_get_or_create(email=email)
        try:
            with transaction.atomic():
                membership = Membership.objects.create(merchant=merchant, user=user, role=role)
        except IntegrityError as exc:
            # The unique (user, merchant) constraint: they were on the team already, or a concurrent add won.
            raise AlreadyMember(f"{email} is already on the team.") from exc
    return membership, password


def membership_remove(*, membership: Membership, by: Membership) -> None:
    """Take a member off the team. Only owners remove owners; a store keeps at least one owner."""
    if not by.can_manage or by.merchant_id != membership.merchant_id:
        raise NotAllowed("You may not remove this member.")
    with transaction.atomic():
        # Judge the role the member has now, not the one on the page the request came from.
        membership = Membership.objects.select_for_update().filter(pk=membership.pk).first()
        if membership is None:
            return
        if membership.is_owner and not by.is_owner:
            raise NotAllowed("Only an owner may remove an owner.")
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
    """Locks the store's owner rows (call inside a transaction): two owners demoting or removing each other
    at once would each count two owners and leave none; the second now waits and counts again."""
    owners = Membership.objects.select_for_update().filter(merchant=merchant, role=Membership.Role.OWNER)
    return len(owners.values_list("pk", flat=True))


def _check_may_grant(*, merchant: Merchant, role: str, by: Membership | None) -> None:
    if role not in Membership.Role.values:
        raise NotAllowed(f"Unknown role {role!r}.")
    if by is None:
        return
    if not by.can_manage or by.merchant_id != merchant.pk:
        raise NotAllowed("Only the store's owners and managers manage its team.")
    if role == Membership.Role.OWNER and not by.is_owner:
        raise NotAllowed("Only an owner may make someone an owner.")


def _user_get_or_create(*, email: str) -> tuple[User, str | None]:
    """The account with this email, or a new one and its temporary password."""
    if (user := User.objects.filter(email__iexact=email).first()) is not None:
        return user, None
    password = _temporary_password()
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password), password
    except IntegrityError:
        # A concurrent add created the account between our read and our insert (the case-insensitive unique
        # email constraint made this insert wait for it, then fail): use theirs; its password is theirs to show.
        return User.objects.get(email__iexact=email), None


def _temporary_password() -> str:
    """Four groups of four from an alphabet without look-alikes (0/o, 1/l/i): about 79 bits, easy to read out."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def _free_slug(name: str) -> str:
    base = slugify(name)[:50] or "store"
    slug, n = base, 1
    while Merchant.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug
