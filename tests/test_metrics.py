"""Recorded metrics (tokenhub/metrics.py): added up in the process, written to Redis by the flusher."""

import socket
import threading
import time

import pytest
import redis
from django.conf import settings
from prometheus_client import CollectorRegistry, generate_latest

from tokenhub import metrics


@pytest.fixture(autouse=True)
def _no_metrics_before():
    metrics.reset()
    yield
    metrics.reset()


def exposition() -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.RecordedCollector())
    return generate_latest(registry).decode()


def in_redis(field: str) -> float | None:
    value = redis.Redis.from_url(settings.REDIS_URL).hget(metrics.HASH, field)
    return None if value is None else float(value)


@pytest.mark.redis
def test_the_flusher_writes_to_redis_within_its_shipped_interval():
    assert settings.METRICS_FLUSH_SECONDS == 1.0
    field = metrics._field("model_calls_total", {"model": "qwen-plus", "outcome": "ok"})

    metrics.incr("model_calls_total", model="qwen-plus", outcome="ok")  # no round trip: the flusher writes it

    deadline = time.monotonic() + 3 * settings.METRICS_FLUSH_SECONDS
    while in_redis(field) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert in_redis(field) == 1.0


def test_a_scrape_shows_this_processs_events_at_once():
    metrics.incr("runs_recovery_total", outcome="recovered")
    metrics.observe("model_latency", 0.7, model="qwen-plus", outcome="ok")

    text = exposition()

    assert 'tokenhub_runs_recovery_total{outcome="recovered"} 1.0' in text
    assert 'tokenhub_model_latency_seconds_bucket{le="1.0",model="qwen-plus",outcome="ok"} 1.0' in text
    assert 'tokenhub_model_latency_seconds_count{model="qwen-plus",outcome="ok"} 1.0' in text


@pytest.mark.redis
def test_events_recorded_by_many_threads_add_up_exactly():
    def record() -> None:
        for _ in range(500):
            metrics.incr("model_retries_total", cause="rate_limited")

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    metrics.flush()

    assert in_redis(metrics._field("model_retries_total", {"cause": "rate_limited"})) == 4_000
    assert 'tokenhub_model_retries_total{cause="rate_limited"} 4000.0' in exposition()


def test_with_redis_unreachable_events_are_kept_and_shown_by_this_process(settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"

    metrics.incr("webhook_events_total", outcome="processed")
    metrics.flush()

    assert 'tokenhub_webhook_events_total{outcome="processed"} 1.0' in exposition()


def test_a_forked_child_does_not_count_its_parents_pending_events_again():
    import os

    metrics.incr("model_retries_total", cause="timeout")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what it would write is only its own
        os.close(read)
        os.write(write, str(sum(metrics._pending.values())).encode())
        os._exit(0)
    os.close(write)
    inherited = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)

    assert inherited == "0"
    assert 'tokenhub_model_retries_total{cause="timeout"} 1.0' in exposition()
