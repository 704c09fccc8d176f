"""Executing a run (the service the Celery task calls) against the Qwen simulator over HTTP.

What a real worker adds (delivery, retries through the broker, crashes) is in test_worker.py; here each
step is called directly so every branch is quick and exact.
"""

import pytest

from agents import llm
from agents.models import Run
from agents.runs.create import run_create
from agents.runs.execute import Outcome, run_claim, run_execute
from agents.runs.settle import run_succeed
from tests.plugins.workers import SYSTEM, charged, funded, ledger_of, listing, product_name, wallet
from wallets.reconcile import reconcile_ledger

pytestmark = pytest.mark.django_db

TOKENS = 1_000_000


def create(merchant, name=None):
    return run_create(merchant=merchant, tool="listing-writer", input=listing(name), actor=SYSTEM)


def execute_until_done(run, max_steps=20):
    """Call the service as each delivered message would, until the run is no longer waiting for a retry.

    A retry's backoff is waited out by moving `not_before` to now: the test shortens the sleep, never the
    number of retries the production default allows.
    """
    outcome = None
    for _ in range(max_steps):
        outcome = run_execute(run_id=run.pk)
        if outcome.status != "retrying":
            break
        Run.objects.filter(pk=run.pk).update(not_before=None)
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


def test_a_busy_model_sends_the_run_back_to_the_queue_for_a_retry_under_a_new_claim(
    llm_endpoint, fast_retries
):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault("429", match=name)

    assert run_execute(run_id=run.pk) == Outcome("retrying")

    waiting = Run.objects.get(pk=run.pk)
    assert (waiting.status, waiting.waiting, waiting.retry_cause, waiting.retries) == (
        "queued",
        "retrying",
        "rate_limited",
        1,
    )
    assert waiting.not_before is not None and waiting.lease_expires_at is None
    assert run_execute(run_id=run.pk) == Outcome("skipped")  # not due yet: an early message does nothing
    Run.objects.filter(pk=run.pk).update(not_before=None)
    assert run_execute(run_id=run.pk) == Outcome("succeeded")

    run.refresh_from_db()
    assert (run.status, run.attempts, run.waiting) == ("succeeded", 2, "")
    assert charged(run) == run.cost and len(ledger_of(run)["settle"]) == 1
    assert llm_endpoint.stats()["requests"] == 2
    assert reconcile_ledger() == []


def test_a_late_answer_under_a_claim_that_moved_on_charges_nothing(llm_endpoint):
    merchant = funded(TOKENS)
    run = create(merchant)
    stale = run_claim(run_id=run.pk)
    # Recovery took the run back (the worker looked dead) and another worker claimed and finished it.
    Run.objects.filter(pk=run.pk).update(status="queued", lease_expires_at=None)
    assert run_execute(run_id=run.pk) == Outcome("succeeded")
    completion = llm.Completion(
        text="{}", input_tokens=10, output_tokens=10, model="qwen-plus", finish_reason="stop"
    )

    assert (
        run_succeed(run=stale, claim=stale.attempts, completion=completion, output={"title": "late"}) is None
    )

    run.refresh_from_db()
    assert run.output["title"] != "late" and len(ledger_of(run)["settle"]) == 1
    assert wallet(merchant).balance == TOKENS - run.cost
    assert reconcile_ledger() == []


@pytest.mark.parametrize(
    ("fault", "code", "words"),
    [
        ("500", "provider_error", "The AI provider kept failing"),
        ("429", "rate_limited", "too busy to answer after 5 tries"),
        ("reset", "connection_error", "The AI provider kept failing"),
    ],
)
def test_a_provider_that_keeps_failing_fails_the_run_after_the_default_retries_naming_the_cause(
    llm_endpoint, fast_retries, settings, fault, code, words
):
    assert settings.QWEN_MAX_RETRIES == 4  # the production default, not a test's
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault([fault] * 10, match=name)

    assert execute_until_done(run) == Outcome("failed")

    assert (run.status, run.cost, run.error_code, run.output) == ("failed", 0, code, None)
    assert words in run.error_message and run.error_message.count("Nothing was charged") == 1
    assert llm_endpoint.stats()["requests"] == 5  # the first call and QWEN_MAX_RETRIES = 4 retries
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
    fast_retries.QWEN_CALL_DEADLINE_SECONDS = 0.3  # a shorter wait; the default is covered in test_worker.py
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault(["timeout"] * 5, match=name)

    assert execute_until_done(run) == Outcome("failed")

    assert (run.status, run.error_code, run.cost) == ("failed", "timeout", 0)
    assert "did not answer in time after 5 tries" in run.error_message
    assert llm_endpoint.stats()["faults_served"] == {"timeout": 5}
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


@pytest.mark.parametrize("fault", ["no-usage", "negative-usage", "zero-usage", "string-usage"])
def test_an_answer_without_usable_usage_is_counted_with_the_tokenizer_and_charged_exactly(
    llm_endpoint, fault
):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault(fault, match=name)

    assert run_execute(run_id=run.pk) == Outcome("succeeded")

    run.refresh_from_db()
    assert run.input_tokens > 0 and run.output_tokens > 0
    assert "counted them with the Qwen tokenizer" in run.usage_note
    assert run.cost == min(
        run.held, run.price.cost(input_tokens=run.input_tokens, output_tokens=run.output_tokens)
    )
    assert charged(run) == run.cost and wallet(merchant).balance == TOKENS - run.cost
    assert reconcile_ledger() == []


def test_fractional_usage_is_rounded_up_to_whole_tokens_then_priced(llm_endpoint):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault("float-usage", match=name)

    assert run_execute(run_id=run.pk) == Outcome("succeeded")

    run.refresh_from_db()
    assert run.usage_note == ""
    assert run.cost == run.price.cost(input_tokens=run.input_tokens, output_tokens=run.output_tokens)
    assert reconcile_ledger() == []


def test_an_answer_with_a_nul_character_is_stored_without_it(llm_endpoint):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault("nul", match=name)

    assert run_execute(run_id=run.pk) == Outcome("succeeded")

    run.refresh_from_db()
    assert "\x00" not in str(run.output) and run.cost > 0
    assert reconcile_ledger() == []


def test_a_connection_reset_mid_answer_is_retried_and_the_good_answer_charged_once(
    llm_endpoint, fast_retries
):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault("reset", match=name)

    assert execute_until_done(run) == Outcome("succeeded")
    assert (run.retries, run.retry_cause) == (1, "connection_error")
    assert len(ledger_of(run)["settle"]) == 1
    assert reconcile_ledger() == []


def test_a_429_with_retry_after_waits_at_least_that_long(llm_endpoint):
    merchant = funded(TOKENS)
    name = product_name()
    run = create(merchant, name)
    llm_endpoint.fault("429-retry-after", match=name)

    assert run_execute(run_id=run.pk) == Outcome("retrying")

    waiting = Run.objects.get(pk=run.pk)
    assert (waiting.not_before - waiting.enqueued_at).total_seconds() >= 3


def test_a_bug_during_the_call_fails_the_run_and_releases_its_hold_at_once(llm_endpoint, monkeypatch):
    merchant = funded(TOKENS)
    run = create(merchant)
    monkeypatch.setattr(llm, "complete", lambda **_: 1 / 0)

    assert run_execute(run_id=run.pk) == Outcome("failed")

    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "internal_error")
    assert wallet(merchant).available == TOKENS
    assert reconcile_ledger() == []


def _synchronous_commit() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_on_its_own_leaves_every_later_commit_of_the_connection_waiting_for_the_disk():
    run = create(funded(TOKENS))
    assert run_claim(run_id=run.pk) is not None
    # The claim's own commit skips the wait; a settlement on the same connection must not.
    assert _synchronous_commit() == "on"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_claim_inside_a_callers_transaction_leaves_that_transactions_commit_waiting_for_the_disk():
    from django.db import transaction

    run = create(funded(TOKENS))
    with transaction.atomic():
        assert run_claim(run_id=run.pk) is not None
        assert _synchronous_commit() == "on"
