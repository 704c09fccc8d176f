"""Log-in lockout (django-axes): one policy for the dashboard and admin, aimed at the account being guessed.

AXES_LOCKOUT_PARAMETERS locks an account after AXES_FAILURE_LIMIT wrong passwords from anywhere (so guesses
spread over many addresses still stop), and an address-and-account pair; never a whole address, so one
attacker's wrong passwords cannot lock anyone else out. The locked account's owner is mailed a reset link:
resetting the password lifts the lock. Support lifts it from the user's page in admin.
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from merchants.models import User

log = logging.getLogger(__name__)


def username_of(request: HttpRequest, credentials: dict | None = None) -> str:
    """The email being logged in as, normalised: `A@x.com ` and `a@x.com` are one account, one counter."""
    source = credentials if credentials else getattr(request, "data", None) or request.POST
    value = source.get(settings.AXES_USERNAME_FORM_FIELD) or ""
    return str(value).strip().lower()[:254]


def cooloff_minutes() -> int:
    return max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))


def lockout_response(
    request: HttpRequest, original_response=None, credentials: dict | None = None
) -> HttpResponse:
    context = {
        "minutes": cooloff_minutes(),
        "admin": request.path.startswith("/admin/"),
    }
    response = render(
        request, "registration/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE
    )
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response


def on_locked_out(sender, request: HttpRequest, username: str, ip_address: str, **kwargs) -> None:
    """Mail the account's owner a reset link, once per lockout (axes signals every refused attempt)."""
    from merchants.accounts import password_reset_url
    from merchants.emails import email_send

    log.warning("log-in locked for %r (last attempt from %s)", username, ip_address)
    user = User.objects.filter(email__iexact=username or "", is_active=True).first()
    if user is None:
        return
    if not cache.add(_mail_key(user), 1, timeout=int(settings.AXES_COOLOFF_TIME.total_seconds())):
        return
    base_url = request.build_absolute_uri("/") if request is not None else None
    email_send(
        to=user.email,
        template="locked_out",
        context={
            "email": user.email,
            "minutes": cooloff_minutes(),
            "url": password_reset_url(user=user, base_url=base_url),
        },
    )


def _mail_key(user: User) -> str:
    return f"lockout-mail:{user.pk}:{user.date_joined.timestamp():.0f}"


def account_unlock(*, user: User) -> int:
    """Lift the lockout on this account (password reset, Support). Returns the records cleared."""
    from axes.utils import reset

    cache.delete(_mail_key(user))
    return reset(username=user.email.lower())


def account_locked(*, user: User) -> bool:
    from axes.models import AccessAttempt
    from django.db.models import Sum
    from django.utils import timezone

    since = timezone.now() - settings.AXES_COOLOFF_TIME
    failures = AccessAttempt.objects.filter(username=user.email.lower(), attempt_time__gte=since).aggregate(
        n=Sum("failures_since_start")
    )["n"]
    return (failures or 0) >= settings.AXES_FAILURE_LIMIT
