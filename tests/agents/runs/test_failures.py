"""The failed-run limit: runs that fail on the store's own input are counted, and past the shipped limit
the store's new runs are refused with 429, Retry-After and a reason it can act on."""

import time

import pytest
import redis
from django.conf import settings

from agents.models import Run
from agents.runs import failures
from agents.runs.create import run_create
from agents.runs.execute import Outcome, run_execute
from tests.api.conftest import client_with, error_of
from tests.plugins.workers import SYSTEM, funded, listing, product_name
from wallets.reconcile import reconcile_ledger

pytestmark = [pytest.mark.django_db, pytest.mark.redis]

TOKENS = 10_000_000


@pytest.fixture(autouse=True)
def _no_counted_failures():
    """Merchant ids repeat across test databases: no earlier test's failures may count."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(f"{failures.KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)


def _fail_on_input(merchant, llm_endpoint, capture, fault="malformed"):
    """A run whose answers stay unusable (its own input provoked it): two calls, charged nothing."""
    name = product_name()
    run = run_create(merchant=merchant, tool="listing-writer", input=listing(name), actor=SYSTEM)
    llm_endpoint.fault([fault, fault], match=name)
    with capture(execute=True):
        assert run_execute(run_id=run.pk) == Outcome("failed")
    return run


def test_a_store_whose_runs_keep_failing_on_its_input_is_paused_and_told_why(
    llm_endpoint, django_capture_on_commit_callbacks
):
    merchant = funded(TOKENS)
    other = funded(TOKENS)
    assert settings.RUN_FAILURE_LIMIT == 20 and settings.RUN_FAILURE_WINDOW_SECONDS == 600
    for _ in range(19):
        _fail_on_input(merchant, llm_endpoint, django_capture_on_commit_callbacks)
    api = client_with(_key(merchant))
    assert (
        api.post("/api/v1/runs", {"tool": "listing-writer", "input": listing()}, format="json").status_code
        == 202
    )
    # The 20th failure fills the window.
    _fail_on_input(merchant, llm_endpoint, django_capture_on_commit_callbacks)
    calls = llm_endpoint.stats()["requests"]
    runs = Run.objects.filter(merchant=merchant).count()

    response = api.post("/api/v1/runs", {"tool": "listing-writer", "input": listing()}, format="json")

    error = error_of(response)
    assert response.status_code == 429 and error["code"] == "rate_limited"
    assert error["details"]["reason"] == "failed_runs" and error["details"]["failed_runs"] == 20
    assert 1 <= int(response["Retry-After"]) <= 600
    assert "failed in the last 10 minutes because of their input" in error["message"]
    assert Run.objects.filter(merchant=merchant).count() == runs  # nothing held, no model call
    assert llm_endpoint.stats()["requests"] == calls
    # Another store is not slowed.
    other_api = client_with(_key(other))
    assert (
        other_api.post(
            "/api/v1/runs", {"tool": "listing-writer", "input": listing()}, format="json"
        ).status_code
        == 202
    )
    assert reconcile_ledger() == []


def test_the_pause_ends_when_the_oldest_failure_leaves_the_window(
    llm_endpoint, django_capture_on_commit_callbacks
):
    merchant = funded(TOKENS)
    for _ in range(20):
        _fail_on_input(merchant, llm_endpoint, django_capture_on_commit_callbacks, fault="moderation")
    with pytest.raises(failures.TooManyFailedRuns):
        run_create(merchant=merchant, tool="listing-writer", input=listing(), actor=SYSTEM)
    # Age every counted failure past the window (the clock moves, not the shipped window).
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = failures.failures_key(merchant.pk)
    for member, score in client.zrange(key, 0, -1, withscores=True):
        client.zadd(key, {member: score - 601})

    assert (
        run_create(merchant=merchant, tool="listing-writer", input=listing(), actor=SYSTEM).status == "queued"
    )


def test_failures_that_are_ours_never_count(llm_endpoint, django_capture_on_commit_callbacks):
    merchant = funded(TOKENS)
    for _ in range(3):
        failures.run_failure_record(merchant_id=merchant.pk, code="timed_out")
        failures.run_failure_record(merchant_id=merchant.pk, code="internal_error")
        failures.run_failure_record(merchant_id=merchant.pk, code="model_busy")
    _fail_on_input(merchant, llm_endpoint, django_capture_on_commit_callbacks)

    client = redis.Redis.from_url(settings.REDIS_URL)
    assert client.zcard(failures.failures_key(merchant.pk)) == 1


def _key(merchant) -> str:
    from merchants.api_keys import api_key_create

    return api_key_create(merchant=merchant, name="failures").raw_key


def test_only_the_failures_within_the_window_fill_it():
    merchant = funded(TOKENS)
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = failures.failures_key(merchant.pk)
    now = time.time()
    client.zadd(key, {f"old-{i}": now - 700 - i for i in range(10)})  # left the window, not yet pruned
    client.zadd(key, {f"recent-{i}": now - i for i in range(19)})

    failures.failed_runs_check(merchant_id=merchant.pk)  # 19 within the window: runs go on

    client.zadd(key, {"recent-19": now})
    with pytest.raises(failures.TooManyFailedRuns) as refused:
        failures.failed_runs_check(merchant_id=merchant.pk)
    assert refused.value.details["failed_runs"] == 20


class _WatchedRedis:
    """The shared client, noting each ZRANGE the failed-run check sends on its own."""

    def __init__(self, client, asked: list):
        self._client, self._asked = client, asked

    def zrange(self, *args, **kwargs):
        self._asked.append(args)
        return self._client.zrange(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def _watch_window_reads(monkeypatch) -> list:
    asked: list = []
    real = failures._redis
    monkeypatch.setattr(failures, "_redis", lambda: _WatchedRedis(real(), asked))
    return asked


def test_a_run_created_with_a_known_key_reads_the_window_in_the_keys_own_round_trip(monkeypatch):
    merchant = funded(TOKENS)
    api = client_with(_key(merchant))
    assert api.get("/api/v1/wallet").status_code == 200  # from here on this process knows the key
    asked = _watch_window_reads(monkeypatch)

    response = api.post("/api/v1/runs", {"tool": "listing-writer", "input": listing()}, format="json")

    assert response.status_code == 202
    assert asked == []


def test_a_run_created_without_a_key_reads_the_window_itself(monkeypatch):
    merchant = funded(TOKENS)
    asked = _watch_window_reads(monkeypatch)

    run_create(merchant=merchant, tool="listing-writer", input=listing(), actor=SYSTEM)

    assert asked == [(failures.failures_key(merchant.pk), -20, -20)]


def test_a_window_read_made_under_another_limit_is_read_again():
    from merchants.api_keys import ReadAlong

    merchant = funded(TOKENS)
    limit = settings.RUN_FAILURE_LIMIT
    for _ in range(limit):
        failures.run_failure_record(merchant_id=merchant.pk, code="invalid_output")

    with pytest.raises(failures.TooManyFailedRuns):
        failures.failed_runs_check(merchant_id=merchant.pk, read=ReadAlong(asked=limit + 1, answer=[]))
    # Made under today's limit, the read is trusted: the window was empty when the key's round trip read it.
    failures.failed_runs_check(merchant_id=merchant.pk, read=ReadAlong(asked=limit, answer=[]))
