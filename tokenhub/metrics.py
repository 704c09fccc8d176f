"""Counters and histograms shared by every process, and the Prometheus exposition at /metrics.

Workers and web processes record events (`incr`, `observe`) into one Redis hash, so the web process that
answers a scrape reports what every worker did, on any host, without prometheus_client's multiprocess
directory. Events are added up in the process and written every METRICS_FLUSH_SECONDS by a background
thread, one pipeline for all of them: recording costs no round trip on a run's path, and a scrape is at most
that much behind another process (its own process's events it always shows). State that lives in the
database (runs by status, tokens held, the oldest queued run) is read at scrape time by the collectors the
apps register, so it is never stale. Without Redis, events are kept
in this process only (the embedded dev mode).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TypedDict, cast

from django.conf import settings
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tokenhub.redis import REDIS_ERRORS, shared_redis

logger = logging.getLogger(__name__)

HASH = "tokenhub:metrics"
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
HELP = {
    "runs_recovery_total": "Runs recovery acted on, by outcome (recovered, requeued, timed_out, ...).",
    "model_retries_total": "Model calls retried because the provider was busy, by cause.",
    "model_calls_total": "Model calls made, by model and outcome.",
    "model_unusable_answers_total": "Answers that did not parse and were asked for again (our cost), by model.",
    "webhook_events_total": "Stripe webhook events received, by outcome.",
}
_local: Counter[str] = Counter()
_local_lock = threading.Lock()


def _field(name: str, labels: dict[str, str]) -> str:
    return name + "|" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


_pending: Counter[str] = Counter()
_pending_lock = threading.Lock()
_flusher_pid: int | None = None


def _add(fields: dict[str, float]) -> None:
    with _pending_lock:
        _pending.update(fields)
    if _flusher_pid != os.getpid():  # none yet, or this process was forked from one that had it
        _flusher_start()


def flush() -> None:
    """Write the events this process has added up to Redis now (the flusher does it every interval)."""
    with _pending_lock:
        fields = dict(_pending)
        _pending.clear()
    if not fields:
        return
    if settings.REDIS_URL:
        try:
            pipe = shared_redis(settings.REDIS_URL).pipeline(transaction=False)
            for field, amount in fields.items():
                pipe.hincrbyfloat(HASH, field, amount)
            pipe.execute()
            return
        except REDIS_ERRORS:
            logger.warning("Could not record metrics in Redis; keeping them in this process.", exc_info=True)
    with _local_lock:
        _local.update(fields)


def _flusher_start() -> None:
    global _flusher_pid
    with _pending_lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
    threading.Thread(target=_flush_forever, name="metrics-flusher", daemon=True).start()


def _flush_forever() -> None:
    while True:
        time.sleep(settings.METRICS_FLUSH_SECONDS)
        try:
            flush()
        except Exception:  # the flusher must outlive any one failure; the events stay counted locally
            logger.exception("Could not flush metrics.")


def _forget_inherited() -> None:
    # A forked child (a prefork pool's worker) starts with a copy of the parent's pending events, which the
    # parent writes itself: counting them here too would count them twice. Its flusher starts on first use.
    global _flusher_pid, _pending_lock
    _pending_lock = threading.Lock()  # the parent's lock may have been held by one of its threads
    _pending.clear()
    _flusher_pid = None


atexit.register(flush)
os.register_at_fork(after_in_child=_forget_inherited)


def counter(name: str, amount: float = 1, **labels: str) -> dict[str, float]:
    """The fields one counter increment adds (for `record`)."""
    return {_field(name, labels): amount}


def histogram(
    name: str, value: float, buckets: Sequence[float] = LATENCY_BUCKETS, **labels: str
) -> dict[str, float]:
    """The fields one histogram observation adds: its bucket counters, sum and count (for `record`)."""
    fields = {_field(f"{name}_bucket", {**labels, "le": str(b)}): 1.0 for b in buckets if value <= b}
    fields[_field(f"{name}_bucket", {**labels, "le": "+Inf"})] = 1.0
    fields[_field(f"{name}_sum", labels)] = value
    fields[_field(f"{name}_count", labels)] = 1.0
    return fields


def record(*parts: dict[str, float]) -> None:
    """Several counters and observations of one event, in one round trip."""
    fields: dict[str, float] = {}
    for part in parts:
        fields.update(part)
    _add(fields)


def incr(name: str, amount: float = 1, **labels: str) -> None:
    record(counter(name, amount, **labels))


def observe(name: str, value: float, buckets: Sequence[float] = LATENCY_BUCKETS, **labels: str) -> None:
    record(histogram(name, value, buckets, **labels))


def _recorded() -> dict[str, float]:
    flush()  # this process's own events, up to now
    values: dict[str, float] = {}
    if settings.REDIS_URL:
        try:
            # The shared client does not decode responses, so the hash comes back as bytes.
            raw = cast("dict[bytes, bytes]", shared_redis(settings.REDIS_URL).hgetall(HASH))
            values = {k.decode(): float(v) for k, v in raw.items()}
        except REDIS_ERRORS:
            logger.warning("Could not read metrics from Redis.", exc_info=True)
    with _local_lock:
        for field, amount in _local.items():
            values[field] = values.get(field, 0.0) + amount
    return values


def _parse(field: str) -> tuple[str, dict[str, str]]:
    name, _, labels = field.partition("|")
    return name, dict(pair.split("=", 1) for pair in labels.split(",") if pair)


class _Series(TypedDict):
    buckets: dict[str | None, float]
    sum: float


class RecordedCollector(Collector):
    """Everything recorded with `incr` and `observe`, as counters and histograms."""

    def collect(self) -> Iterable[Metric]:
        counters: dict[str, list[tuple[dict[str, str], float]]] = {}
        histograms: dict[str, dict[tuple[tuple[str, str], ...], _Series]] = {}
        for field, value in _recorded().items():
            name, labels = _parse(field)
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and name.startswith("model_latency"):
                    base = name[: -len(suffix)]
                    le = labels.pop("le", None)
                    series = histograms.setdefault(base, {}).setdefault(
                        tuple(sorted(labels.items())), {"buckets": {}, "sum": 0.0}
                    )
                    if suffix == "_bucket":
                        series["buckets"][le] = value
                    elif suffix == "_sum":
                        series["sum"] = value
                    break
            else:
                counters.setdefault(name, []).append((labels, value))
        for name, samples in sorted(counters.items()):
            label_names = sorted({key for labels, _ in samples for key in labels})
            family = CounterMetricFamily(
                f"tokenhub_{name.removesuffix('_total')}", HELP.get(name, name), labels=label_names
            )
            for labels, value in samples:
                family.add_metric([labels.get(key, "") for key in label_names], value)
            yield family
        for name, by_labels in sorted(histograms.items()):
            label_names = sorted({key for labels in by_labels for key, _ in labels})
            histogram = HistogramMetricFamily(
                f"tokenhub_{name}_seconds", "Model call latency, by model and outcome.", labels=label_names
            )
            for label_pairs, series in by_labels.items():
                as_dict = dict(label_pairs)
                buckets = series["buckets"]
                ordered = [(str(b), buckets.get(str(b), 0.0)) for b in LATENCY_BUCKETS]
                ordered.append(("+Inf", buckets.get("+Inf", 0.0)))
                histogram.add_metric([as_dict.get(k, "") for k in label_names], ordered, float(series["sum"]))
            yield histogram


_collectors: list[Callable[[], Iterable[Metric]]] = []


def register_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """An app's metrics read at scrape time (from the database), e.g. runs by status."""
    if collect not in _collectors:
        _collectors.append(collect)


class AppCollectors(Collector):
    def collect(self) -> Iterable[Metric]:
        for collect in _collectors:
            yield from collect()


def reset() -> None:
    """Forget every recorded metric (tests)."""
    with _pending_lock:
        _pending.clear()
    with _local_lock:
        _local.clear()
    if settings.REDIS_URL:
        shared_redis(settings.REDIS_URL).delete(HASH)
