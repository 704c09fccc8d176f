"""The dashboard form fuzzer: every form on every dashboard page, posted hostile values, answers below 500.

The forms are found by reading the pages a signed-in owner (and an anonymous visitor) sees, so a new form
is fuzzed without being listed here. Values: NUL, lone surrogates (sent as the bytes a broken client would
send), huge strings, numbers where text goes and text where numbers go, repeated and unknown fields.
Hypothesis runs a fixed number of examples, derandomized: the same requests every run. Nothing may be
charged: the ledger reconciles and the wallet's balance is what it was funded with.
"""

from __future__ import annotations

import html.parser
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.conversations import services as conversations
from merchants.actors import Actor
from tests.api.conftest import fund
from tests.factories import MembershipFactory
from wallets.reconcile import reconcile_ledger
from wallets.services import wallet_of

pytestmark = pytest.mark.django_db

OWNER_PAGES = [
    "/",
    "/tools/listing-writer/",
    "/tools/marketing-copy/",
    "/bulk/",
    "/support/",
    "/runs/",
    "/wallet/",
    "/team/",
    "/api-keys/",
    "/store/",
    "/account/",
    "/password/",
]
ANONYMOUS_PAGES = ["/signup/", "/login/", "/password/reset/"]
# Forms whose success would end the fuzzing session itself.
SKIP_ACTIONS = ("/logout/",)
FUNDED = 1_000_000

HOSTILE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\ud800",
            "x\udfffy",
            "x" * 20_000,
            "-1",
            "0",
            "99999999999999999999999999",
            "1e309",
            "NaN",
            "[]",
            '{"a": {"b": [1, 2, {"c": null}]}}',
            "[" * 2000,
            "<script>alert(1)</script>",
            "' OR 1=1 --",
            "\u202eevil",
            "2026-13-45",
            "owner",
            "on",
        ]
    ),
)


@dataclass
class Form:
    page: str
    action: str
    method: str
    multipart: bool
    fields: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


class _FormReader(html.parser.HTMLParser):
    def __init__(self, page: str):
        super().__init__()
        self.page, self.forms, self.current = page, [], None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            action = attributes.get("action") or self.page
            self.current = Form(
                page=self.page,
                action=urlsplit(action).path or self.page,
                method=(attributes.get("method") or "get").lower(),
                multipart="multipart" in (attributes.get("enctype") or ""),
            )
        elif self.current is not None and tag in ("input", "select", "textarea", "button"):
            name = attributes.get("name")
            if not name or name == "csrfmiddlewaretoken":
                return
            (self.current.files if attributes.get("type") == "file" else self.current.fields).append(name)

    def handle_endtag(self, tag):
        if tag == "form" and self.current is not None:
            if not self.current.action.startswith(SKIP_ACTIONS):
                self.forms.append(self.current)
            self.current = None


def forms_on(client: Client, pages: list[str]) -> list[Form]:
    found: dict[tuple[str, str], Form] = {}
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, (page, response.status_code)
        reader = _FormReader(page)
        reader.feed(response.content.decode())
        for form in reader.forms:
            found.setdefault((form.method, form.action), form)
    return list(found.values())


def _urlencoded(pairs: list[tuple[str, str]]) -> str:
    # surrogatepass: the bytes a broken client sends for a lone surrogate (the server must not trust them).
    return "&".join(
        f"{quote(key.encode('utf-8', 'surrogatepass'))}={quote(value.encode('utf-8', 'surrogatepass'))}"
        for key, value in pairs
    )


def _send(client: Client, form: Form, pairs: list[tuple[str, str]], upload: bytes):
    if form.method == "get":
        return client.get(f"{form.action}?{_urlencoded(pairs)}")
    if form.multipart or form.files:
        from django.core.files.uploadedfile import SimpleUploadedFile

        data: dict = {}
        for key, value in pairs:  # multipart carries text as UTF-8: no lone surrogates here
            data.setdefault(key, []).append(value.encode("utf-8", "replace").decode("utf-8"))
        for name in form.files:
            data[name] = SimpleUploadedFile("products.csv", upload, content_type="text/csv")
        return client.post(form.action, data)
    return client.post(form.action, _urlencoded(pairs), content_type="application/x-www-form-urlencoded")


def _pairs(data, form: Form) -> list[tuple[str, str]]:
    names = [*dict.fromkeys(form.fields), "unexpected", "a[b][c]"]
    chosen = data.draw(
        st.lists(st.sampled_from(names), max_size=len(names) + 3), label=f"fields of {form.action}"
    )
    return [(name, data.draw(HOSTILE, label=name)) for name in chosen]


UPLOADS = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"product_name,marketplace\nLamp\x00,amazon\n",
            b"product_name\n" + b"x" * 140_000 + b"\n",
            b"\xff\xfe\x00\x00",
            b"product_name,tone\n" + b"Mug,calm\n" * 3,
        ]
    ),
)


@pytest.fixture
def owner_client(settings):
    # Card top-ups off: the buy form would otherwise talk to Stripe (the fuzzer's pack ids still post).
    settings.STRIPE_SECRET_KEY = ""
    membership = MembershipFactory(role="owner")
    fund(membership.merchant, FUNDED)
    conversation, _, _ = conversations.conversation_start(
        merchant=membership.merchant, actor=Actor.system("fuzz"), customer_ref="Bo", message="A person please"
    )
    client = Client(raise_request_exception=False)
    client.force_login(membership.user)
    # Read once: the fuzzing adds rows (keys, conversations) and with them forms; the examples must not vary.
    forms = forms_on(client, [*OWNER_PAGES, f"/support/{conversation.id}/"])
    forms.append(
        Form(page="/wallet/", action="/wallet/topup/", method="post", multipart=False, fields=["pack"])
    )
    return client, membership.merchant, forms


def _fuzz(client: Client, forms: list[Form], data) -> None:
    for form in forms:
        response = _send(client, form, _pairs(data, form), data.draw(UPLOADS, label="upload"))
        assert response.status_code < 500, (form.method, form.action, response.status_code)


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_dashboard_form_answers_hostile_values_below_500_and_charges_nothing(owner_client, data):
    client, merchant, forms = owner_client
    assert len(forms) >= 10, [form.action for form in forms]  # the pages still have their forms

    _fuzz(client, forms, data)

    assert reconcile_ledger() == []
    assert wallet_of(merchant=merchant).balance == FUNDED  # held maybe, never charged


@pytest.fixture
def public_forms():
    return forms_on(Client(), ANONYMOUS_PAGES)


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_public_form_answers_hostile_values_below_500(public_forms, data):
    assert len(public_forms) >= 3

    _fuzz(Client(raise_request_exception=False), public_forms, data)
