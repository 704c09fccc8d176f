"""Per-model request and token limits, shared by every worker process through Redis.

The provider limits each model per account: requests and tokens per minute, and also per second
(per-minute / 60), summed over all our workers. A worker keeping a hundred calls in flight would burst
straight into 429s, so every call first reserves one request and its most tokens (prompt + max_tokens)
here, and gives back what it did not use once the answer's usage is known.

Counting: fixed windows of one minute and one second, keyed by window number. One Lua script checks every
window and only then increments them all, so concurrent workers can never both take the last slot and a
denied call leaves nothing behind. A call bigger than a window's whole token budget is let through when
that window is empty, else it could never run. Window numbers come from the caller's clock: hosts must be
NTP-synced, and skew only matters at a window's edge.

Configured by settings.QWEN_RATE_LIMITS = {"qwen-plus": {"rpm": 15000, "tpm": 5000000}, ...}; a model
not listed is not limited. With REDIS_URL empty (embedded dev mode) the counters live in this process.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings

from agents.llm.errors import ModelBusy
from tokenhub.redis import shared_redis

logger = logging.getLogger(__name__)

DEFAULT_MAX_WAIT_SECONDS = 5.0
BYPASS_SECONDS = 10.0  # after a Redis failure, how long to stop asking it
KEY_PREFIX = "tokenhub:ratelimit"

_LUA_DIR = Path(__file__).resolve().parent
_ACQUIRE_LUA = (_LUA_DIR / "acquire.lua").read_text()
_ADJUST_LUA = (_LUA_DIR / "adjust.lua").read_text()


@dataclass(frozen=True)
class Window:
    seconds: int
    requests: int  # 0 = unlimited
    tokens: int  # 0 = unlimited


@dataclass(frozen=True)
class Reservation:
    model: str
    tokens: int
    token_keys: tuple[str, ...] = field(default=())


def windows_for(limit: Mapping[str, Any], *, per_second: bool = True) -> list[Window]:
    rpm, tpm = int(limit.get("rpm") or 0), int(limit.get("tpm") or 0)
    windows = [Window(60, rpm, tpm)]
    if per_second:  # the provider also enforces per-minute / 60 each second
        windows.append(Window(1, math.ceil(rpm / 60), math.ceil(tpm / 60)))
    return windows


class Backend(Protocol):
    def acquire(self, keys: list[str], tokens: int, args: list[int]) -> int: ...
    def adjust(self, keys: tuple[str, ...], delta: int) -> None: ...


class RedisBackend:
    def __init__(self, client: Any) -> None:
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._adjust = client.register_script(_ADJUST_LUA)

    def acquire(self, keys: list[str], tokens: int, args: list[int]) -> int:
        return int(self._acquire(keys=keys, args=[tokens, *args]))

    def adjust(self, keys: tuple[str, ...], delta: int) -> None:
        self._adjust(keys=list(keys), args=[delta])


class MemoryBackend:
    """The same algorithm for one process (embedded dev mode): a lock makes check-and-increment atomic."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (value, expires at)
        self._clock = clock

    def _get(self, key: str, now: float) -> int:
        value, expires = self._counters.get(key, (0, 0.0))
        return value if expires > now else 0

    def acquire(self, keys: list[str], tokens: int, args: list[int]) -> int:
        now = self._clock()
        with self._lock:
            for i in range(len(keys) // 2):
                req_limit, tok_limit, wait_ms = args[i * 3 : i * 3 + 3]
                if req_limit and self._get(keys[i * 2], now) + 1 > req_limit:
                    return wait_ms
                used = self._get(keys[i * 2 + 1], now)
                if tok_limit and used and used + tokens > tok_limit:
                    return wait_ms
            for i in range(len(keys) // 2):
                expires = now + (args[i * 3 + 2] + 2000) / 1000
                for key, amount in ((keys[i * 2], 1), (keys[i * 2 + 1], tokens)):
                    self._counters[key] = (self._get(key, now) + amount, expires)
            if len(self._counters) > 10_000:  # drop expired windows now and then
                self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
            return 0

    def adjust(self, keys: tuple[str, ...], delta: int) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                value, expires = self._counters.get(key, (0, 0.0))
                if expires > now:
                    self._counters[key] = (max(0, value + delta), expires)


class RateLimiter:
    def __init__(
        self,
        limits: Mapping[str, Mapping[str, Any]],
        backend: Backend,
        *,
        per_second: bool = True,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    ) -> None:
        all_windows = {model: windows_for(limit, per_second=per_second) for model, limit in limits.items()}
        self._windows = {
            model: windows
            for model, windows in all_windows.items()
            if any(w.requests or w.tokens for w in windows)
        }
        self._backend = backend
        self._clock = clock
        self._sleep = sleep
        self.max_wait = max_wait
        self._bypass_until = 0.0  # while Redis is down: let calls through without asking it each time

    def limits(self, model: str) -> bool:
        return model in self._windows

    def try_acquire(self, model: str, tokens: int) -> Reservation | float:
        """A reservation, or the seconds to wait before trying again."""
        windows = self._windows.get(model)
        if not windows or self._clock() < self._bypass_until:
            return Reservation(model, tokens)
        now_ms = int(self._clock() * 1000)
        keys: list[str] = []
        args: list[int] = []
        for w in windows:
            size_ms = w.seconds * 1000
            number = now_ms // size_ms
            # {model} is a Redis Cluster hash tag: every key of one model lands on one slot, as Lua needs.
            base = f"{KEY_PREFIX}:{{{model}}}:{w.seconds}s:{number}"
            keys += [f"{base}:requests", f"{base}:tokens"]
            args += [w.requests, w.tokens, max(1, (number + 1) * size_ms - now_ms)]
        try:
            wait_ms = self._backend.acquire(keys, tokens, args)
        except Exception:  # the limiter protects the provider; Redis being down must not stop all work
            logger.warning(
                "Rate limiter unavailable; calls go through unlimited for %s s.",
                BYPASS_SECONDS,
                exc_info=True,
            )
            self._bypass_until = self._clock() + BYPASS_SECONDS
            return Reservation(model, tokens)
        if wait_ms:
            return wait_ms / 1000
        return Reservation(model, tokens, token_keys=tuple(keys[1::2]))

    def acquire(self, model: str, tokens: int, *, max_wait: float | None = None) -> Reservation:
        """Reserve one request and `tokens` for `model`, waiting up to `max_wait` seconds for room.

        Raises ModelBusy (with `retry_after`) when there is no room within `max_wait`: the task retries
        later instead of holding a worker thread for up to a minute.
        """
        deadline = self._clock() + (self.max_wait if max_wait is None else max_wait)
        while True:
            result = self.try_acquire(model, tokens)
            if isinstance(result, Reservation):
                return result
            # Jitter spreads the waiters out, so a window's reset is not met by a thundering herd.
            wait = result + random.uniform(0, 0.05)  # noqa: S311 - jitter, not security
            if self._clock() + wait > deadline:
                raise ModelBusy(
                    code="rate_limited",
                    detail=f"local rate limit for {model}: no room for {tokens} tokens",
                    retry_after=result,
                )
            self._sleep(wait)

    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Give back the reserved tokens the call did not use (the reservation assumed max_tokens)."""
        delta = used_tokens - reservation.tokens
        if delta and reservation.token_keys:
            try:
                self._backend.adjust(reservation.token_keys, delta)
            except Exception:
                logger.warning("Rate limiter unavailable; could not settle %s.", reservation, exc_info=True)


@lru_cache(maxsize=8)
def _limiter(redis_url: str, limits_json: str, max_wait: float) -> RateLimiter:
    limits = json.loads(limits_json)
    if redis_url:
        backend: Backend = RedisBackend(shared_redis(redis_url))
    else:
        backend = MemoryBackend()
    return RateLimiter(limits, backend, max_wait=max_wait)


def get_limiter() -> RateLimiter:
    """The limiter for the current settings (cached; a settings override in tests gets its own)."""
    return _limiter(
        settings.REDIS_URL or "",
        json.dumps(settings.QWEN_RATE_LIMITS or {}, sort_keys=True),
        settings.QWEN_RATE_LIMIT_MAX_WAIT_SECONDS,
    )


def reset_limiters() -> None:
    """Forget cached limiters and their in-process counters (for tests; Redis counters expire by themselves)."""
    _limiter.cache_clear()


def enabled_for(model: str) -> bool:
    return get_limiter().limits(model)


def acquire(model: str, tokens: int, *, max_wait: float | None = None) -> Reservation:
    """Reserve a call to `model` using up to `tokens` tokens; see RateLimiter.acquire. No-op if unlimited."""
    return get_limiter().acquire(model, tokens, max_wait=max_wait)


def settle(reservation: Reservation, used_tokens: int) -> None:
    get_limiter().settle(reservation, used_tokens)
