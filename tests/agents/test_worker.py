"""Runs worked by a real Celery worker (threads pool) over the real Redis broker and PostgreSQL, calling
the Qwen simulator over HTTP: what the task adds to the service (delivery, retries, concurrency, crashes).
"""

import threading
import time

import pytest
from django.db import connection
from django.db import connections as db_connections

from agents.models import Run
from agents.runs import run_create
from agents.sweeper import runs_sweep
from agents.tasks import run_execute
from tests.agents import worker
from tests.agents.worker import (
    SYSTEM,
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

# Fixtures from tests/agents/worker.py (explicit: tests/agents/conftest.py belongs to the llm tests).
broker = worker.broker
celery_worker = worker.celery_worker
fast_retries = worker.fast_retries
worker_process = worker.worker_process

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
    llm_endpoint.fault(["500"] * 5, match=name)
    run = create(merchant, name)

    (run,) = wait_finished(run)

    assert (run.status, run.error_code, run.cost) == ("failed", "provider_error", 0)
    assert llm_endpoint.stats()["requests"] == 3
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
    fast_retries.QWEN_TIMEOUT_SECONDS = 0.3
    merchant = funded(TOKENS)
    name = product_name()
    llm_endpoint.fault(["timeout"] * 3, match=name)
    run = create(merchant, name)

    (run,) = wait_finished(run)

    assert (run.status, run.error_code, run.cost) == ("failed", "timeout", 0)
    assert llm_endpoint.stats()["faults_served"] == {"timeout": 3}
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
    # The test's own connection and the watcher's, plus at most RUN_DB_CONCURRENCY of the worker's.
    assert peak[0] <= 2 + 8, peak[0]
    assert reconcile_ledger() == []


def test_a_worker_killed_mid_call_leaves_the_run_charged_at_most_once_and_no_hold_behind(
    llm_endpoint, worker_process
):
    merchant = funded(TOKENS)
    llm_endpoint.set_latency(10_000)
    env = {"QWEN_BASE_URL": llm_endpoint.base_url, "RUN_DEADLINE_SECONDS": 4, "QWEN_TIMEOUT_SECONDS": 30}
    first = worker_process(**env)
    run = create(merchant)
    wait_for(lambda: llm_endpoint.stats()["in_flight"] >= 1, timeout=30)
    assert Run.objects.get(pk=run.pk).status == "running"

    first.kill()  # SIGKILL: no shutdown, no ack; the call is cut off mid-flight
    llm_endpoint.set_latency(0)
    worker_process(**env)
    run_execute.delay(str(run.pk))  # the unacked message, delivered again: the claim stops it
    run.refresh_from_db()
    wait_for(lambda: runs_sweep()["timed_out"] if run.deadline_at and time.time() > run.deadline_at.timestamp() else 0,
             timeout=20, interval=0.5)  # fmt: skip

    (run,) = wait_finished(run)
    assert (run.status, run.error_code, run.cost) == ("failed", "timed_out", 0)
    assert "settle" not in ledger_of(run)
    assert wallet(merchant).debits_pending == 0
    assert llm_endpoint.stats()["requests"] == 1
    assert reconcile_ledger() == []
