"""Executing a run (the service the Celery task calls) against the Qwen simulator over HTTP.

What a real worker adds (delivery, retries through the broker, crashes) is in test_worker.py; here each
step is called directly so every branch is quick and exact.
"""

import pytest

from agents import llm
from agents.execution import Outcome, run_claim, run_execute, run_succeed
from agents.models import Run
from agents.runs import run_create
from tests.agents import worker
from tests.agents.worker import SYSTEM, charged, funded, ledger_of, listing, product_name, wallet
from wallets.reconcile import reconcile_ledger

# Fixtures from tests/agents/worker.py (explicit: tests/agents/conftest.py belongs to the llm tests).
fast_retries = worker.fast_retries

pytestmark = pytest.mark.django_db

TOKENS = 1_000_000


def create(merchant, name=None):
    return run_create(merchant=merchant, tool="listing-writer", input=listing(name), actor=SYSTEM)


def execute_until_done(run, max_steps=10):
    """Call the service as the task would, re-entering under the claim it hands back."""
    outcome, claim, retries = None, None, 0
    for _ in range(max_steps):
        outcome = run_execute(run_id=run.pk, claim=claim, retries=retries)
        if outcome.status != "retry":
            break
        claim, retries = outcome.claim, retries + 1
    run.refresh_from_db()
    return outcome


def test_a_run_succeeds_and_is_charged_exactly_the_cost_of_its_usage(llm_endpoint):
    merchant = funded(TOKENS)
    run = create(merchant)

    assert run_execute(run_id=run.pk) == Outcome("succeeded")

    run.refresh_from_db()
    assert run.status == "succeeded" and run.output["title"]
    cost = run.price.cost(input_tokens=run.input_tokens, output_tokens=run.output_tokens)
    assert run.cost == cost <= run.held and run.uncharged == 0
    assert run.input_tokens > 0 and run.output_tokens > 0 and run.finished_at and run.attempts == 1
    ledger = ledger_of(run)
    assert {kind: len(ts) for kind, ts in ledger.items()} == {"hold": 1, "settle": 1}
    assert ledger["settle"][0] == run.settlement and ledger["settle"][0].amount == cost
    after = wallet(merchant)
    assert (after.balance, after.debits_pending) == (TOKENS - cost, 0)
    assert reconcile_ledger() == []


def test_a_second_delivery_of_a_run_charges_nothing(llm_endpoint):
    merchant = funded(TOKENS)
    run = create(merchant)
    run_execute(run_id=run.pk)
    assert run_execute(run_id=run.pk) == Outcome("skipped")
    assert len(ledger_of(run)["settle"]) == 1
    assert llm_endpoint.stats()["requests"] == 1
    assert reconcile_ledger() == []


def test_a_busy_model_is_retried_under_the_same_claim_and_charged_once(llm_endpoint, fast_retries):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault("429", match=name)

    first = run_execute(run_id=run.pk)
    assert first.status == "retry" and first.claim == 1 and 0 < first.retry_in <= 0.2
    assert Run.objects.get(pk=run.pk).status == "running"
    assert run_execute(run_id=run.pk, claim=first.claim, retries=1) == Outcome("succeeded")

    run.refresh_from_db()
    assert (run.status, run.attempts) == ("succeeded", 2)
    assert charged(run) == run.cost and len(ledger_of(run)["settle"]) == 1
    assert llm_endpoint.stats()["requests"] == 2
    assert reconcile_ledger() == []


def test_a_stale_retry_whose_claim_has_moved_on_does_nothing(llm_endpoint, fast_retries):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault("429", match=name)
    first = run_execute(run_id=run.pk)
    run_execute(run_id=run.pk, claim=first.claim, retries=1)

    assert run_execute(run_id=run.pk, claim=first.claim, retries=1) == Outcome("skipped")
    assert run_execute(run_id=run.pk) == Outcome("skipped")
    assert llm_endpoint.stats()["requests"] == 2
    assert len(ledger_of(run)["settle"]) == 1


def test_a_model_that_stays_busy_fails_the_run_once_retries_run_out_and_charges_nothing(
    llm_endpoint, fast_retries
):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault(["500", "500", "500", "500"], match=name)

    assert execute_until_done(run) == Outcome("failed")

    assert (run.status, run.cost, run.error_code, run.output) == ("failed", 0, "provider_error", None)
    assert "Nothing was charged" in run.error_message
    assert llm_endpoint.stats()["requests"] == 3  # the first call and QWEN_MAX_RETRIES = 2 retries
    assert ledger_of(run).keys() == {"hold", "void"}
    assert wallet(merchant).available == TOKENS
    assert reconcile_ledger() == []


def test_a_moderation_refusal_fails_at_once_without_a_retry_and_charges_nothing(llm_endpoint, fast_retries):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault("moderation", match=name)

    assert execute_until_done(run) == Outcome("failed")

    assert (run.status, run.error_code) == ("failed", "moderation")
    assert "content filter" in run.error_message
    assert llm_endpoint.stats()["requests"] == 1
    assert ledger_of(run).keys() == {"hold", "void"}
    assert wallet(merchant).available == TOKENS


def test_an_overdue_provider_account_fails_the_run_at_once(llm_endpoint, fast_retries):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault("arrearage", match=name)

    assert execute_until_done(run) == Outcome("failed")
    assert (run.error_code, llm_endpoint.stats()["requests"]) == ("provider_unavailable", 1)
    assert "Arrearage" not in run.error_message  # the operator's problem, in merchant-safe words


def test_an_unparseable_answer_is_asked_again_once_and_only_the_good_answer_is_charged(llm_endpoint):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault("malformed", match=name)

    assert run_execute(run_id=run.pk) == Outcome("succeeded")

    run.refresh_from_db()
    assert llm_endpoint.stats()["requests"] == 2
    assert run.output["title"]
    assert run.cost == min(
        run.held, run.price.cost(input_tokens=run.input_tokens, output_tokens=run.output_tokens)
    )
    assert len(ledger_of(run)["settle"]) == 1
    assert reconcile_ledger() == []


def test_two_unparseable_answers_fail_the_run_and_store_no_half_parsed_output(llm_endpoint):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault(["malformed", "malformed"], match=name)

    assert run_execute(run_id=run.pk) == Outcome("failed")

    run.refresh_from_db()
    assert (run.status, run.error_code, run.output, run.cost) == ("failed", "invalid_output", None, 0)
    assert llm_endpoint.stats()["requests"] == 2
    assert ledger_of(run).keys() == {"hold", "void"}


def test_a_model_that_times_out_is_retried_then_fails_and_charges_nothing(llm_endpoint, fast_retries):
    fast_retries.QWEN_TIMEOUT_SECONDS = 0.3
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault(["timeout", "timeout", "timeout"], match=name)

    assert execute_until_done(run) == Outcome("failed")

    assert (run.status, run.error_code, run.cost) == ("failed", "timeout", 0)
    assert llm_endpoint.stats()["faults_served"] == {"timeout": 3}
    assert wallet(merchant).available == TOKENS
    assert reconcile_ledger() == []


def test_a_retry_that_would_land_after_the_deadline_fails_the_run_now(llm_endpoint, settings):
    settings.QWEN_RETRY_BACKOFF_SECONDS = 10_000.0
    settings.QWEN_RETRY_BACKOFF_MAX_SECONDS = 10_000.0
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault("503", match=name)

    assert run_execute(run_id=run.pk) == Outcome("failed")
    assert Run.objects.get(pk=run.pk).error_code == "provider_error"


def test_a_charge_above_the_hold_is_capped_at_the_hold_and_the_excess_recorded(db):
    merchant = funded(TOKENS)
    run = create(merchant)
    claimed = run_claim(run_id=run.pk)
    huge = llm.Completion(
        text="{}", input_tokens=50_000, output_tokens=50_000, model="qwen-plus", finish_reason="stop"
    )

    settled = run_succeed(run=claimed, claim=claimed.attempts, completion=huge, output={"title": "x"})

    actual = run.price.cost(input_tokens=50_000, output_tokens=50_000)
    assert (settled.status, settled.cost, settled.uncharged) == ("succeeded", run.held, actual - run.held)
    assert ledger_of(run)["settle"][0].amount == run.held
    assert wallet(merchant).balance == TOKENS - run.held
    assert reconcile_ledger() == []


def test_the_model_named_by_the_answer_is_recorded(llm_endpoint):
    merchant = funded(TOKENS)
    run = create(merchant)
    run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.model == "qwen-plus"
    assert llm_endpoint.stats()["last_request"]["request_id"] == f"{run.pk}:1"
