"""API keys: create (shown once), revoke, and authenticate a presented key.

A key is `thk_<prefix>.<secret>`. The prefix finds the row with one indexed lookup; the secret is checked
against the stored SHA-256 in constant time. The raw key exists only in the return value of `api_key_create`.

Authentication is on every API request, so a key found once (with its merchant) is kept in process memory
for API_KEY_CACHE_SECONDS. Revocation must still answer 401 at once on every process: each request reads one
Redis value (`GENERATION_KEY`, ~0.1 ms against the ~1 ms indexed SELECT with a join it replaces; sent in one
pipeline with the key's rate-limit hit, merchants.rate_limits, and the per-store reads other layers ask to
send along, `read_along`),
and every revocation, key edit or merchant edit replaces it after its commit, so every process drops what it
cached. The generation is read before the database, so an entry can only be tagged with a generation older
than any change it missed. Without Redis, or while it fails, every request asks the database: slower, never
wrong.
"""

import copy
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants import rate_limits
from merchants.exceptions import ApiKeyLimitReached, MerchantError
from merchants.models import ApiKey, Merchant, User
from tokenhub.redis import REDIS_ERRORS, redis_failed, redis_skipped, shared_redis

logger = logging.getLogger(__name__)

KEY_SCHEME = "thk_"
PREFIX_BYTES = 4  # 8 hex characters: enough to tell keys apart, not enough to guess anything
SECRET_BYTES = 32  # 256 random bits
# last_used_at is a hint for the dashboard, not an audit log: one write a minute per key at most.
LAST_USED_RESOLUTION = timedelta(minutes=1)
GENERATION_KEY = "tokenhub:apikeys:generation"
CACHE_MAX_ENTRIES = 10_000


class ApiKeyNotFound(MerchantError):
    pass


class CreatedKey(NamedTuple):
    api_key: ApiKey
    raw_key: str  # shown to the merchant once, never stored


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(
    *,
    merchant: Merchant,
    name: str,
    created_by: User | None = None,
    monthly_token_budget: int | None = None,
    rate_limit_per_minute: int | None = None,
) -> CreatedKey:
    """A new key, shown once. Raises ApiKeyLimitReached when the store has API_KEYS_PER_STORE active keys."""
    name = name.strip() or "API key"
    for _attempt in range(5):
        prefix = secrets.token_hex(PREFIX_BYTES)
        raw_key = f"{KEY_SCHEME}{prefix}.{secrets.token_urlsafe(SECRET_BYTES)}"
        try:
            with transaction.atomic():
                # The merchant's row lock makes two creations at once count one after the other.
                Merchant.objects.select_for_update().filter(pk=merchant.pk).first()
                active = ApiKey.objects.filter(merchant=merchant, revoked_at__isnull=True).count()
                if active >= settings.API_KEYS_PER_STORE:
                    raise ApiKeyLimitReached(
                        _(
                            "This store has %(count)s active API keys, the most it may have. "
                            "Revoke a key you no longer use, then create the new one."
                        )
                        % {"count": active}
                    )
                api_key = ApiKey.objects.create(
                    merchant=merchant,
                    name=name[:80],
                    prefix=prefix,
                    hashed_key=hash_key(raw_key),
                    created_by=created_by,
                    monthly_token_budget=monthly_token_budget,
                    rate_limit_per_minute=rate_limit_per_minute,
                )
        except IntegrityError:  # a prefix collision (1 in 4 billion per existing key): draw again
            continue
        return CreatedKey(api_key=api_key, raw_key=raw_key)
    raise MerchantError("Could not draw a unique API key prefix.")


def api_key_revoke(*, merchant: Merchant, key_id: int) -> ApiKey:
    """Revoke one of the merchant's keys; revoking twice keeps the first revocation time."""
    api_key = api_keys_of(merchant=merchant).filter(pk=key_id).first()
    if api_key is None:
        raise ApiKeyNotFound(f"No API key {key_id}.")
    if api_key.revoked_at is None:
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        api_key.refresh_from_db(fields=["revoked_at"])
        api_keys_changed()
    return api_key


def api_key_set_rate_limit(*, merchant: Merchant, key_id: int, rate_limit_per_minute: int | None) -> ApiKey:
    """Set one of the merchant's keys' requests per minute (None: the platform default)."""
    api_key = api_keys_of(merchant=merchant).filter(pk=key_id).first()
    if api_key is None:
        raise ApiKeyNotFound(f"No API key {key_id}.")
    ApiKey.objects.filter(pk=api_key.pk).update(rate_limit_per_minute=rate_limit_per_minute)
    api_key.rate_limit_per_minute = rate_limit_per_minute
    api_keys_changed()
    return api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key `raw_key` names, with its merchant, or None. Touches last_used_at (coarsely).

    A key this process knows (and whose secret matches) is checked against the revocation generation and
    counted for the rate limit in one Redis round trip; the key then carries `counted_hit`, which the
    throttle decides on instead of counting again. A wrong secret is refused before Redis is asked, so
    guesses at a key never spend its limit.
    """
    if not raw_key.startswith(KEY_SCHEME) or "." not in raw_key or len(raw_key) > 200:
        return None
    prefix = raw_key[len(KEY_SCHEME) :].split(".", 1)[0]
    hashed = hash_key(raw_key)
    counted: rate_limits.Counted | None = None
    reads: dict[str, ReadAlong] = {}
    if (known := key_cache.entry(prefix)) is not None:
        if not hmac.compare_digest(known.api_key.hashed_key, hashed):
            return None  # a key's hash never changes, and a prefix names one key for good
        generation, counted, reads = _generation_and_hit(known.api_key)
        if generation is not None and generation == known.generation:
            mine = _private_copy(known.api_key)
            mine.counted_hit, mine.reads_along = counted, reads
            _touch(mine, known.api_key)
            return mine
    else:
        generation = _generation()
    api_key = ApiKey.objects.select_related("merchant").filter(prefix=prefix, revoked_at__isnull=True).first()
    if api_key is None or not hmac.compare_digest(api_key.hashed_key, hashed):
        return None
    _touch(api_key)
    if generation is not None:
        key_cache.put(prefix, generation, api_key)
        api_key = _private_copy(api_key)
    if counted is not None and known is not None and known.api_key.pk == api_key.pk:
        # Counted and read already, in the round trip that found the cache stale.
        api_key.counted_hit, api_key.reads_along = counted, reads
    return api_key


def _private_copy(api_key: ApiKey) -> ApiKey:
    # Each request gets its own instances: views may set attributes on request.auth or its merchant.
    mine = copy.copy(api_key)
    mine.merchant = copy.copy(api_key.merchant)
    return mine


def _touch(api_key: ApiKey, cached: ApiKey | None = None) -> None:
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at > stale:
        return
    # Conditional: of many concurrent requests in the same minute, at most one row update lands.
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now)
    api_key.last_used_at = now
    if cached is not None:
        cached.last_used_at = now


@dataclass(slots=True)
class _Entry:
    api_key: ApiKey
    generation: bytes
    expires: float


class KeyCache:
    """prefix -> the active key and its merchant, as read at a Redis generation, for a few seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def entry(self, prefix: str) -> _Entry | None:
        """What is cached for `prefix` and not yet expired, at whatever generation it was read."""
        entry = self._entries.get(prefix)
        return None if entry is None or entry.expires < time.monotonic() else entry

    def put(self, prefix: str, generation: bytes, api_key: ApiKey) -> None:
        entry = _Entry(api_key, generation, time.monotonic() + settings.API_KEY_CACHE_SECONDS)
        with self._lock:
            if len(self._entries) >= CACHE_MAX_ENTRIES:
                self._entries.clear()  # simpler than LRU; refilled by one query per active key
            self._entries[prefix] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


key_cache = KeyCache()


def _cache_in_use() -> bool:
    return (
        bool(settings.REDIS_URL)
        and settings.API_KEY_CACHE_SECONDS > 0
        and not redis_skipped(settings.REDIS_URL)
    )


def _generation() -> bytes | None:
    """The current revocation generation, or None: do not use the cache (no Redis, or it failed)."""
    if not _cache_in_use():
        return None
    try:
        value = shared_redis(settings.REDIS_URL).get(GENERATION_KEY)
    except REDIS_ERRORS:
        _cache_failed()
        return None
    return _generation_value(value)


class ReadAlong(NamedTuple):
    """A read a higher layer asked for in the key's round trip: what it queued it with, and the answer."""

    asked: Any
    answer: Any


# Per-store Redis reads a layer above makes on the requests a key authenticates, sent in the key's own
# round trip instead of one more: name -> a function that queues exactly one command for the key's store
# on the pipeline and returns what it asked with (e.g. a limit), kept beside the answer in `ReadAlong`.
_reads_along: dict[str, Callable[[Any, int], Any]] = {}


def read_along(name: str, queue: Callable[[Any, int], Any]) -> None:
    """Have `queue(pipe, merchant_id)` sent with every cached key's round trip; see ApiKey.reads_along."""
    _reads_along[name] = queue


def _generation_and_hit(
    api_key: ApiKey,
) -> tuple[bytes | None, rate_limits.Counted | None, dict[str, ReadAlong]]:
    """The revocation generation, one hit counted for the key's rate limit and the reads along, in one
    round trip. (None, None, {}) when the cache is not in use: the throttle then counts the hit itself."""
    if not _cache_in_use():
        return None, None, {}
    now = rate_limits.clock()
    try:
        pipe = shared_redis(settings.REDIS_URL).pipeline(transaction=False)
        pipe.get(GENERATION_KEY)
        rate_limits.count_in(pipe, rate_limits.key_ident(api_key.pk), now)
        asked = {name: queue(pipe, api_key.merchant_id) for name, queue in _reads_along.items()}
        value, count, _expired, *answers = pipe.execute()
    except REDIS_ERRORS:
        _cache_failed()
        return None, None, {}
    reads = {
        name: ReadAlong(with_, answer) for (name, with_), answer in zip(asked.items(), answers, strict=True)
    }
    return _generation_value(value), rate_limits.Counted(count=count, at=now), reads


def _generation_value(value: Any) -> bytes:
    return value if isinstance(value, bytes) else b"-"


def _cache_failed() -> None:
    redis_failed(settings.REDIS_URL)
    logger.warning("API key cache: Redis unavailable, asking the database", exc_info=True)


def _bump_generation() -> None:
    key_cache.clear()
    if not settings.REDIS_URL:
        return
    try:
        # A random value, not INCR: a counter lost with Redis' data would count the same numbers again.
        shared_redis(settings.REDIS_URL).set(GENERATION_KEY, secrets.token_hex(8))
    except REDIS_ERRORS:
        # Other processes may then trust what they cached for up to API_KEY_CACHE_SECONDS.
        logger.error("API key cache: could not publish a key change to Redis", exc_info=True)


def api_keys_changed(**_signal: Any) -> None:
    """Every process forgets its cached keys once the current transaction commits (also a signal receiver).

    This process forgets at once too: its next request reads the change inside the same transaction.
    """
    key_cache.clear()
    transaction.on_commit(_bump_generation)


def api_keys_of(*, merchant: Merchant) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(merchant=merchant).select_related("created_by")
