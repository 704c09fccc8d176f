"""The conversations endpoints: the customer-service bot over the API, with the API's errors."""

import pytest

from agents.models import Conversation, Message, Run
from tests.api.conftest import error_of, fund, settle
from tests.factories import MerchantFactory
from wallets.reconcile import reconcile_ledger
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db

ASK = "Do you ship to Canada?"


def test_a_conversation_with_a_first_message_answers_201_with_the_held_run(api, funded_merchant):
    response = api.post("/api/v1/conversations", {"customer_ref": "cust-7", "message": ASK}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "open" and body["customer_ref"] == "cust-7"
    assert [(m["role"], m["content"]) for m in body["messages"]] == [("customer", ASK)]
    assert body["run"]["status"] == "queued" and body["run"]["held"] > 0
    assert wallet_balance(merchant=funded_merchant).held == body["run"]["held"]


def test_a_message_answers_202_and_the_reply_shows_once_the_run_succeeds(api):
    conversation = api.post("/api/v1/conversations", {}, format="json").json()
    assert conversation["messages"] == [] and conversation["run"] is None

    response = api.post(
        f"/api/v1/conversations/{conversation['id']}/messages", {"message": ASK}, format="json"
    )
    assert response.status_code == 202, response.json()
    posted = response.json()
    assert posted["message"]["role"] == "customer" and posted["run"]["status"] == "queued"

    settle(posted["run"]["id"], output={"reply": "Yes, we do.", "needs_human": False, "sources": ["kb-1"]})
    body = api.get(f"/api/v1/conversations/{conversation['id']}").json()
    assert [(m["role"], m["content"], m["sources"]) for m in body["messages"]] == [
        ("customer", ASK, []),
        ("assistant", "Yes, we do.", ["kb-1"]),
    ]
    assert body["run"]["status"] == "succeeded"
    assert reconcile_ledger() == []


def test_needs_human_stores_later_messages_without_a_run(api, funded_merchant):
    conversation = api.post("/api/v1/conversations", {"message": "A person please"}, format="json").json()
    settle(conversation["run"]["id"], output={"reply": "Handing over.", "needs_human": True, "sources": []})
    held_before = wallet_balance(merchant=funded_merchant)

    response = api.post(
        f"/api/v1/conversations/{conversation['id']}/messages", {"message": "Hi?"}, format="json"
    )

    assert response.status_code == 202
    assert response.json()["run"] is None
    assert Run.objects.filter(merchant=funded_merchant).count() == 1
    assert wallet_balance(merchant=funded_merchant) == held_before
    assert api.get(f"/api/v1/conversations/{conversation['id']}").json()["status"] == "needs_human"
    assert reconcile_ledger() == []


def test_too_few_tokens_answers_402_and_stores_nothing(api_for):
    merchant = MerchantFactory()
    fund(merchant, tokens=5)
    api = api_for(merchant)
    conversation = api.post("/api/v1/conversations", {}, format="json").json()

    response = api.post(
        f"/api/v1/conversations/{conversation['id']}/messages", {"message": ASK}, format="json"
    )
    assert response.status_code == 402
    assert error_of(response)["code"] == "insufficient_tokens"
    response = api.post("/api/v1/conversations", {"message": ASK}, format="json")
    assert response.status_code == 402

    assert Message.objects.count() == 0
    assert Conversation.objects.filter(merchant=merchant).count() == 1
    assert wallet_balance(merchant=merchant).held == 0


def test_a_closed_conversation_answers_409(api):
    from agents.conversations.services import staff_reply

    conversation = api.post("/api/v1/conversations", {}, format="json").json()
    staff_reply(conversation=Conversation.objects.get(pk=conversation["id"]), user=None, then="close")

    response = api.post(
        f"/api/v1/conversations/{conversation['id']}/messages", {"message": ASK}, format="json"
    )
    assert response.status_code == 409
    assert error_of(response)["code"] == "conversation_closed"


def test_bad_input_answers_invalid_input(api):
    conversation = api.post("/api/v1/conversations", {}, format="json").json()
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    for body in ({}, {"message": ""}, {"message": 3}, {"message": "x" * 2001}, {"message": "hi", "extra": 1}):
        response = api.post(url, body, format="json")
        assert response.status_code == 400, body
        assert error_of(response)["code"] == "invalid_input"
    assert Message.objects.count() == 0


def test_a_replayed_idempotency_key_answers_the_same_message_and_run(api):
    conversation = api.post("/api/v1/conversations", {}, format="json").json()
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    first = api.post(url, {"message": ASK}, format="json", HTTP_IDEMPOTENCY_KEY="m-1").json()
    again = api.post(url, {"message": ASK}, format="json", HTTP_IDEMPOTENCY_KEY="m-1").json()
    assert again == first
    conflict = api.post(url, {"message": "Other"}, format="json", HTTP_IDEMPOTENCY_KEY="m-1")
    assert conflict.status_code == 409 and error_of(conflict)["code"] == "idempotency_conflict"
    assert Message.objects.count() == 1


def test_a_retried_message_after_the_conversation_was_closed_answers_the_first_message(api):
    from agents.conversations import services as conversations

    conversation = api.post("/api/v1/conversations", {}, format="json").json()
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    first = api.post(url, {"message": ASK}, format="json", HTTP_IDEMPOTENCY_KEY="m-2").json()
    conversations.staff_reply(
        conversation=Conversation.objects.get(pk=conversation["id"]),
        user=None,
        content="Closing.",
        then="close",
    )

    again = api.post(url, {"message": ASK}, format="json", HTTP_IDEMPOTENCY_KEY="m-2")

    assert again.status_code == 202
    assert again.json()["message"]["id"] == first["message"]["id"]
    assert Message.objects.filter(role="customer").count() == 1
    assert reconcile_ledger() == []
