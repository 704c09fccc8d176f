"""The visitor API the widget's script calls: who may use it (origin, key, visitor token), what one
visitor can see (only their conversation), and the limits that keep a hostile visitor from running up the
store's bill. Real PostgreSQL and Redis; the paid path with a real worker against the simulator."""

import pytest

from agents.models import Conversation, Message, Run
from merchants.rate_limits import hit
from tests.factories import ArticleFactory, WidgetFactory
from tests.plugins.workers import charged, funded, wait_finished, wallet
from wallets.models import Transfer
from wallets.reconcile import reconcile_ledger
from widgets import services
from widgets.models import VisitorConversation
from widgets.selectors import token_hash

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SHOP = "https://shop.example"
BASE = "/widget/v1"


@pytest.fixture(autouse=True)
def _still_minute(monkeypatch):
    """Rate limits count per clock minute: hold the clock inside one, so a test never straddles two."""
    from merchants import rate_limits

    now = rate_limits.clock()
    monkeypatch.setattr(rate_limits, "clock", lambda: now - now % 60 + 1)


def widget_for(tokens=2_000_000, **fields):
    return WidgetFactory(merchant=funded(tokens), **fields)


def start(client, widget, origin=SHOP):
    return client.post(f"{BASE}/conversations", HTTP_X_WIDGET_KEY=widget.public_key, HTTP_ORIGIN=origin)


def visitor_headers(widget, token, origin=SHOP):
    return {
        "HTTP_X_WIDGET_KEY": widget.public_key,
        "HTTP_ORIGIN": origin,
        "HTTP_AUTHORIZATION": f"Bearer {token}",
    }


def say(client, widget, body, text, **extra):
    return client.post(
        f"{BASE}/conversations/{body['id']}/messages",
        {"message": text},
        content_type="application/json",
        **{**visitor_headers(widget, body["visitor_token"]), **extra},
    )


def test_a_visitor_on_an_allowed_origin_starts_a_conversation_and_gets_a_token_kept_only_hashed(client):
    widget = widget_for()

    response = start(client, widget)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "open" and body["messages"] == [] and len(body["visitor_token"]) >= 40
    assert response["Access-Control-Allow-Origin"] == SHOP
    visitor = VisitorConversation.objects.get(conversation_id=body["id"])
    assert visitor.widget == widget and visitor.token_hash == token_hash(body["visitor_token"])
    assert body["visitor_token"] not in visitor.token_hash


def test_an_origin_not_on_the_widgets_list_is_refused_and_gets_no_cors_header(client):
    widget = widget_for()

    for origin in ("https://evil.example", "http://shop.example", ""):
        response = start(client, widget, origin=origin)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in response
    assert not Conversation.objects.exists()


def test_an_unknown_or_revoked_key_answers_401(client):
    widget = widget_for()
    services.widget_revoke(widget=widget)

    for key in (widget.public_key, "pk_nothing", "sk_live_123"):
        response = client.post(f"{BASE}/conversations", HTTP_X_WIDGET_KEY=key, HTTP_ORIGIN=SHOP)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "widget_key_invalid"


def test_a_preflight_is_allowed_only_for_an_origin_an_active_widget_lists(client):
    widget = widget_for()
    ask = {
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST",
        "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "x-widget-key",
    }

    allowed = client.options(f"{BASE}/conversations", HTTP_ORIGIN=SHOP, **ask)
    refused = client.options(f"{BASE}/conversations", HTTP_ORIGIN="https://evil.example", **ask)
    services.widget_revoke(widget=widget)
    revoked = client.options(f"{BASE}/conversations", HTTP_ORIGIN=SHOP, **ask)

    assert allowed.status_code == 204 and allowed["Access-Control-Allow-Origin"] == SHOP
    assert "X-Widget-Key" in allowed["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in refused
    assert "Access-Control-Allow-Origin" not in revoked


def test_without_a_token_401_and_with_another_visitors_token_404(client):
    widget = widget_for()
    mine, theirs = start(client, widget).json(), start(client, widget).json()
    other_store = widget_for(allowed_origins=[SHOP])
    elsewhere = start(client, other_store).json()
    url = f"{BASE}/conversations/{mine['id']}"

    no_token = client.get(url, HTTP_X_WIDGET_KEY=widget.public_key, HTTP_ORIGIN=SHOP)
    wrong_token = client.get(url, **visitor_headers(widget, theirs["visitor_token"]))
    other_widget = client.get(url, **visitor_headers(other_store, mine["visitor_token"]))
    other_store_token = client.get(url, **visitor_headers(widget, elsewhere["visitor_token"]))
    own = client.get(url, **visitor_headers(widget, mine["visitor_token"]))

    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == "unauthenticated"
    for refused in (wrong_token, other_widget, other_store_token):
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert own.status_code == 200 and own.json()["id"] == mine["id"]
    for action in ("messages", "human"):
        response = client.post(
            f"{url}/{action}", {"message": "hi"}, content_type="application/json",
            **visitor_headers(widget, theirs["visitor_token"]),
        )  # fmt: skip
        assert response.status_code == 404
    assert not Message.objects.exists()


def test_a_visitors_message_is_answered_with_citations_and_charged_to_the_store_to_the_token(
    client, llm_endpoint, celery_worker
):
    widget = widget_for()
    merchant = widget.merchant
    ArticleFactory(merchant=merchant, title="Shipping", url="https://shop.example/shipping",
                   body="We ship to Canada and the United States; delivery takes 5 to 7 days.")  # fmt: skip
    ArticleFactory(merchant=merchant, title="Returns", body="Unused items can be returned within 30 days.")
    body = start(client, widget).json()

    posted = say(client, widget, body, "Do you ship to Canada?")

    assert posted.status_code == 202, posted.content
    assert posted.json()["message"]["role"] == "customer" and posted.json()["run"]["status"] == "queued"
    (run,) = wait_finished(Run.objects.get(pk=posted.json()["run"]["id"]).pk)
    assert run.status == "succeeded", run.error_message
    conversation = client.get(
        f"{BASE}/conversations/{body['id']}", **visitor_headers(widget, body["visitor_token"])
    )
    reply = conversation.json()["messages"][-1]
    assert reply["role"] == "assistant" and "Canada" in reply["content"]
    assert reply["citations"] == [{"title": "Shipping", "url": "https://shop.example/shipping"}]
    assert charged(run) == run.cost > 0
    account = wallet(merchant)
    assert account.debits_posted == run.cost and account.debits_pending == 0
    settlement = Transfer.objects.get(idempotency_key=f"run:{run.pk}:settle")
    assert settlement.amount == run.cost
    assert reconcile_ledger() == []


def test_a_flood_from_one_visitor_is_refused_with_429_and_retry_after(client):
    widget = widget_for()
    body = start(client, widget).json()

    answers = [
        say(client, widget, body, f"Question {i}?") for i in range(services.VISITOR_MESSAGES_PER_MINUTE + 2)
    ]

    assert [a.status_code for a in answers[: services.VISITOR_MESSAGES_PER_MINUTE]] == [202] * 6
    refused = answers[services.VISITOR_MESSAGES_PER_MINUTE]
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["Access-Control-Allow-Origin"] == SHOP  # the script can read it and tell the visitor
    assert Run.objects.count() == services.VISITOR_MESSAGES_PER_MINUTE  # nothing held for refused ones
    assert reconcile_ledger() == []


def test_the_whole_widget_is_limited_too_whatever_the_number_of_visitors(client):
    widget = widget_for()
    body = start(client, widget).json()
    for _ in range(services.WIDGET_MESSAGES_PER_MINUTE):  # other visitors' messages this minute
        hit(f"widget:{widget.pk}:messages", limit=services.WIDGET_MESSAGES_PER_MINUTE)

    refused = say(client, widget, body, "Hello?")

    assert refused.status_code == 429 and "Retry-After" in refused
    assert not Run.objects.exists()


def test_starting_many_conversations_from_one_address_is_limited(client):
    widget = widget_for()

    codes = [start(client, widget).status_code for _ in range(services.VISITOR_STARTS_PER_MINUTE + 1)]

    assert codes == [201] * services.VISITOR_STARTS_PER_MINUTE + [429]


def test_over_the_conversation_cap_the_bot_stops_and_a_person_can_take_over_for_free(client):
    widget = widget_for(conversation_token_cap=1)
    body = start(client, widget).json()

    first = say(client, widget, body, "Do you ship to Canada?")
    second = say(client, widget, body, "And to Mexico?")
    human = client.post(
        f"{BASE}/conversations/{body['id']}/human", **visitor_headers(widget, body["visitor_token"])
    )
    third = say(client, widget, body, "Hello, a person please")

    assert first.status_code == 202
    assert second.status_code == 403 and second.json()["error"]["code"] == "conversation_limit_reached"
    assert human.status_code == 200 and human.json()["status"] == "needs_human" and human.json()["human"]
    assert third.status_code == 202 and third.json()["run"] is None
    assert Run.objects.count() == 1
    assert reconcile_ledger() == []


def test_when_the_daily_budget_is_spent_the_widget_is_offline(client):
    widget = widget_for(daily_token_budget=1)
    one, two = start(client, widget).json(), start(client, widget).json()

    first = say(client, widget, one, "Do you ship to Canada?")
    second = say(client, widget, two, "Do you ship to Canada?")

    assert first.status_code == 202
    assert second.status_code == 503 and second.json()["error"]["code"] == "widget_offline"
    assert Run.objects.count() == 1


def test_message_size_limits(client):
    widget = widget_for()
    body = start(client, widget).json()

    too_long = say(client, widget, body, "x" * (services.MESSAGE_MAX_CHARS + 1))
    empty = say(client, widget, body, "   ")
    huge = client.post(
        f"{BASE}/conversations/{body['id']}/messages", "{" + " " * 20_000 + "}", content_type="application/json",
        **visitor_headers(widget, body["visitor_token"]),
    )  # fmt: skip

    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "invalid_input"
    assert empty.status_code == 400
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
    assert not Run.objects.exists()


def test_a_visitor_rates_only_the_bots_replies_in_their_own_conversation(client):
    widget = widget_for()
    mine, theirs = start(client, widget).json(), start(client, widget).json()
    reply = Message.objects.create(conversation_id=mine["id"], role="assistant", content="We ship to Canada.")
    asked = Message.objects.create(conversation_id=mine["id"], role="customer", content="Canada?")

    def rate(message, token, helpful=True):
        return client.post(
            f"{BASE}/messages/{message.pk}/rating", {"helpful": helpful}, content_type="application/json",
            **visitor_headers(widget, token),
        )  # fmt: skip

    assert rate(reply, theirs["visitor_token"]).status_code == 404
    assert rate(asked, mine["visitor_token"]).status_code == 404
    assert rate(reply, mine["visitor_token"]).json() == {"message": reply.pk, "helpful": True}
    assert rate(reply, mine["visitor_token"], helpful=False).status_code == 200
    reply.refresh_from_db()
    assert reply.rating.helpful is False


def test_the_script_carries_the_widgets_colour_and_language_and_a_revoked_key_gets_none(client):
    widget = widget_for(color="#aa3300", language="zh")

    served = client.get(f"/widget/{widget.public_key}.js")
    services.widget_revoke(widget=widget)
    revoked = client.get(f"/widget/{widget.public_key}.js")

    assert served.status_code == 200 and served["Content-Type"].startswith("text/javascript")
    text = served.content.decode()
    assert '"color": "#aa3300"' in text and '"language": "zh"' in text and widget.public_key in text
    assert "/*TOKENHUB_WIDGET_CONFIG*/null" not in text
    assert revoked.status_code == 404 and widget.public_key not in revoked.content.decode()
