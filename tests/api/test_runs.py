"""Creating, reading, listing and canceling runs through the API."""

import uuid

import pytest

from agents.models import Run
from tests.api.conftest import LISTING, settle
from tests.factories import MembershipFactory
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db

RUN_FIELDS = {
    "id",
    "tool",
    "status",
    "input",
    "output",
    "usage",
    "held",
    "cost",
    "error",
    "waiting",
    "funding",
    "created_at",
    "started_at",
    "finished_at",
}


def test_creating_a_run_answers_202_with_the_queued_run_and_holds_its_estimate(api, funded_merchant):
    response = api.post("/api/v1/runs", LISTING, format="json")
    run = response.json()
    assert response.status_code == 202
    assert set(run) == RUN_FIELDS
    assert run["status"] == "queued" and run["tool"] == "listing-writer" and run["held"] > 0
    assert run["usage"] == {"input_tokens": None, "output_tokens": None}
    assert run["cost"] is None and run["error"] is None
    assert wallet_balance(merchant=funded_merchant).held == run["held"]


def test_a_run_created_with_a_key_records_the_key(api, funded_merchant):
    run_id = api.post("/api/v1/runs", LISTING, format="json").json()["id"]
    assert Run.objects.get(pk=run_id).api_key_id == funded_merchant.api_keys.get().pk


def test_the_same_idempotency_key_and_body_answer_the_same_run_and_hold_once(api, funded_merchant):
    first = api.post("/api/v1/runs", LISTING, format="json", HTTP_IDEMPOTENCY_KEY="order-7")
    again = api.post("/api/v1/runs", LISTING, format="json", HTTP_IDEMPOTENCY_KEY="order-7")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert wallet_balance(merchant=funded_merchant).held == first.json()["held"]


def test_a_run_reads_back_with_status_usage_cost_and_error(api):
    created = api.post("/api/v1/runs", LISTING, format="json").json()
    Run.objects.filter(pk=created["id"]).update(error_code="model_refused", error_message="No.")
    run = api.get(f"/api/v1/runs/{created['id']}").json()
    assert run["id"] == created["id"] and run["input"] == LISTING["input"]
    assert run["error"] == {"code": "model_refused", "message": "No."}


def test_a_finished_run_reads_back_with_its_output_usage_and_cost(api):
    created = api.post("/api/v1/runs", LISTING, format="json").json()
    settle(created["id"], input_tokens=120, output_tokens=300, output={"title": "Linen apron"})
    run = api.get(f"/api/v1/runs/{created['id']}").json()
    assert run["status"] == "succeeded" and run["output"] == {"title": "Linen apron"}
    assert run["usage"] == {"input_tokens": 120, "output_tokens": 300}
    assert run["cost"] == 120 + 300 * 3 and run["error"] is None
    assert run["started_at"] and run["finished_at"]


def test_runs_list_newest_first_and_filter_by_tool_and_status(api):
    first = api.post("/api/v1/runs", LISTING, format="json").json()
    copy = {"tool": "marketing-copy", "input": {"product_name": "Linen apron", "channel": "email"}}
    second = api.post("/api/v1/runs", copy, format="json").json()
    api.post(f"/api/v1/runs/{first['id']}/cancel")

    def ids(query=""):
        return [run["id"] for run in api.get(f"/api/v1/runs{query}").json()["results"]]

    assert ids() == [second["id"], first["id"]]
    assert ids("?tool=listing-writer") == [first["id"]]
    assert ids("?status=queued") == [second["id"]]
    assert ids("?status=canceled&tool=listing-writer") == [first["id"]]


def test_canceling_a_queued_run_releases_its_hold(api, funded_merchant):
    run = api.post("/api/v1/runs", LISTING, format="json").json()
    response = api.post(f"/api/v1/runs/{run['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled" and response.json()["cost"] == 0
    assert wallet_balance(merchant=funded_merchant).held == 0


def test_canceling_a_run_a_worker_has_claimed_is_a_conflict(api):
    run = api.post("/api/v1/runs", LISTING, format="json").json()
    Run.objects.filter(pk=run["id"]).update(status=Run.Status.RUNNING)
    response = api.post(f"/api/v1/runs/{run['id']}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "run_not_cancelable"


def test_canceling_an_unknown_run_is_not_found(api):
    assert api.post(f"/api/v1/runs/{uuid.uuid4()}/cancel").status_code == 404


def test_the_dashboard_session_can_call_the_api_with_its_csrf_token(funded_merchant):
    from django.test import Client

    member = MembershipFactory(merchant=funded_merchant, role="staff").user
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    token = client.get("/team/").cookies["csrftoken"]  # what the dashboard's pages hand to their scripts
    response = client.post(
        "/api/v1/runs", LISTING, content_type="application/json", HTTP_X_CSRFTOKEN=token.value
    )
    assert response.status_code == 202
    assert Run.objects.get(pk=response.json()["id"]).created_by == member


def test_a_run_waiting_for_a_retry_says_so_in_the_api(api, funded_merchant):
    from agents.models import Run

    created = api.post(
        "/api/v1/runs", {"tool": "listing-writer", "input": {"product_name": "Lamp"}}, format="json"
    )
    Run.objects.filter(pk=created.json()["id"]).update(waiting="retrying", attempts=1, retries=1)

    run = api.get(f"/api/v1/runs/{created.json()['id']}").json()

    assert run["status"] == "queued"
    assert run["waiting"]["reason"] == "retrying" and "tried again" in run["waiting"]["message"]
