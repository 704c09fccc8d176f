"""API keys are trusted from process memory for a few seconds, yet a revocation answers 401 at once."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import override_settings

from merchants.api_keys import GENERATION_KEY, api_key_authenticate, api_key_create, api_key_revoke
from merchants.models import ApiKey
from tests.api.conftest import client_with, fund
from tests.factories import MerchantFactory
from tokenhub.redis import shared_redis

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    auth = f"{db['USER']}:{db['PASSWORD']}" if db.get("PASSWORD") else db["USER"]
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _revoke_in_another_process(key_id: int, merchant_id: int) -> None:
    code = (
        "import django; django.setup();"
        "from merchants.api_keys import api_key_revoke; from merchants.models import Merchant;"
        f"api_key_revoke(merchant=Merchant.objects.get(pk={merchant_id}), key_id={key_id})"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tokenhub.settings",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "false",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_a_key_seen_once_authenticates_again_without_a_query(django_assert_num_queries):
    merchant = MerchantFactory()
    api_key, raw = api_key_create(merchant=merchant, name="sync")
    assert api_key_authenticate(raw_key=raw) == api_key
    with django_assert_num_queries(0):
        again = api_key_authenticate(raw_key=raw)
    assert again == api_key
    assert again.merchant == merchant
    assert again is not api_key_authenticate(raw_key=raw)  # each request its own instance


def _redis_round_trips(monkeypatch) -> list[int]:
    """Counts what this process sends to Redis: one entry per round trip (a pipeline is one)."""
    from redis.connection import AbstractConnection

    sent: list[int] = []
    real = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(1)
        return real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


def _count_in_redis(api_key: ApiKey) -> int:
    from merchants import rate_limits

    window = int(rate_limits.clock() // rate_limits.WINDOW_SECONDS)
    value = shared_redis(settings.REDIS_URL).get(f"{rate_limits.KEY_PREFIX}key:{api_key.pk}:{window}")
    return int(value or 0)


@pytest.mark.django_db
def test_a_known_key_is_checked_for_revocation_and_counted_in_one_round_trip_to_redis(monkeypatch):
    api_key, raw = api_key_create(merchant=MerchantFactory(), name="sync")
    first = api_key_authenticate(raw_key=raw)
    assert first is not None and first.counted_hit is None  # read from the database: the throttle counts
    sent = _redis_round_trips(monkeypatch)

    again = api_key_authenticate(raw_key=raw)

    assert again == api_key and len(sent) == 1
    assert again.counted_hit is not None and again.counted_hit.count == _count_in_redis(api_key) >= 1


@pytest.mark.django_db
def test_a_request_that_finds_its_cached_key_stale_is_read_again_and_counted_once():
    api_key, raw = api_key_create(merchant=MerchantFactory(), name="sync")
    assert api_key_authenticate(raw_key=raw) is not None
    before = _count_in_redis(api_key)
    shared_redis(settings.REDIS_URL).set(GENERATION_KEY, "changed-by-another-process")

    again = api_key_authenticate(raw_key=raw)

    assert again == api_key and again.counted_hit is not None
    assert again.counted_hit.count == _count_in_redis(api_key) == before + 1


@pytest.mark.django_db
def test_a_wrong_secret_for_a_known_prefix_is_refused_without_asking_redis(monkeypatch):
    _api_key, raw = api_key_create(merchant=MerchantFactory(), name="sync")
    assert api_key_authenticate(raw_key=raw) is not None
    sent = _redis_round_trips(monkeypatch)

    assert api_key_authenticate(raw_key=raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert sent == []


@pytest.mark.django_db
def test_a_wrong_secret_with_a_cached_prefix_is_still_refused():
    _api_key, raw = api_key_create(merchant=MerchantFactory(), name="sync")
    assert api_key_authenticate(raw_key=raw) is not None
    wrong = raw[:-1] + ("A" if raw[-1] != "A" else "B")
    assert api_key_authenticate(raw_key=wrong) is None


@pytest.mark.django_db(transaction=True)
def test_a_key_revoked_by_another_process_answers_401_on_the_next_request():
    merchant = MerchantFactory()
    fund(merchant)
    api_key, raw = api_key_create(merchant=merchant, name="sync")
    api = client_with(raw)
    assert api.get("/api/v1/wallet").status_code == 200
    assert api.get("/api/v1/wallet").status_code == 200  # now answered from this process's cache

    _revoke_in_another_process(api_key.pk, merchant.pk)

    response = api.get("/api/v1/wallet")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.django_db(transaction=True)
def test_a_key_revoked_on_the_dashboard_answers_401_at_once(client):
    from tests.factories import MembershipFactory

    merchant = MerchantFactory()
    fund(merchant)
    api_key, raw = api_key_create(merchant=merchant, name="sync")
    api = client_with(raw)
    assert api.get("/api/v1/wallet").status_code == 200
    client.force_login(MembershipFactory(merchant=merchant, role="owner").user)

    assert client.post(f"/api-keys/{api_key.pk}/revoke/").status_code == 302

    assert api.get("/api/v1/wallet").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_revocation_in_a_transaction_publishes_only_once_it_commits():
    from django.db import transaction

    merchant = MerchantFactory()
    api_key, raw = api_key_create(merchant=merchant, name="sync")
    redis = shared_redis(settings.REDIS_URL)
    before = redis.get(GENERATION_KEY)
    with transaction.atomic():
        api_key_revoke(merchant=merchant, key_id=api_key.pk)
        assert redis.get(GENERATION_KEY) == before  # other processes must not re-read the old row now
    assert redis.get(GENERATION_KEY) != before
    assert api_key_authenticate(raw_key=raw) is None


@pytest.mark.django_db(transaction=True)
def test_editing_the_merchant_drops_its_cached_keys():
    merchant = MerchantFactory(brand_voice="calm")
    _api_key, raw = api_key_create(merchant=merchant, name="sync")
    assert api_key_authenticate(raw_key=raw).merchant.brand_voice == "calm"
    merchant.brand_voice = "playful"
    merchant.save()
    assert api_key_authenticate(raw_key=raw).merchant.brand_voice == "playful"


@pytest.mark.django_db
def test_without_a_working_redis_every_request_asks_the_database(django_assert_num_queries):
    merchant = MerchantFactory()
    fund(merchant)
    api_key, raw = api_key_create(merchant=merchant, name="sync")
    with override_settings(REDIS_URL="redis://127.0.0.1:9/0"):  # nothing listens on port 9
        assert api_key_authenticate(raw_key=raw) == api_key
        with django_assert_num_queries(1):
            assert api_key_authenticate(raw_key=raw) == api_key
        ApiKey.objects.filter(pk=api_key.pk).update(revoked_at="2026-01-01T00:00:00Z")
        assert api_key_authenticate(raw_key=raw) is None


@pytest.mark.django_db
def test_a_read_another_layer_asks_for_is_sent_in_the_known_keys_round_trip(monkeypatch):
    from merchants import api_keys

    def probe(pipe, merchant_id):
        pipe.get(f"test:probe:{merchant_id}")
        return "asked with this"

    monkeypatch.setitem(api_keys._reads_along, "probe", probe)
    merchant = MerchantFactory()
    _api_key, raw = api_key_create(merchant=merchant, name="sync")
    shared_redis(settings.REDIS_URL).set(f"test:probe:{merchant.pk}", "seen", ex=60)
    first = api_key_authenticate(raw_key=raw)
    assert first is not None and "probe" not in first.reads_along  # read from the database: nothing along
    sent = _redis_round_trips(monkeypatch)

    again = api_key_authenticate(raw_key=raw)

    assert len(sent) == 1
    assert again.reads_along["probe"] == api_keys.ReadAlong(asked="asked with this", answer=b"seen")
