"""GET /api/v1/conversations (filtered by status), the Idempotency-Key on POST /api/v1/conversations, and
GET /api/v1/support/outcomes: the numbers of the Support analytics page."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Conversation, Message, Run
from tests.api.conftest import error_of, settle
from wallets.reconcile import reconcile_ledger
from widgets.models import Rating

pytestmark = pytest.mark.django_db

ASK = "Do you ship to Canada?"


def test_the_list_shows_the_stores_conversations_newest_first_and_filters_by_status(
    api, funded_merchant, api_for, other_merchant
):
    first = api.post("/api/v1/conversations", {"customer_ref": "a"}, format="json").json()
    second = api.post("/api/v1/conversations", {"customer_ref": "b"}, format="json").json()
    Conversation.objects.filter(pk=first["id"]).update(status="needs_human")
    api_for(other_merchant).post("/api/v1/conversations", {"customer_ref": "theirs"}, format="json")

    everything = api.get("/api/v1/conversations").json()
    inbox = api.get("/api/v1/conversations", {"status": "needs_human"}).json()
    bad = api.get("/api/v1/conversations", {"status": "lost"})

    assert [c["id"] for c in everything["results"]] == [second["id"], first["id"]]
    assert [c["id"] for c in inbox["results"]] == [first["id"]]
    assert set(everything["results"][0]) == {
        "id",
        "status",
        "customer_ref",
        "created_at",
        "updated_at",
        "handed_over_at",
    }
    assert bad.status_code == 400 and error_of(bad)["code"] == "invalid_input"


def test_a_retried_start_with_the_same_idempotency_key_answers_the_first_conversation_and_holds_once(api):
    headers = {"HTTP_IDEMPOTENCY_KEY": "start-42"}
    body = {"customer_ref": "cust-1", "message": ASK}

    first = api.post("/api/v1/conversations", body, format="json", **headers)
    again = api.post("/api/v1/conversations", body, format="json", **headers)
    other = api.post("/api/v1/conversations", {**body, "message": "Returns?"}, format="json", **headers)

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.json()["run"]["id"] == first.json()["run"]["id"]
    assert Conversation.objects.count() == 1 and Run.objects.count() == 1
    assert other.status_code == 409 and error_of(other)["code"] == "idempotency_conflict"
    assert reconcile_ledger() == []


def test_outcomes_count_resolved_handed_over_ratings_and_tokens_per_resolved_conversation(
    api, funded_merchant
):
    def answered(text, *, hours_ago, reply_tokens=200):
        conversation = api.post("/api/v1/conversations", {"message": text}, format="json").json()
        run = settle(
            conversation["run"]["id"], output_tokens=reply_tokens,
            output={"reply": "Yes.", "needs_human": False, "sources": []},
        )  # fmt: skip
        then = timezone.now() - timedelta(hours=hours_ago)
        Message.objects.filter(conversation_id=conversation["id"]).update(created_at=then)
        return conversation["id"], run

    resolved, resolved_run = answered(ASK, hours_ago=30)
    answered(ASK, hours_ago=2)  # inside the 24-hour window: not resolved yet
    handed, _ = answered(ASK, hours_ago=30)
    Conversation.objects.filter(pk=handed).update(status="needs_human", handed_over_at=timezone.now())
    reply = Message.objects.get(conversation_id=resolved, role="assistant")
    Rating.objects.create(message=reply, helpful=True)

    body = api.get("/api/v1/support/outcomes").json()

    assert body["conversations"] == 3 and body["resolved_by_bot"] == 1 and body["handed_over"] == 1
    assert body["pending"] == 1 and body["helpful"] == 1 and body["unhelpful"] == 0
    resolved_run.refresh_from_db()
    assert body["tokens_per_resolved"] == resolved_run.cost
    assert body["resolution_window_hours"] == 24 and len(body["daily"]) == 30
    assert sum(day["conversations"] for day in body["daily"]) == 3
    assert reconcile_ledger() == []
