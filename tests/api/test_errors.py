"""Every error code the API documents, produced for real, in the one documented body."""

import uuid
from io import BytesIO
from unittest import mock

import pytest
from django.test import override_settings
from rest_framework.exceptions import ParseError
from rest_framework.test import APIClient

from merchants.api_keys import api_key_revoke
from merchants.models import ApiKey
from tests.api.conftest import LISTING, client_with, error_of
from tests.factories import MembershipFactory, MerchantFactory, UserFactory
from tokenhub.api.parsers import LimitedJSONParser
from tokenhub.errors import PayloadTooLarge

pytestmark = pytest.mark.django_db


def test_a_body_that_is_not_json_is_invalid_input(api):
    response = api.post("/api/v1/runs", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_input"


def test_a_form_body_is_invalid_input(api):
    response = api.post("/api/v1/runs", data={"tool": "listing-writer"}, format="multipart")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_input"


def test_a_missing_field_is_invalid_input_naming_the_field(api):
    response = api.post("/api/v1/runs", {"input": {}}, format="json")
    error = error_of(response)
    assert response.status_code == 400
    assert error["code"] == "invalid_input"
    assert "tool" in error["details"]
    assert error["message"].startswith("tool:")


def test_an_unknown_field_in_the_run_body_is_invalid_input(api):
    response = api.post("/api/v1/runs", {**LISTING, "priority": "high"}, format="json")
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "invalid_input",
        "message": "priority: Unknown field.",
        "details": {"priority": "Unknown field."},
    }


def test_an_input_that_does_not_fit_the_tool_is_invalid_input_naming_the_field(api):
    response = api.post("/api/v1/runs", {"tool": "listing-writer", "input": {"category": "x"}}, format="json")
    error = error_of(response)
    assert response.status_code == 400
    assert error["code"] == "invalid_input"
    assert "product_name" in error["details"]


def test_an_unknown_tool_is_unknown_tool(api):
    response = api.post("/api/v1/runs", {"tool": "poet", "input": {}}, format="json")
    error = error_of(response)
    assert response.status_code == 400
    assert error["code"] == "unknown_tool"


@pytest.mark.parametrize(
    "query",
    ["tool=poet", "status=done", "cursor=garbage", "limit=0", "limit=201", "limit=ten", "limit=1&limit=2"],
)
def test_an_invalid_list_parameter_is_invalid_input(api, query):
    response = api.get(f"/api/v1/runs?{query}")
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_input"


def test_an_overlong_idempotency_key_is_invalid_input(api):
    response = api.post("/api/v1/runs", LISTING, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert error_of(response)["details"] == {"Idempotency-Key": "Use 1 to 255 visible ASCII characters."}


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer thk_00000000.nope", "Basic dXNlcjpwYXNz"])
def test_a_missing_or_wrong_key_is_unauthenticated(authorization):
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    response = client.get("/api/v1/wallet")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "unauthenticated"


def test_a_revoked_key_is_unauthenticated(funded_merchant, key_for):
    raw = key_for(funded_merchant)
    assert client_with(raw).get("/api/v1/wallet").status_code == 200
    api_key_revoke(merchant=funded_merchant, key_id=ApiKey.objects.get().pk)
    response = client_with(raw).get("/api/v1/wallet")
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"


def test_a_signed_in_user_without_a_store_is_forbidden():
    client = APIClient()
    client.force_login(UserFactory())
    response = client.get("/api/v1/wallet")
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


def test_a_session_call_that_changes_something_needs_the_csrf_token(funded_merchant):
    member = MembershipFactory(merchant=funded_merchant).user
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(member)
    response = client.post("/api/v1/runs", LISTING, format="json")
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


def test_an_unknown_run_is_not_found(api):
    response = api.get(f"/api/v1/runs/{uuid.uuid4()}")
    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "Not found.", "details": {}}


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/runs/not-a-uuid", "/api/v1/wallet/"])
def test_an_unknown_api_address_is_not_found_in_the_error_body(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_an_unknown_api_address_answers_404_even_when_the_dashboards_pages_cannot_render(api, monkeypatch):
    def broken_page(*args, **kwargs):
        raise ValueError("Missing staticfiles manifest entry for 'favicon.svg'")

    # As on a server whose static files were not collected: every styled page fails to render.
    monkeypatch.setattr("tokenhub.views.render", broken_page)

    response = api.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert error_of(response) == {
        "code": "not_found",
        "message": "There is no API endpoint at this address.",
        "details": {},
    }


def test_a_wrong_method_answers_in_the_error_body(api):
    response = api.delete("/api/v1/wallet")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_reusing_an_idempotency_key_for_another_body_is_idempotency_conflict(api):
    first = api.post("/api/v1/runs", LISTING, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    other = {"tool": "listing-writer", "input": {"product_name": "Wool scarf"}}
    response = api.post("/api/v1/runs", other, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == 202
    assert response.status_code == 409
    assert error_of(response)["code"] == "idempotency_conflict"


def test_too_few_tokens_is_insufficient_tokens_with_required_and_available(api_for):
    poor = MerchantFactory()
    response = api_for(poor).post("/api/v1/runs", LISTING, format="json")
    error = error_of(response)
    assert response.status_code == 402
    assert error["code"] == "insufficient_tokens"
    assert error["details"]["available"] == 0
    assert error["details"]["required"] > 0


@override_settings(API_MAX_BODY_BYTES=1024)
def test_a_body_over_the_limit_is_payload_too_large(api):
    big = {"tool": "listing-writer", "input": {"product_name": "x" * 2000}}
    response = api.post("/api/v1/runs", big, format="json")
    assert response.status_code == 413
    assert error_of(response) == {
        "code": "payload_too_large",
        "message": "The request body is larger than 1024 bytes.",
        "details": {"limit": 1024},
    }


@override_settings(API_MAX_BODY_BYTES=1024)
def test_an_oversized_body_is_refused_before_authentication():
    response = APIClient().post("/api/v1/runs", {"input": "x" * 2000}, format="json")
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


@override_settings(API_MAX_BODY_BYTES=1024)
def test_a_body_longer_than_its_content_length_says_is_refused_by_the_parser():
    """Django's stream stops at Content-Length; a server that passes more is caught by counting bytes."""
    stream = BytesIO(b'{"input": "' + b"x" * 2000 + b'"}')
    with pytest.raises(PayloadTooLarge):
        LimitedJSONParser().parse(stream)


def test_the_parser_rejects_nan_as_invalid_json():
    with pytest.raises(ParseError):
        LimitedJSONParser().parse(BytesIO(b'{"n": NaN}'))


@override_settings(API_RATE_LIMIT_PER_MINUTE=3)
def test_the_request_after_the_limit_is_rate_limited_with_retry_after(api):
    statuses = [api.get("/api/v1/wallet").status_code for _ in range(4)]
    response = api.get("/api/v1/wallet")
    assert statuses == [200, 200, 200, 429]
    assert error_of(response)["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60


@override_settings(API_RATE_LIMIT_PER_MINUTE=1)
def test_each_key_has_its_own_limit(funded_merchant, api_for):
    first, second = api_for(funded_merchant), api_for(funded_merchant)
    assert first.get("/api/v1/wallet").status_code == 200
    assert first.get("/api/v1/wallet").status_code == 429
    assert second.get("/api/v1/wallet").status_code == 200


def test_a_bug_answers_500_in_the_error_body(api):
    with mock.patch("wallets.selectors.wallet_balance", side_effect=RuntimeError("boom")):
        response = api.get("/api/v1/wallet")
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error"
    assert "boom" not in error["message"]
