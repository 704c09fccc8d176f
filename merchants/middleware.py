import zoneinfo

from django.conf import settings
from django.utils import timezone, translation
from django.utils.functional import SimpleLazyObject

from merchants.i18n import time_zone_or_default
from merchants.selectors import membership_for

SESSION_KEY = "merchant_id"


class CurrentMerchantMiddleware:
    """Puts the signed-in user's membership and merchant on the request, resolved only when used."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        def membership():
            user = getattr(request, "user", None)
            if user is None or not user.is_authenticated:
                return None
            return membership_for(user=user, merchant_id=request.session.get(SESSION_KEY))

        request.membership = SimpleLazyObject(membership)
        request.merchant = SimpleLazyObject(
            lambda: request.membership.merchant if request.membership else None
        )
        return self.get_response(request)


class UserLocaleMiddleware:
    """A signed-in user's own language, and their store's time zone on its dashboard pages.

    After LocaleMiddleware (which read the language cookie or Accept-Language) and the merchant middleware.
    The user's saved choice wins over both, and is copied into the language cookie so the log-in page keeps
    it after they log out. The API and admin stay in UTC: an API client reads instants, not store days.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and getattr(user, "language", ""):
            translation.activate(user.language)
            request.LANGUAGE_CODE = translation.get_language()
        zone = None
        if user is not None and user.is_authenticated and not request.path.startswith(_UTC_PATHS):
            merchant = request.merchant
            if merchant:
                zone = zoneinfo.ZoneInfo(time_zone_or_default(merchant.time_zone))
        if zone is not None:
            timezone.activate(zone)
        try:
            response = self.get_response(request)
        finally:
            if zone is not None:
                timezone.deactivate()
        # After the view: a log-in that just happened counts too.
        user = getattr(request, "user", None)
        chosen = getattr(user, "language", "") if user is not None and user.is_authenticated else ""
        if chosen and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != chosen:
            language_cookie_set(response, chosen)
        return response


_UTC_PATHS = ("/api/", "/admin/", "/webhooks/", "/healthz", "/metrics")


def language_cookie_set(response, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
