"""The per-model rate limiter: exact under concurrency, in Redis across clients, and in-process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis as redis_lib

from agents.llm import ModelBusy, ratelimit
from agents.llm.ratelimit import MemoryBackend, RateLimiter, RedisBackend, Reservation
from tokenhub.redis import redis_client

NOW = 1_900_000_000.25  # a fixed clock: every call lands in one window, so counts are exact


@pytest.fixture
def redis_url(settings) -> str:
    url = settings.REDIS_URL
    if not url:
        pytest.skip("REDIS_URL is not set")
    try:
        redis_lib.Redis.from_url(url).ping()
    except redis_lib.RedisError as exc:
        pytest.skip(f"Redis at {url} is unreachable: {exc}")
    return url


@pytest.fixture
def model(redis_url) -> Iterator[str]:
    """A model name no other test uses, its Redis keys removed afterwards."""
    name = f"qwen-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis_lib.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{ratelimit.KEY_PREFIX}:{{{name}}}:*"):
        client.delete(key)


def redis_limiter(url: str, limits: dict, **options) -> RateLimiter:
    # Each limiter gets its own client and connection pool, as a separate worker process would.
    return RateLimiter(limits, RedisBackend(redis_lib.Redis.from_url(url)), clock=lambda: NOW, **options)


def race(threads: int, attempt: Callable[[int], object]) -> list[object]:
    """Run `attempt` in `threads` threads released at the same instant."""
    barrier = threading.Barrier(threads)
    results: list[object] = [None] * threads

    def run(i: int) -> None:
        barrier.wait()
        results[i] = attempt(i)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


def granted(results: list[object]) -> int:
    return sum(isinstance(r, Reservation) for r in results)


@pytest.mark.redis
def test_requests_per_minute_hold_exactly_when_fifty_clients_race(redis_url, model):
    limiters = [redis_limiter(redis_url, {model: {"rpm": 10}}, per_second=False) for _ in range(50)]
    results = race(50, lambda i: limiters[i].try_acquire(model, 1))
    assert granted(results) == 10
    assert all(isinstance(r, float) and 0 < r <= 60 for r in results if not isinstance(r, Reservation))


@pytest.mark.redis
def test_tokens_per_minute_hold_exactly_when_clients_race(redis_url, model):
    limiters = [redis_limiter(redis_url, {model: {"tpm": 1000}}, per_second=False) for _ in range(30)]
    assert granted(race(30, lambda i: limiters[i].try_acquire(model, 100))) == 10


@pytest.mark.redis
def test_a_refused_call_takes_nothing_from_the_other_limit(redis_url, model):
    limiter = redis_limiter(redis_url, {model: {"rpm": 100, "tpm": 500}}, per_second=False)
    assert isinstance(limiter.try_acquire(model, 400), Reservation)
    assert not isinstance(limiter.try_acquire(model, 200), Reservation)  # refused on tokens...
    assert granted([limiter.try_acquire(model, 100) for _ in range(3)]) == 1  # ...and it used no request


@pytest.mark.redis
def test_the_per_second_window_spreads_a_minutes_budget(redis_url, model):
    limiters = [redis_limiter(redis_url, {model: {"rpm": 120}}) for _ in range(20)]
    assert granted(race(20, lambda i: limiters[i].try_acquire(model, 1))) == 2  # 120 / 60 per second


@pytest.mark.redis
def test_a_call_bigger_than_the_whole_token_budget_runs_alone(redis_url, model):
    limiter = redis_limiter(redis_url, {model: {"tpm": 1000}}, per_second=False)
    assert isinstance(limiter.try_acquire(model, 5000), Reservation)
    assert not isinstance(limiter.try_acquire(model, 1), Reservation)


@pytest.mark.redis
def test_settling_gives_back_the_tokens_a_call_did_not_use(redis_url, model):
    limiter = redis_limiter(redis_url, {model: {"tpm": 1000}}, per_second=False)
    reservation = limiter.try_acquire(model, 900)
    assert isinstance(reservation, Reservation)
    assert not isinstance(limiter.try_acquire(model, 500), Reservation)
    limiter.settle(reservation, used_tokens=300)
    assert isinstance(limiter.try_acquire(model, 500), Reservation)


@pytest.mark.redis
def test_acquire_waits_for_the_next_window_then_proceeds(redis_url, model):
    clock = [NOW]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    backend = RedisBackend(redis_lib.Redis.from_url(redis_url))
    limiter = RateLimiter({model: {"rpm": 60}}, backend, clock=lambda: clock[0], sleep=sleep, max_wait=2)
    limiter.acquire(model, 1)  # 60 rpm allows one call per second
    limiter.acquire(model, 1)
    assert len(sleeps) == 1 and 0.7 <= sleeps[0] <= 0.85  # until the next second (plus jitter)


@pytest.mark.redis
def test_acquire_raises_model_busy_when_the_wait_would_be_too_long(redis_url, model):
    limiter = redis_limiter(redis_url, {model: {"rpm": 1}}, per_second=False, max_wait=2)
    limiter.acquire(model, 1)
    with pytest.raises(ModelBusy) as caught:
        limiter.acquire(model, 1)
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after == pytest.approx(60 - NOW % 60, abs=0.01)  # until the minute ends


def test_the_in_process_limiter_holds_exactly_under_concurrency():
    limiter = RateLimiter(
        {"qwen-plus": {"rpm": 7}}, MemoryBackend(lambda: NOW), clock=lambda: NOW, per_second=False
    )
    assert granted(race(40, lambda i: limiter.try_acquire("qwen-plus", 1))) == 7


def test_a_model_without_limits_is_never_held_back():
    limiter = RateLimiter({"qwen-plus": {"rpm": 1}}, MemoryBackend(), per_second=False)
    assert all(isinstance(limiter.try_acquire("qwen-flash", 10**9), Reservation) for _ in range(100))
    assert not limiter.limits("qwen-flash")


def test_without_a_redis_url_the_limiter_lives_in_the_process(settings):
    settings.REDIS_URL = ""
    settings.QWEN_RATE_LIMITS = {"qwen-max": {"rpm": 1}}
    assert ratelimit.enabled_for("qwen-max")
    ratelimit.acquire("qwen-max", 10, max_wait=0)
    with pytest.raises(ModelBusy):
        ratelimit.acquire("qwen-max", 10, max_wait=0)


def test_with_no_limits_configured_acquire_is_a_no_op(settings):
    settings.QWEN_RATE_LIMITS = {}
    assert not ratelimit.enabled_for("qwen-plus")
    for _ in range(100):
        ratelimit.acquire("qwen-plus", 10**6, max_wait=0)


def test_redis_being_down_lets_calls_through_without_stalling_each_one():
    limiter = RateLimiter({"qwen-plus": {"rpm": 1}}, RedisBackend(redis_client("redis://127.0.0.1:1/0")))
    started = time.monotonic()
    assert all(isinstance(limiter.try_acquire("qwen-plus", 1), Reservation) for _ in range(20))
    assert time.monotonic() - started < 3  # one failed attempt, then a bypass window
