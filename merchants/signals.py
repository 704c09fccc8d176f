"""Wiring: browser sessions are recorded at log-in, the lockout mails its owner, Support gets its rights."""

from django.contrib.auth import get_user_model
from django.dispatch import Signal

# Sent inside the sign-up transaction with `merchant` and `user`: a store made by a person signing up
# (not by an operator's command). The wallets app grants the trial credits on it.
store_signed_up = Signal()

SUPPORT_GROUP = "Support"
# What Support needs in admin for people and stores: read merchants, members, keys and mail; unlock a log-in
# (deleting an axes attempt record is what unlocking is).
SUPPORT_PERMISSIONS = [
    ("merchants", "view_merchant"),
    ("merchants", "view_membership"),
    ("merchants", "view_user"),
    ("merchants", "view_apikey"),
    ("merchants", "view_invitation"),
    ("merchants", "view_outboundemail"),
    ("axes", "view_accessattempt"),
    ("axes", "delete_accessattempt"),
    ("axes", "view_accesslog"),
    ("axes", "view_accessfailurelog"),
]
UNLOCK_PERMISSION = "axes.delete_accessattempt"


def on_logged_in(sender, request, user, **kwargs) -> None:
    from merchants.accounts import session_record

    if request is None or not hasattr(request, "session") or not request.session.session_key:
        return
    session_record(
        user=user,
        session_key=request.session.session_key,
        ip_address=request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


def on_logged_out(sender, request, user, **kwargs) -> None:
    from merchants.accounts import session_forget

    if request is not None and hasattr(request, "session"):
        session_forget(session_key=request.session.session_key)


def support_permissions_grant(sender=None, **kwargs) -> None:
    from django.contrib.auth.models import Group, Permission

    if get_user_model()._meta.app_label != "merchants":
        return
    group, _created = Group.objects.get_or_create(name=SUPPORT_GROUP)
    for app_label, codename in SUPPORT_PERMISSIONS:
        permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if permission is not None:  # created by post_migrate of its own app, which may run after ours
            group.permissions.add(permission)
