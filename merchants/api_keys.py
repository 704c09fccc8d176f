"""API keys: create (shown once), revoke, and authenticate a presented key.

A key is `thk_<prefix>.<secret>`. The prefix finds the row with one indexed lookup; the secret is checked
against the stored SHA-256 in constant time. The raw key exists only in the return value of `api_key_create`.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants.exceptions import ApiKeyLimitReached, MerchantError
from merchants.models import ApiKey, Merchant, User

KEY_SCHEME = "thk_"
PREFIX_BYTES = 4  # 8 hex characters: enough to tell keys apart, not enough to guess anything
SECRET_BYTES = 32  # 256 random bits
# last_used_at is a hint for the dashboard, not an audit log: one write a minute per key at most.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyNotFound(MerchantError):
    pass


class CreatedKey(NamedTuple):
    api_key: ApiKey
    raw_key: str  # shown to the merchant once, never stored


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(
    *, merchant: Merchant, name: str, created_by: User | None = None, monthly_token_budget: int | None = None
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
    return api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key `raw_key` names, with its merchant, or None. Touches last_used_at (coarsely)."""
    if not raw_key.startswith(KEY_SCHEME) or "." not in raw_key or len(raw_key) > 200:
        return None
    prefix = raw_key[len(KEY_SCHEME) :].split(".", 1)[0]
    api_key = ApiKey.objects.select_related("merchant").filter(prefix=prefix, revoked_at__isnull=True).first()
    if api_key is None or not hmac.compare_digest(api_key.hashed_key, hash_key(raw_key)):
        return None
    _touch(api_key)
    return api_key


def _touch(api_key: ApiKey) -> None:
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at > stale:
        return
    # Conditional: of many concurrent requests in the same minute, at most one row update lands.
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now)
    api_key.last_used_at = now


def api_keys_of(*, merchant: Merchant) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(merchant=merchant).select_related("created_by")
