"""A person's own account: email verification, change of email, password-reset mail, browser sessions.

Links are signed with SECRET_KEY (django.core.signing) and carry the address they were sent to, so a link
stops working once the address changes; a password-reset link is Django's own token, void once the password
changes. Every message goes through merchants.emails.
"""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.backends.base import SessionBase
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from merchants.emails import email_send
from merchants.exceptions import EmailTaken, InvalidLink, NotAllowed
from merchants.models import User, UserSession

VERIFY_SALT = "merchants.verify-email"
CHANGE_SALT = "merchants.change-email"


def _absolute(base_url: str | None, path: str) -> str:
    return f"{(base_url or settings.SITE_URL).rstrip('/')}{path}"


def email_verification_send(*, user: User, base_url: str | None = None) -> None:
    token = signing.dumps({"u": user.pk, "e": user.email.lower()}, salt=VERIFY_SALT, compress=True)
    email_send(
        to=user.email,
        template="verify_email",
        context={"url": _absolute(base_url, reverse("email-verify", args=[token])), "email": user.email},
    )


def email_verify(*, token: str) -> User:
    """Mark the address the link was sent to as verified. Using the link again changes nothing."""
    data = _load(token, salt=VERIFY_SALT)
    # django-stubs rejects None for a pk lookup; Django accepts it and matches no row.
    user = User.objects.filter(pk=data.get("u"), is_active=True).first()  # type: ignore[misc]
    if user is None or user.email.lower() != data.get("e"):
        raise InvalidLink(_("This link is for an email address the account no longer uses."))
    User.objects.filter(pk=user.pk, email_verified_at__isnull=True).update(email_verified_at=timezone.now())
    user.refresh_from_db(fields=["email_verified_at"])
    return user


def email_change_request(*, user: User, new_email: str, base_url: str | None = None) -> None:
    """Mail a confirmation link to the new address; nothing changes until it is followed.

    Whether the new address belongs to another account is told only to that address's inbox, never on the
    page: a signed-in user cannot use this form to find out who has an account.
    """
    new_email = new_email.strip().lower()
    if new_email == user.email.lower():
        raise NotAllowed(_("That is already your email address."))
    if User.objects.filter(email__iexact=new_email).exists():
        email_send(to=new_email, template="email_change_taken", context={"email": new_email})
        return
    token = signing.dumps(
        {"u": user.pk, "old": user.email.lower(), "new": new_email}, salt=CHANGE_SALT, compress=True
    )
    email_send(
        to=new_email,
        template="email_change",
        context={
            "url": _absolute(base_url, reverse("email-change-confirm", args=[token])),
            "old_email": user.email,
            "new_email": new_email,
        },
    )


def email_change_confirm(*, token: str) -> User:
    """Move the account to the new address, verified. The link works once: it names the old address."""
    data = _load(token, salt=CHANGE_SALT)
    with transaction.atomic():
        # django-stubs rejects None for a pk lookup; Django accepts it and matches no row.
        user = User.objects.select_for_update().filter(pk=data.get("u"), is_active=True).first()  # type: ignore[misc]
        if user is None or user.email.lower() != data.get("old"):
            raise InvalidLink(_("This link has been used already, or the account's email changed since."))
        old_email = user.email
        user.email = data["new"]
        user.email_verified_at = timezone.now()
        try:
            with transaction.atomic():
                user.save(update_fields=["email", "email_verified_at"])
        except IntegrityError as exc:
            raise EmailTaken(_("Another account uses that address now.")) from exc
        # The old address learns of it, so a hijacked session cannot quietly take the account away.
        email_send(
            to=old_email, template="email_changed", context={"old_email": old_email, "new_email": user.email}
        )
    return user


def password_reset_url(*, user: User, base_url: str | None = None) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return _absolute(base_url, reverse("password_reset_confirm", args=[uid, token]))


def password_reset_send(*, user: User, base_url: str | None = None) -> None:
    email_send(
        to=user.email,
        template="password_reset",
        context={"url": password_reset_url(user=user, base_url=base_url), "email": user.email},
    )


def _load(token: str, *, salt: str) -> dict:
    try:
        data = signing.loads(token, salt=salt, max_age=settings.EMAIL_CONFIRMATION_EXPIRY)
    except signing.SignatureExpired as exc:
        raise InvalidLink(_("This link has expired. Ask for a new one from your account page.")) from exc
    except signing.BadSignature as exc:
        raise InvalidLink(_("This link is not valid. Copy the whole link from the email.")) from exc
    return data if isinstance(data, dict) else {}


# --- Browser sessions -----------------------------------------------------------------------------


def _session_store(session_key: str | None = None) -> SessionBase:
    return import_string(f"{settings.SESSION_ENGINE}.SessionStore")(session_key=session_key)


def session_record(*, user: User, session_key: str, ip_address: str | None, user_agent: str) -> UserSession:
    session, _created = UserSession.objects.update_or_create(
        session_key=session_key,
        defaults={"user": user, "ip_address": ip_address or None, "user_agent": user_agent[:300]},
    )
    return session


def session_forget(*, session_key: str | None) -> None:
    if session_key:
        UserSession.objects.filter(session_key=session_key).delete()


def session_revoke(*, user: User, session_id: int) -> None:
    """End one of the user's signed-in browsers: that browser is logged out at its next request."""
    session = UserSession.objects.filter(user=user, pk=session_id).first()
    if session is None:
        return
    _session_store(session.session_key).delete()
    session.delete()


def sessions_prune(*, user: User) -> None:
    """Forget the rows of sessions that ended on their own (expired, logged out, password changed)."""
    store = _session_store()
    for session in UserSession.objects.filter(user=user):
        if not store.exists(session.session_key):
            session.delete()
