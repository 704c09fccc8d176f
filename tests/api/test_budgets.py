"""A key's monthly token budget: runs that would take its usage past it are refused with 402."""

import pytest

from agents.models import Run
from agents.runs.budgets import key_month_usage
from tests.api.conftest import LISTING, error_of, settle
from wallets.selectors import wallet_balance

pytestmark = pytest.mark.django_db


def held_by_one_run(api) -> int:
    run = api.post("/api/v1/runs", LISTING, format="json").json()
    api.post(f"/api/v1/runs/{run['id']}/cancel")
    return run["held"]


def test_a_run_that_would_pass_the_budget_is_budget_exceeded_and_holds_nothing(api, api_for, funded_merchant):
    estimate = held_by_one_run(api)
    limited = api_for(funded_merchant, monthly_token_budget=estimate * 2 - 1)
    assert limited.post("/api/v1/runs", LISTING, format="json").status_code == 202
    held_before = wallet_balance(merchant=funded_merchant).held

    response = limited.post("/api/v1/runs", LISTING, format="json")

    error = error_of(response)
    assert response.status_code == 402
    assert error["code"] == "budget_exceeded"
    assert error["details"] == {"budget": estimate * 2 - 1, "used": estimate, "required": estimate}
    assert wallet_balance(merchant=funded_merchant).held == held_before
    assert Run.objects.filter(status="queued").count() == 1


def test_canceled_runs_give_their_budget_back(api, api_for, funded_merchant):
    estimate = held_by_one_run(api)
    limited = api_for(funded_merchant, monthly_token_budget=estimate)
    first = limited.post("/api/v1/runs", LISTING, format="json").json()
    limited.post(f"/api/v1/runs/{first['id']}/cancel")
    assert limited.post("/api/v1/runs", LISTING, format="json").status_code == 202


def test_a_replay_within_the_budget_answers_the_same_run(api, api_for, funded_merchant):
    estimate = held_by_one_run(api)
    limited = api_for(funded_merchant, monthly_token_budget=estimate)
    first = limited.post("/api/v1/runs", LISTING, format="json", HTTP_IDEMPOTENCY_KEY="x")
    again = limited.post("/api/v1/runs", LISTING, format="json", HTTP_IDEMPOTENCY_KEY="x")
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]


def test_settled_runs_count_their_cost_and_failed_runs_nothing(api_for, funded_merchant):
    limited = api_for(funded_merchant, monthly_token_budget=10**9)
    key = funded_merchant.api_keys.get()
    queued = limited.post("/api/v1/runs", LISTING, format="json").json()
    assert key_month_usage(api_key=key) == queued["held"]
    settled = settle(queued["id"], input_tokens=100, output_tokens=200)
    assert key_month_usage(api_key=key) == settled.cost == 100 * 1 + 200 * 3
    canceled = limited.post("/api/v1/runs", LISTING, format="json").json()
    limited.post(f"/api/v1/runs/{canceled['id']}/cancel")
    assert key_month_usage(api_key=key) == settled.cost
