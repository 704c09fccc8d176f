"""Races, with real threads against real PostgreSQL and Redis: limits and idempotency hold under load."""

import threading
from collections import Counter

import pytest
from django.db import connection
from django.test import override_settings

from agents.models import Run
from merchants import rate_limits
from tests.api.conftest import LISTING, client_with
from wallets.models import Transfer
from wallets.selectors import wallet_balance


def at_once(count: int, work) -> list:
    """Run `work()` in `count` threads released together; their results, in no particular order."""
    barrier = threading.Barrier(count)
    results, lock = [], threading.Lock()

    def worker():
        try:
            barrier.wait()
            result = work()
            with lock:
                results.append(result)
        finally:
            connection.close()  # each thread has its own connection; the test database must be droppable

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == count
    return results


@pytest.mark.redis
def test_of_many_simultaneous_hits_exactly_the_limit_pass_in_redis():
    decisions = at_once(40, lambda: rate_limits.hit("race-test", limit=7).allowed)
    assert Counter(decisions) == {True: 7, False: 33}


@override_settings(REDIS_URL="")
def test_without_redis_the_in_process_limiter_is_exact_too():
    decisions = at_once(40, lambda: rate_limits.hit("race-test-local", limit=7).allowed)
    assert Counter(decisions) == {True: 7, False: 33}


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@override_settings(API_RATE_LIMIT_PER_MINUTE=5)
def test_of_twenty_simultaneous_api_requests_with_a_limit_of_five_exactly_five_pass(funded_merchant, key_for):
    raw = key_for(funded_merchant)
    statuses = at_once(20, lambda: client_with(raw).get("/api/v1/wallet").status_code)
    assert Counter(statuses) == {200: 5, 429: 15}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_requests_with_one_idempotency_key_make_one_run_held_once(funded_merchant, key_for):
    raw = key_for(funded_merchant)

    def create():
        response = client_with(raw).post(
            "/api/v1/runs", LISTING, format="json", HTTP_IDEMPOTENCY_KEY="order-42"
        )
        return response.status_code, response.json()["id"]

    answers = at_once(10, create)

    assert {status for status, _ in answers} == {202}
    assert len({run_id for _, run_id in answers}) == 1
    run = Run.objects.get()
    assert Transfer.objects.filter(kind="hold", wallet__merchant=funded_merchant).count() == 1
    assert wallet_balance(merchant=funded_merchant).held == run.held


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_runs_on_one_key_never_pass_its_monthly_budget(funded_merchant, key_for):
    probe = client_with(key_for(funded_merchant)).post("/api/v1/runs", LISTING, format="json").json()
    raw = key_for(funded_merchant, monthly_token_budget=probe["held"] * 3)

    statuses = at_once(10, lambda: client_with(raw).post("/api/v1/runs", LISTING, format="json").status_code)

    assert Counter(statuses) == {202: 3, 402: 7}
    assert Run.objects.filter(api_key_id__isnull=False).exclude(pk=probe["id"]).count() == 3
