"""A call made with an API key takes the short middleware chain, and answers as the full chain would."""

import pytest
from django.conf import settings as django_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient
from rest_framework.views import APIView

from merchants.api.authentication import ApiKeyAuthentication
from tests.api.conftest import LISTING, error_of
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

# Headers every API response carries, whichever chain answered it.
POLICY_HEADERS = (
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Strict-Transport-Security",
)


@pytest.fixture
def signed_in(funded_merchant) -> APIClient:
    client = APIClient()
    client.force_login(MembershipFactory(merchant=funded_merchant).user)
    return client


def test_a_call_with_an_api_key_never_opens_the_session(api):
    response = api.get("/api/v1/wallet")

    assert response.status_code == 200
    assert not hasattr(response.wsgi_request, "session")
    assert not hasattr(response.wsgi_request, "_messages")


def test_the_dashboard_calling_the_api_still_takes_the_full_chain(signed_in):
    response = signed_in.get("/api/v1/wallet")

    assert response.status_code == 200
    assert hasattr(response.wsgi_request, "session")


def test_a_call_with_an_api_key_carries_the_same_policy_headers_as_the_dashboards(api, signed_in, settings):
    settings.SECURE_HSTS_SECONDS = 3600  # as production sends it; read when a client's chain is built
    by_key = api.get("/api/v1/wallet", secure=True)
    by_session = signed_in.get("/api/v1/wallet", secure=True)

    assert by_key.status_code == by_session.status_code == 200
    for header in POLICY_HEADERS:
        assert by_key.headers.get(header) == by_session.headers.get(header), header
        assert by_key.headers.get(header), header
    assert by_key.headers["X-Request-Id"]


def test_a_call_with_an_api_key_is_answered_in_the_language_it_asks_for(api):
    response = api.get("/api/v1/wallet", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    assert response.headers["Content-Language"] == "zh-hans"


def test_a_forbidden_character_in_a_keyed_calls_query_is_refused(api):
    response = api.get("/api/v1/runs", {"status": "queued\x00"})

    assert response.status_code == 400
    assert error_of(response)["details"] == {
        "status": ["Text may not contain NUL characters or unpaired surrogates."]
    }


def test_a_bearer_header_without_a_key_is_refused_without_asking_the_session(signed_in):
    signed_in.credentials(HTTP_AUTHORIZATION="Bearer")

    response = signed_in.post("/api/v1/runs", LISTING, format="json")

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"


def test_a_lowercase_scheme_is_still_an_api_key_call(api, key_for, funded_merchant):
    api.credentials(HTTP_AUTHORIZATION=f"bearer {key_for(funded_merchant)}")

    response = api.get("/api/v1/wallet")

    assert response.status_code == 200
    assert not hasattr(response.wsgi_request, "session")


def _api_views(resolver: URLResolver, prefix: str = "") -> list[tuple[str, type]]:
    found = []
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _api_views(pattern, route)
        elif isinstance(pattern, URLPattern):
            view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
            if route.startswith("api/") and isinstance(view, type) and issubclass(view, APIView):
                found.append((route, view))
    return found


def test_every_api_view_asks_the_api_key_first():
    """The short chain has no session: a view that let the session judge a Bearer header would fail."""
    views = _api_views(get_resolver())

    assert len(views) > 10
    for route, view in views:
        if view.__module__.startswith("drf_spectacular"):
            continue  # the public schema and docs authenticate nobody
        assert view.authentication_classes[0] is ApiKeyAuthentication, route


def test_the_short_chain_keeps_what_every_api_response_needs():
    assert set(django_settings.API_KEY_MIDDLEWARE) >= {
        "csp.middleware.CSPMiddleware",
        "django.middleware.locale.LocaleMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "tokenhub.edge.InputGuardMiddleware",
    }
    assert not {"django.contrib.sessions.middleware.SessionMiddleware"} & set(
        django_settings.API_KEY_MIDDLEWARE
    )
