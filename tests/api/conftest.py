"""API fixtures: merchants with tokens, their keys, and clients that send them.

def test_something(api_for, funded_merchant):
    api = api_for(funded_merchant)              # an APIClient with `Authorization: Bearer <key>`
    api.post("/api/v1/runs", {...}, format="json")
"""

from collections.abc import Callable

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from merchants import rate_limits
from merchants.api_keys import api_key_create
from merchants.models import Merchant
from tests import factories
from tests.factories import MerchantFactory

TOKENS = 10_000_000

LISTING = {"tool": "listing-writer", "input": {"product_name": "Linen apron", "marketplace": "shopify"}}


@pytest.fixture(autouse=True)
def _fresh_rate_limits(monkeypatch):
    """Each test starts with empty windows (ids repeat across test databases within one minute), and all
    its requests fall in one window, even when it straddles a minute boundary."""
    now = rate_limits.clock()
    monkeypatch.setattr(rate_limits, "clock", lambda: now)
    rate_limits.reset()  # in-process counts and any Redis bypass a failure started
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter(f"{rate_limits.KEY_PREFIX}*"))
        if keys:
            client.delete(*keys)


def fund(merchant: Merchant, tokens: int = TOKENS) -> None:
    factories.fund(merchant, tokens, key=f"test-grant:{merchant.pk}:{tokens}")


@pytest.fixture
def funded_merchant(db) -> Merchant:
    merchant = MerchantFactory()
    fund(merchant)
    return merchant


@pytest.fixture
def other_merchant(db) -> Merchant:
    merchant = MerchantFactory()
    fund(merchant)
    return merchant


@pytest.fixture
def key_for(db) -> Callable[..., str]:
    """A new raw API key for `merchant` (keyword arguments go to api_key_create)."""

    def make(merchant: Merchant, **fields) -> str:
        return api_key_create(merchant=merchant, name="test key", **fields).raw_key

    return make


def client_with(raw_key: str | None) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def api_for(key_for) -> Callable[..., APIClient]:
    def make(merchant: Merchant, **fields) -> APIClient:
        return client_with(key_for(merchant, **fields))

    return make


@pytest.fixture
def api(api_for, funded_merchant) -> APIClient:
    return api_for(funded_merchant)


def error_of(response) -> dict:
    """The error body, checked to have exactly the documented shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def settle(run_id, *, input_tokens: int = 100, output_tokens: int = 200, output: dict | None = None):
    """Finish a queued run as a worker would after a successful model call."""
    from agents.llm import Completion
    from agents.runs.execute import run_claim
    from agents.runs.settle import run_succeed

    run = run_claim(run_id=run_id)
    completion = Completion(
        text="{}",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        model="qwen-plus",
        finish_reason="stop",
    )
    return run_succeed(run=run, claim=run.attempts, completion=completion, output=output or {"title": "T"})
