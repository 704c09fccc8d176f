"""The API fuzzer: hostile bodies, parameters and headers on every endpoint answer below 500.

Next to the schema-driven run (test_schema.py, schemathesis), this sends what a schema never describes:
JSON nested thousands deep, NUL and lone surrogates in keys and values, numbers past every range, bodies
that are not JSON, crafted cursors. Hypothesis runs a fixed number of examples, derandomized. Nothing is
charged: the ledger reconciles and the wallet's balance stays what it was funded with.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.conversations import services as conversations
from merchants.actors import Actor
from tests.api.conftest import TOKENS
from wallets.reconcile import reconcile_ledger
from wallets.services import wallet_of

pytestmark = pytest.mark.django_db

TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["\x00", "a\x00", "\ud800", "x\udfffy", "x" * 3_000, "listing-writer", "customer-service"]
    ),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)),
    max_leaves=12,
)


def _deep(depth: int) -> str:
    return '{"tool": "listing-writer", "input": ' + '{"a": ' * depth + "1" + "}" * depth + "}"


RUN_BODIES = st.one_of(
    JSON.map(lambda value: json.dumps(value)),
    st.fixed_dictionaries({"tool": TEXT, "input": JSON}).map(json.dumps),
    st.fixed_dictionaries(
        {"tool": st.just("listing-writer"), "input": st.dictionaries(TEXT, JSON, max_size=5)}
    ).map(json.dumps),
    st.integers(min_value=30, max_value=30_000).map(_deep),
    st.sampled_from(["", "{", "[1,", "NaN", '{"tool": Infinity}', "\x00", '"\\ud800"']),
    st.binary(max_size=50).map(lambda raw: raw.decode("latin-1")),
)
CURSORS = st.one_of(
    TEXT,
    st.binary(max_size=40).map(lambda raw: base64.b64encode(raw).decode()),
    st.sampled_from(["p=abc", "o=5&p=2020-13-01", "r=1&p=99999999999999999999", "p=%00", "o=-1"]).map(
        lambda raw: base64.b64encode(raw.encode()).decode()
    ),
)
# A URL carries UTF-8: a lone surrogate cannot be sent there (the client would fail, not the server).
URL_TEXT = TEXT.map(lambda text: text.encode("utf-8", "replace").decode("utf-8"))
PARAMS = st.dictionaries(
    st.sampled_from(["cursor", "limit", "status", "tool", "kind", "unknown"]),
    st.one_of(CURSORS, URL_TEXT, st.integers().map(str)),
    max_size=4,
)
LIST_PATHS = [
    "/api/v1/runs",
    "/api/v1/wallet/transfers",
    "/api/v1/conversations",
    "/api/v1/tools",
    "/api/v1/wallet",
]
IDS = st.one_of(st.uuids().map(str), URL_TEXT.map(lambda text: text.replace("/", "").replace("?", "")[:40]))


@pytest.fixture
def fuzz_api(api, funded_merchant, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    conversation, _, _ = conversations.conversation_start(
        merchant=funded_merchant, actor=Actor.system("fuzz"), customer_ref="Bo"
    )
    return api, funded_merchant, conversation


def _ok(response) -> None:
    assert response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    body=RUN_BODIES,
    message=RUN_BODIES,
    params=PARAMS,
    path=st.sampled_from(LIST_PATHS),
    run_id=IDS,
    key=st.one_of(st.none(), TEXT.filter(lambda t: t.isascii() and "\n" not in t and "\r" not in t)),
)
def test_hostile_requests_to_every_endpoint_answer_below_500_and_charge_nothing(
    fuzz_api, body, message, params, path, run_id, key
):
    api, merchant, conversation = fuzz_api
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}

    _ok(
        api.post(
            "/api/v1/runs",
            data=body.encode("utf-8", "surrogatepass"),
            content_type="application/json",
            **headers,
        )
    )
    _ok(
        api.post(
            f"/api/v1/conversations/{conversation.id}/messages",
            data=message.encode("utf-8", "surrogatepass"),
            content_type="application/json",
        )
    )
    _ok(
        api.post(
            "/api/v1/conversations",
            data=message.encode("utf-8", "surrogatepass"),
            content_type="application/json",
        )
    )
    # Quoted by hand: a lone surrogate goes out as the broken bytes a careless client would send.
    query = "&".join(f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in params.items())
    _ok(api.get(f"{path}?{query}"))
    _ok(api.get(f"/api/v1/runs/{run_id}"))
    _ok(api.post(f"/api/v1/runs/{run_id}/cancel"))

    assert reconcile_ledger() == []
    assert wallet_of(merchant=merchant).balance == TOKENS
