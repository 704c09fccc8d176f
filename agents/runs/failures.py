"""The failed-run limit: a store whose runs keep failing on its own input is slowed, and told why.

A failed run charges nothing, yet the provider was called (twice, when the answer needed a repair call) and
the operator pays for it. Failures the merchant's input provokes — answers the model could not give in the
tool's format, input the provider's content filter refused, a request the provider rejected — are counted
per store in a sliding window; once RUN_FAILURE_LIMIT of them fell within RUN_FAILURE_WINDOW_SECONDS, new
runs are refused (429 with Retry-After, `rate_limited`, details.reason `failed_runs`) until the oldest
leaves the window. Failures that are ours (the provider busy, a lost worker, a bug, a timeout) never count.
docs/hardening.md states the policy.

Redis holds one sorted set per store, `runs:failed:<merchant id>`, of failure times. Best effort: without
Redis, or while it is down, nothing is counted or refused (a failure then costs what it did before).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from typing import Any

from django.conf import settings
from django.utils.translation import gettext

from merchants.api_keys import ReadAlong, read_along
from tokenhub.errors import RateLimited
from tokenhub.redis import shared_redis

logger = logging.getLogger(__name__)

# Error codes of failures the merchant's input provoked (agents.llm.errors, agents.runs.execute).
MERCHANT_CAUSED = frozenset({"invalid_output", "moderation", "invalid_request", "invalid_input"})
KEY_PREFIX = "runs:failed:"
READ_ALONG = "failed_runs"  # its name among an API key's reads along


class TooManyFailedRuns(RateLimited):
    """Run creation refused while the store's failed-run window is full."""


def failures_key(merchant_id: Any) -> str:
    return f"{KEY_PREFIX}{merchant_id}"


def _redis() -> Any | None:
    return shared_redis(settings.REDIS_URL) if settings.REDIS_URL else None


def run_failure_record(*, merchant_id: Any, code: str) -> None:
    """Count a failed run against its store when its cause was the store's input (call after commit)."""
    if code not in MERCHANT_CAUSED or (client := _redis()) is None:
        return
    window = settings.RUN_FAILURE_WINDOW_SECONDS
    now = time.time()
    key = failures_key(merchant_id)
    try:
        (
            client.pipeline()
            .zadd(key, {uuid.uuid4().hex: now})
            .zremrangebyscore(key, "-inf", now - window)
            .expire(key, math.ceil(window))
            .execute()
        )
    except Exception:
        logger.warning("Could not count a failed run of merchant %s.", merchant_id, exc_info=True)


def _limit_th_newest(pipe: Any, merchant_id: Any) -> int:
    """Queue the read `failed_runs_check` starts with; answers the limit it was asked with."""
    limit = max(settings.RUN_FAILURE_LIMIT, 1)
    pipe.zrange(failures_key(merchant_id), -limit, -limit, withscores=True)
    return limit


def window_read_along() -> None:
    """Send the check's first read in an API key's own Redis round trip (merchants.api_keys.read_along):
    a run created with a key then costs one round trip fewer."""
    read_along(READ_ALONG, _limit_th_newest)


def failed_runs_check(*, merchant_id: Any, read: ReadAlong | None = None) -> None:
    """Raise TooManyFailedRuns while the store's failures in the window reach the limit.

    `read`: the first read, made already in the API key's round trip (ApiKey.reads_along[READ_ALONG]).
    """
    limit = settings.RUN_FAILURE_LIMIT
    if limit <= 0 or (client := _redis()) is None:
        return
    window = settings.RUN_FAILURE_WINDOW_SECONDS
    now = time.time()
    key = failures_key(merchant_id)
    try:
        # One read on every create: the limit-th most recent failure. The window is full exactly when that
        # one fell within it; only then are the failures counted, for the message.
        if read is not None and read.asked == limit:
            oldest = read.answer
        else:
            oldest = client.zrange(key, -limit, -limit, withscores=True)
        if not oldest or oldest[0][1] < now - window:
            return
        count = client.zcount(key, now - window, "+inf")
    except Exception:
        logger.warning("Could not read the failed runs of merchant %s.", merchant_id, exc_info=True)
        return
    # Runs start again once the limit-th most recent failure leaves the window.
    retry_after = max(1, math.ceil(oldest[0][1] + window - now))
    minutes = max(1, round(window / 60))
    raise TooManyFailedRuns(
        gettext(
            "%(count)s of this store's runs failed in the last %(minutes)s minutes because of their input "
            "(the AI model could not answer it in the tool's format, or the provider's content filter "
            "refused it). New runs are paused for %(seconds)s seconds. Check the inputs of the failed runs "
            "on the Runs page before trying again."
        )
        % {"count": count, "minutes": minutes, "seconds": retry_after},
        retry_after=retry_after,
        details={"reason": "failed_runs", "failed_runs": count, "window_seconds": window},
    )
