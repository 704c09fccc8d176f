import hashlib
import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from merchants.emails import email_send
from merchants.exceptions import AlreadyMember, EmailTaken, InvalidLink, NotAllowed, SlugTaken
from merchants.i18n import DEFAULT_TIME_ZONE, time_zone_or_default, validate_time_zone
from merchants.models import Invitation, Membership, Merchant, User
from merchants.signals import store_signed_up


def merchant_create(*, name: str, slug: str | None = None, time_zone: str = DEFAULT_TIME_ZONE) -> Merchant:
    """A new tenant. Raises SlugTaken when a slug that was asked for belongs to another merchant.

    Without a slug one is made from the name; two stores of the same name created at once both get one.
    """
    for _attempt in range(5):
        chosen = slug or _free_slug(name)
        try:
            with transaction.atomic():
                return Merchant.objects.create(
                    name=name, slug=chosen, time_zone=time_zone_or_default(time_zone)
                )
        except IntegrityError as exc:
            if slug:
                raise SlugTaken(_("The store address %(slug)s is taken.") % {"slug": slug}) from exc
    raise SlugTaken(_("Could not find a free address for this store; try another name."))


def user_signup(
    *,
    email: str,
    password: str,
    store_name: str,
    base_url: str | None = None,
    time_zone: str = DEFAULT_TIME_ZONE,
    language: str = "",
) -> tuple[User, Merchant]:
    """Email-and-password sign-up: the user, their store, and their owner membership, or none of them.

    The store works at once; a link to verify the email address is mailed. `time_zone` is the browser's
    (unknown names become UTC), `language` the one the sign-up page was shown in (kept as the user's choice). Raises EmailTaken when the
    address has an account, also when another sign-up with it commits first (the unique email index
    makes the second wait for the first, then fail).
    """
    from merchants.accounts import email_verification_send

    email = email.strip().lower()
    taken = EmailTaken(_("An account with this email already exists. Log in, or reset your password."))
    if User.objects.filter(email__iexact=email).exists():
        raise taken
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password, language=language)
            merchant = merchant_create(name=store_name, time_zone=time_zone)
            Membership.objects.create(user=user, merchant=merchant, role=Membership.Role.OWNER)
            store_signed_up.send(sender=Merchant, merchant=merchant, user=user)
            email_verification_send(user=user, base_url=base_url)
    except IntegrityError as exc:
        raise taken from exc
    return user, merchant


def owner_create(*, merchant: Merchant, email: str, password: str | None = None) -> User:
    """Attach an owner to a merchant, creating the user when new (operator CLI and seeding)."""
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        # The operator names the address: no verification email, no reminder banner.
        user = User.objects.create_user(email=email, password=password, email_verified_at=timezone.now())
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


def member_add(
    *, merchant: Merchant, email: str, role: str, by: Membership, base_url: str | None = None
) -> Invitation:
    """Invite the person with this email to the team: they get a link, valid once, until it expires.

    The same happens whether or not the address has a Tokenhub account, so adding a member never tells
    anyone whether an email is registered; the invitee sets their own password (or logs in) from the link.
    Raises NotAllowed for a role `by` may not grant and AlreadyMember when the person is on the team.
    """
    _check_may_grant(merchant=merchant, role=role, by=by)
    email = email.strip().lower()
    if Membership.objects.filter(merchant=merchant, user__email__iexact=email).exists():
        raise AlreadyMember(_("%(email)s is already on the team.") % {"email": email})
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        # One open invitation per person and store: a new one replaces the link sent before.
        Invitation.objects.filter(
            merchant=merchant, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        invitation = Invitation.objects.create(
            merchant=merchant,
            email=email,
            role=role,
            token_hash=invitation_token_hash(token),
            invited_by=by.user,
            expires_at=now + settings.INVITATION_EXPIRY,
        )
        email_send(
            to=email,
            template="invitation",
            context={
                "store_name": merchant.name,
                "inviter": by.user.email,
                "role": invitation.get_role_display(),
                "url": _absolute(base_url, reverse("invitation-accept", args=[token])),
                "expires_at": invitation.expires_at,
            },
        )
    return invitation


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_check(*, invitation: Invitation | None) -> Invitation:
    """The invitation if it may still be used; otherwise InvalidLink saying why, for the invitee."""
    if invitation is None:
        raise InvalidLink(_("This invitation link is not valid. Ask the store for a new invitation."))
    if invitation.accepted_at is not None:
        raise InvalidLink(_("This invitation has been used already. Log in to reach the store."))
    if invitation.revoked_at is not None:
        raise InvalidLink(
            _("This invitation was withdrawn or replaced by a newer one. Use the latest email.")
        )
    if invitation.expires_at <= timezone.now():
        raise InvalidLink(_("This invitation has expired. Ask the store to invite you again."))
    return invitation


def invitation_accept(*, token: str, user: User | None = None, password: str | None = None) -> Membership:
    """Use an invitation, once: join as `user` (signed in as the invited address) or as a new account
    with `password` (the address has none yet). Either way the email address counts as verified."""
    with transaction.atomic():
        invitation = invitation_check(
            invitation=Invitation.objects.select_for_update()
            .select_related("merchant")
            .filter(token_hash=invitation_token_hash(token))
            .first()
        )
        if user is not None:
            if user.email.lower() != invitation.email.lower():
                raise NotAllowed(
                    _("This invitation is for %(email)s. Log out, then open the link again.")
                    % {"email": invitation.email}
                )
        else:
            if User.objects.filter(email__iexact=invitation.email).exists():
                raise NotAllowed(
                    _("%(email)s has an account: log in to accept.") % {"email": invitation.email}
                )
            if not password:
                raise NotAllowed(_("Choose a password to create your account."))
            try:
                with transaction.atomic():
                    user = User.objects.create_user(email=invitation.email, password=password)
            except IntegrityError as exc:
                raise NotAllowed(
                    _("%(email)s has an account: log in to accept.") % {"email": invitation.email}
                ) from exc
        now = timezone.now()
        if user.email_verified_at is None:
            user.email_verified_at = now
            user.save(update_fields=["email_verified_at"])
        membership, _created = Membership.objects.get_or_create(
            merchant=invitation.merchant, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at = now
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def invitation_revoke(*, invitation: Invitation, by: Membership) -> None:
    if not by.can_manage or by.merchant_id != invitation.merchant_id:
        raise NotAllowed(_("Only the store's owners and managers manage its team."))
    Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def _absolute(base_url: str | None, path: str) -> str:
    return f"{(base_url or settings.SITE_URL).rstrip('/')}{path}"


def membership_remove(*, membership: Membership, by: Membership) -> None:
    """Take a member off the team. Only owners remove owners; a store keeps at least one owner."""
    if not by.can_manage or by.merchant_id != membership.merchant_id:
        raise NotAllowed("You may not remove this member.")
    with transaction.atomic():
        # Judge the role the member has now, not the one on the page the request came from.
        current = Membership.objects.select_for_update().filter(pk=membership.pk).first()
        if current is None:
            return
        membership = current
        if membership.is_owner and not by.is_owner:
            raise NotAllowed("Only an owner may remove an owner.")
        if membership.is_owner and _owner_count(membership.merchant) == 1:
            raise NotAllowed("A store needs at least one owner.")
        membership.delete()


def store_profile_update(
    *,
    merchant: Merchant,
    by: Membership,
    brand_voice: str,
    default_language: str,
    knowledge_base: str,
    time_zone: str | None = None,
    name: str | None = None,
) -> Merchant:
    if not by.can_manage:
        raise NotAllowed(_("Only owners and managers edit the store profile."))
    merchant.brand_voice = brand_voice
    merchant.default_language = default_language
    merchant.knowledge_base = knowledge_base
    fields = ["brand_voice", "default_language", "knowledge_base"]
    if name and name.strip():
        # The slug (the store's handle in commands and the API) stays: only the name people read changes.
        merchant.name = name.strip()
        fields.append("name")
    if time_zone is not None:
        validate_time_zone(time_zone)
        merchant.time_zone = time_zone
        fields.append("time_zone")
    merchant.save(update_fields=fields)
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


def _free_slug(name: str) -> str:
    base = slugify(name)[:50] or "store"
    slug, n = base, 1
    while Merchant.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug
