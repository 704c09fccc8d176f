"""API keys: shown once, stored hashed, revocable, created from the dashboard or the command line."""

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from merchants.api_keys import api_key_authenticate, api_key_create, api_key_revoke, key_cache
from merchants.models import ApiKey
from tests.api.conftest import client_with
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_a_key_is_stored_as_its_hash_with_a_visible_prefix(funded_merchant):
    _api_key, raw = api_key_create(merchant=funded_merchant, name="shop sync")
    stored = ApiKey.objects.get()
    assert raw.startswith(f"thk_{stored.prefix}.")
    assert stored.hashed_key == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {value for value in vars(stored).values() if isinstance(value, str)}


def test_a_key_authenticates_only_whole_and_unrevoked(funded_merchant):
    api_key, raw = api_key_create(merchant=funded_merchant, name="k")
    assert api_key_authenticate(raw_key=raw) == api_key
    assert api_key_authenticate(raw_key=raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert api_key_authenticate(raw_key=f"thk_{api_key.prefix}") is None
    api_key_revoke(merchant=funded_merchant, key_id=api_key.pk)
    assert api_key_authenticate(raw_key=raw) is None


def test_last_used_is_written_at_most_once_a_minute(funded_merchant, django_assert_num_queries):
    _api_key, raw = api_key_create(merchant=funded_merchant, name="k")
    api_key_authenticate(raw_key=raw)
    first_use = ApiKey.objects.get().last_used_at
    with django_assert_num_queries(0):  # the key is cached, and there is no UPDATE within the minute
        api_key_authenticate(raw_key=raw)
    assert ApiKey.objects.get().last_used_at == first_use
    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    key_cache.clear()  # two minutes on, the cached entry (API_KEY_CACHE_SECONDS) has long expired
    api_key_authenticate(raw_key=raw)
    assert ApiKey.objects.get().last_used_at > first_use


def test_a_merchant_cannot_revoke_another_merchants_key(funded_merchant, other_merchant):
    api_key, raw = api_key_create(merchant=funded_merchant, name="k")
    with pytest.raises(Exception, match="No API key"):
        api_key_revoke(merchant=other_merchant, key_id=api_key.pk)
    assert api_key_authenticate(raw_key=raw) is not None


def test_create_api_key_prints_the_key_alone_on_its_last_line_and_it_works(funded_merchant):
    out = StringIO()
    call_command("create_api_key", funded_merchant.slug, stdout=out)
    raw = out.getvalue().rstrip("\n").splitlines()[-1]
    assert raw.startswith("thk_") and " " not in raw
    assert client_with(raw).get("/api/v1/wallet").status_code == 200


def test_create_api_key_can_set_a_monthly_budget(funded_merchant):
    call_command("create_api_key", funded_merchant.slug, "--monthly-budget", "5000", stdout=StringIO())
    assert ApiKey.objects.get().monthly_token_budget == 5000


def test_create_api_key_names_an_unknown_store():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="nope"):
        call_command("create_api_key", "nope", stdout=StringIO())


def signed_in(client, merchant, role):
    member = MembershipFactory(merchant=merchant, role=role).user
    client.force_login(member)
    return member


def test_an_owner_creates_a_key_on_the_dashboard_and_sees_it_once(client, funded_merchant):
    signed_in(client, funded_merchant, "owner")
    created = client.post("/api-keys/", {"name": "ERP", "monthly_token_budget": "100000"})
    raw = created.context["created"].raw_key
    assert raw in created.content.decode()
    assert "no-store" in created["Cache-Control"]
    assert ApiKey.objects.get().monthly_token_budget == 100_000
    assert raw not in client.get("/api-keys/").content.decode()
    assert client_with(raw).get("/api/v1/wallet").status_code == 200


def test_a_manager_revokes_a_key_on_the_dashboard(client, funded_merchant):
    api_key, raw = api_key_create(merchant=funded_merchant, name="old")
    signed_in(client, funded_merchant, "manager")
    response = client.post(f"/api-keys/{api_key.pk}/revoke/")
    assert response.status_code == 302
    assert client_with(raw).get("/api/v1/wallet").status_code == 401


def test_staff_members_cannot_manage_keys(client, funded_merchant):
    api_key, _raw = api_key_create(merchant=funded_merchant, name="k")
    signed_in(client, funded_merchant, "staff")
    assert client.get("/api-keys/").status_code == 403
    assert client.post(f"/api-keys/{api_key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.get().revoked_at is None
