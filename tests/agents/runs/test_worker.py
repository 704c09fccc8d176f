"""Runs worked by a real Celery worker (threads pool) over the real Redis broker and PostgreSQL, calling
the Qwen simulator over HTTP: what the task adds to the service (delivery, retries, concurrency, crashes).
"""

import threading
import time

import pytest
from django.db import connection
from django.db import connections as db_connections

from agents.models import Run
from agents.runs.create import run_create
from agents.tasks import run_execute
from tests.plugins.workers import (
    SYSTEM,
    _flush_broker,
    charged,
    funded,
    in_process_worker,
    ledger_of,
    listing,
    product_name,
    wait_finished,
    wait_for,
    wallet,
)
from wallets.reconcile import reconcile_ledger

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

TOKENS = 5_000_000


def create(merchant, name=None, **fields):
    return run_create(merchant=merchant, tool="listing-writer", input=listing(name, **fields), actor=SYSTEM)


def test_a_run_worked_by_a_real_worker_is_charged_exactly_its_usage_and_the_rest_released(
    llm_endpoint, celery_worker
):
    merchant = funded(TOKENS)
    run = create(merchant)

    (run,) = wait_finished(run)

    assert run.status == "succeeded", run.error_message
    cost = run.price.cost(input_tokens=run.input_tokens, output_tokens=run.output_tokens)
    assert run.cost == cost == charged(run)
    assert {kind: len(ts) for kind, ts in ledger_of(run).items()} == {"hold": 1, "settle": 1}
    after = wallet(merchant)
    assert (after.balance, after.debits_pending) == (TOKENS - cost, 0)
    assert reconcile_ledger() == []


def test_a_throttled_call_is_retried_through_the_broker_and_charged_once(
    llm_endpoint, fast_retries, celery_worker
):
    merchant = funded(TOKENS)
    name = product_name()
    llm_endpoint.fault("429", match=name)
    run = create(merchant, name)

    (run,) = wait_finished(run)

    assert (run.status, run.attempts) == ("succeeded", 2)
    assert len(ledger_of(run)["settle"]) == 1 and charged(run) == run.cost
    assert llm_endpoint.stats()["requests"] == 2
    assert reconcile_ledger() == []


def test_a_provider_error_until_retries_run_out_fails_the_run_and_charges_nothing(
    llm_endpoint, fast_retries, celery_worker
):
    merchant = funded(TOKENS)
    name = product_name()
    llm_endpoint.fault(["500"] * 10, match=name)
    run = create(merchant, name)

    (run,) = wait_finished(run)

    assert (run.status, run.error_code, run.cost) == ("failed", "provider_error", 0)
    assert llm_endpoint.stats()["requests"] == 5  # QWEN_MAX_RETRIES = 4, the shipped default
    assert ledger_of(run).keys() == {"hold", "void"}
    assert wallet(merchant).available == TOKENS
    assert reconcile_ledger() == []


def test_a_moderation_refusal_fails_at_once_with_a_single_request(llm_endpoint, fast_retries, celery_worker):
    merchant = funded(TOKENS)
    name = product_name()
    llm_endpoint.fault("moderation", match=name)
    run = create(merchant, name)

    (run,) = wait_finished(run)

    assert (run.status, run.error_code) == ("failed", "moderation")
    assert llm_endpoint.stats()["requests"] == 1
    assert wallet(merchant).available == TOKENS


def test_malformed_answers_fail_the_run_without_storing_any_output(llm_endpoint, fast_retries, celery_worker):
    merchant = funded(TOKENS)
    name = product_name()
    llm_endpoint.fault(["malformed", "malformed"], match=name)
    run = create(merchant, name)

    (run,) = wait_finished(run)

    assert (run.status, run.error_code, run.output) == ("failed", "invalid_output", None)
    assert wallet(merchant).available == TOKENS


def test_a_model_that_times_out_is_retried_then_failed_and_charged_nothing(
    llm_endpoint, fast_retries, celery_worker
):
    fast_retries.QWEN_CALL_DEADLINE_SECONDS = 0.3  # the default deadline: the trickle test below
    merchant = funded(TOKENS)
    name = product_name()
    llm_endpoint.fault(["timeout"] * 5, match=name)
    run = create(merchant, name)

    (run,) = wait_finished(run)

    assert (run.status, run.error_code, run.cost) == ("failed", "timeout", 0)
    assert llm_endpoint.stats()["faults_served"] == {"timeout": 5}
    assert wallet(merchant).available == TOKENS
    assert reconcile_ledger() == []


def test_the_same_task_delivered_twice_calls_the_model_once_and_charges_once(llm_endpoint, celery_worker):
    merchant = funded(TOKENS)
    llm_endpoint.set_latency(300)  # both deliveries arrive while the first is still in its call
    run = create(merchant)
    run_execute.delay(str(run.pk))
    run_execute.delay(str(run.pk))

    (run,) = wait_finished(run)
    time.sleep(0.5)  # let the duplicates finish looking

    assert run.status == "succeeded"
    assert llm_endpoint.stats()["requests"] == 1
    assert len(ledger_of(run)["settle"]) == 1
    assert reconcile_ledger() == []


def _connections_to(db_name: str) -> int:
    with db_connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [db_name])
        return cursor.fetchone()[0]


def test_one_worker_process_keeps_a_hundred_model_calls_in_flight_on_a_few_connections(
    llm_endpoint, broker, settings
):
    settings.RUN_DB_CONCURRENCY = 8
    merchant = funded(TOKENS * 4)
    runs = [create(merchant) for _ in range(110)]
    llm_endpoint.set_latency(5000)
    db_name = connection.settings_dict["NAME"]
    peak = [0]
    done = threading.Event()

    def watch_connections() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _connections_to(db_name))
            time.sleep(0.05)
        connection.close()

    watcher = threading.Thread(target=watch_connections)
    watcher.start()
    try:
        with in_process_worker(concurrency=110):
            finished = wait_finished(*runs, timeout=60)
    finally:
        done.set()
        watcher.join()

    assert all(run.status == "succeeded" for run in finished)
    assert llm_endpoint.stats()["max_in_flight"] >= 100
    # The test's own connection and the watcher's, at most RUN_DB_CONCURRENCY of the worker's run threads,
    # and the heartbeat thread's own (lease renewal must never wait behind runs for a slot).
    assert peak[0] <= 2 + 8 + 1, peak[0]
    assert reconcile_ledger() == []


def _settled_exactly(merchant, runs, start=TOKENS):
    """The wallet moved by exactly the succeeded runs' costs, and nothing is held."""
    spent = sum(r.cost for r in runs if r.status == "succeeded")
    after = wallet(merchant)
    assert (after.balance, after.debits_pending) == (start - spent, 0)
    for run in runs:
        kinds = ledger_of(run)
        assert len(kinds.get("settle", [])) == (1 if run.status == "succeeded" else 0)
    assert reconcile_ledger() == []


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
def test_runs_of_a_sigkilled_worker_are_taken_back_and_succeed_on_a_new_worker(llm_endpoint, worker_process):
    merchant = funded(TOKENS)
    llm_endpoint.set_latency(30_000)
    env = {"QWEN_BASE_URL": llm_endpoint.base_url}
    first = worker_process(concurrency=30, **env)
    runs = [create(merchant) for _ in range(20)]
    wait_for(lambda: llm_endpoint.stats()["in_flight"] >= 20, timeout=60)

    first.kill()  # SIGKILL: no shutdown, no ack, no lease renewal; the calls are cut off mid-flight
    killed_at = time.monotonic()
    llm_endpoint.set_latency(0)
    worker_process(concurrency=30, **env)  # no beat: the workers themselves run recovery

    finished = wait_finished(*runs, timeout=120)
    assert time.monotonic() - killed_at < 120
    succeeded = [r for r in finished if r.status == "succeeded"]
    assert len(succeeded) >= 18, [(r.status, r.error_code) for r in finished]
    assert all(r.recoveries >= 1 for r in succeeded)
    _settled_exactly(merchant, finished)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
def test_queued_runs_whose_broker_messages_were_flushed_all_succeed(llm_endpoint, worker_process, broker):
    merchant = funded(TOKENS)
    runs = [create(merchant) for _ in range(10)]
    _flush_broker()  # Redis restarted or flushed: every queued message is gone
    started = time.monotonic()
    worker_process(QWEN_BASE_URL=llm_endpoint.base_url)

    finished = wait_finished(*runs, timeout=120)
    assert time.monotonic() - started < 120
    assert [r.status for r in finished] == ["succeeded"] * 10
    assert all(r.requeues >= 1 for r in finished)
    _settled_exactly(merchant, finished)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
def test_sigterm_drains_hands_unfinished_runs_back_at_once_and_they_succeed_elsewhere(
    llm_endpoint, worker_process, settings
):
    merchant = funded(TOKENS)
    llm_endpoint.set_latency(50_000)  # longer than the default grace of 20 s
    env = {"QWEN_BASE_URL": llm_endpoint.base_url}
    first = worker_process(concurrency=20, **env)
    runs = [create(merchant) for _ in range(5)]
    wait_for(lambda: llm_endpoint.stats()["in_flight"] >= 5, timeout=60)

    stopped_at = time.monotonic()
    first.proc.terminate()  # SIGTERM, as a deploy sends it
    first.proc.wait(timeout=settings.RUN_SHUTDOWN_GRACE_SECONDS + 20)
    assert time.monotonic() - stopped_at < settings.RUN_SHUTDOWN_GRACE_SECONDS + 20
    handed = list(Run.objects.filter(pk__in=[r.pk for r in runs]))
    assert {(r.status, r.waiting) for r in handed} == {("queued", "handed_back")}

    llm_endpoint.set_latency(0)
    worker_process(**env)
    finished = wait_finished(*runs, timeout=60)
    assert [r.status for r in finished] == ["succeeded"] * 5
    _settled_exactly(merchant, finished)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
def test_a_provider_outage_at_default_settings_fails_the_run_within_ninety_seconds_charging_nothing(
    llm_endpoint, worker_process
):
    merchant = funded(TOKENS)
    name = product_name()
    llm_endpoint.fault(["500"] * 50, match=name)
    worker_process(QWEN_BASE_URL=llm_endpoint.base_url)  # every retry setting at its production default
    started = time.monotonic()
    run = create(merchant, name)

    (run,) = wait_finished(run, timeout=90)
    assert time.monotonic() - started < 90
    assert (run.status, run.error_code, run.cost) == ("failed", "provider_error", 0)
    assert run.error_message.startswith("The AI provider kept failing. Nothing was charged")
    assert llm_endpoint.stats()["faults_served"] == {"500": 5}
    _settled_exactly(merchant, [run])


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.worker
def test_a_provider_that_trickles_its_answer_ends_the_run_within_two_minutes_at_the_default_deadline(
    llm_endpoint, worker_process
):
    merchant = funded(TOKENS)
    name = product_name()
    llm_endpoint.fault(["trickle"] * 5, match=name)
    worker_process(QWEN_BASE_URL=llm_endpoint.base_url)
    started = time.monotonic()
    run = create(merchant, name)

    (run,) = wait_finished(run, timeout=130)
    assert time.monotonic() - started < 120
    assert (run.status, run.error_code, run.cost) == ("failed", "timeout", 0)
    _settled_exactly(merchant, [run])
