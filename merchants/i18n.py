"""Languages and time zones: what a user or a store may choose, and checking a choice.

Two languages (settings.LANGUAGES). A user's own choice is kept on the user and in the language cookie, so
it holds on every device they log in from and on the log-in page after they log out; without one, the
browser's Accept-Language decides. A store's time zone is an IANA name (`Asia/Shanghai`): its pages, "this
month", the usage chart's days and the statement export are in that zone; the database stays in UTC.
"""

import zoneinfo
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

DEFAULT_TIME_ZONE = "UTC"
# Django's forms end each label with gettext(":"); its own zh_Hans catalogue leaves it ASCII. Naming it
# here puts it in our catalogue (makemessages keeps it), which gives Chinese forms the full-width colon.
FORM_LABEL_SUFFIX = gettext_noop(":")


@cache
def time_zone_names() -> tuple[str, ...]:
    """Every IANA zone this machine knows, sorted; the legacy aliases (`US/Eastern`) are left out."""
    return tuple(
        sorted(name for name in zoneinfo.available_timezones() if "/" in name or name == DEFAULT_TIME_ZONE)
    )


def validate_time_zone(value: str) -> None:
    if value not in time_zone_names():
        raise ValidationError(
            _("Choose a time zone from the list, such as Asia/Shanghai."), code="invalid_time_zone"
        )


def time_zone_or_default(value: str | None) -> str:
    """The browser's zone when it is one we know; anything else (empty, made up) is UTC."""
    return value if value and value in time_zone_names() else DEFAULT_TIME_ZONE


def language_codes() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def chosen_language(request) -> str:
    """The language this browser picked with the switch (the cookie), or "" when it never did."""
    value = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    return value if value in language_codes() else ""
