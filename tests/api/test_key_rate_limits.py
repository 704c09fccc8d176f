"""Each API key has its own requests-per-minute limit; without one it gets the platform default."""

import pytest
from django.test import override_settings

from merchants.api_keys import api_key_create
from merchants.models import ApiKey
from tests.api.conftest import client_with
from tests.factories import MembershipFactory
from tests.test_settings import _settings_of

pytestmark = pytest.mark.django_db


def test_the_shipped_default_lets_one_integration_create_a_hundred_runs_a_second():
    values = _settings_of("API_RATE_LIMIT_PER_MINUTE")
    assert isinstance(values, dict), values.stderr
    assert values["API_RATE_LIMIT_PER_MINUTE"] == 6000


@override_settings(API_RATE_LIMIT_PER_MINUTE=2)
def test_a_key_without_its_own_limit_gets_the_default(funded_merchant):
    api = client_with(api_key_create(merchant=funded_merchant, name="shop").raw_key)
    assert [api.get("/api/v1/wallet").status_code for _ in range(3)] == [200, 200, 429]


@override_settings(API_RATE_LIMIT_PER_MINUTE=2)
def test_a_bulk_key_gets_its_own_higher_limit_and_other_keys_keep_the_default(funded_merchant):
    bulk = client_with(api_key_create(merchant=funded_merchant, name="bulk", rate_limit_per_minute=5).raw_key)
    shop = client_with(api_key_create(merchant=funded_merchant, name="shop").raw_key)
    assert [bulk.get("/api/v1/wallet").status_code for _ in range(6)] == [200] * 5 + [429]
    assert [shop.get("/api/v1/wallet").status_code for _ in range(3)] == [200, 200, 429]


@override_settings(API_RATE_LIMIT_PER_MINUTE=2)
def test_wrong_secrets_sent_with_a_keys_prefix_never_spend_its_limit(funded_merchant):
    raw = api_key_create(merchant=funded_merchant, name="shop").raw_key
    api = client_with(raw)
    assert api.get("/api/v1/wallet").status_code == 200  # the key is now known to this process
    guess = client_with(raw[:-1] + ("A" if raw[-1] != "A" else "B"))

    assert [guess.get("/api/v1/wallet").status_code for _ in range(5)] == [401] * 5

    assert [api.get("/api/v1/wallet").status_code for _ in range(2)] == [200, 429]


def test_a_manager_sets_a_keys_limit_on_the_dashboard_and_the_api_follows_it(client, funded_merchant):
    created = api_key_create(merchant=funded_merchant, name="bulk")
    client.force_login(MembershipFactory(merchant=funded_merchant, role="manager").user)
    api = client_with(created.raw_key)
    assert api.get("/api/v1/wallet").status_code == 200  # cached by this process from now on

    response = client.post(f"/api-keys/{created.api_key.pk}/rate-limit/", {"rate_limit_per_minute": "2"})

    assert response.status_code == 302
    assert ApiKey.objects.get().rate_limit_per_minute == 2
    assert [api.get("/api/v1/wallet").status_code for _ in range(2)] == [200, 429]  # 1 before + 1 now
    page = client.get("/api-keys/").content.decode()
    assert 'name="rate_limit_per_minute"' in page and 'value="2"' in page


def test_clearing_the_limit_returns_the_key_to_the_default(client, funded_merchant):
    created = api_key_create(merchant=funded_merchant, name="bulk", rate_limit_per_minute=5)
    client.force_login(MembershipFactory(merchant=funded_merchant, role="owner").user)
    client.post(f"/api-keys/{created.api_key.pk}/rate-limit/", {"rate_limit_per_minute": ""})
    assert ApiKey.objects.get().rate_limit_per_minute is None


def test_a_staff_member_cannot_change_a_keys_limit(client, funded_merchant):
    created = api_key_create(merchant=funded_merchant, name="bulk")
    client.force_login(MembershipFactory(merchant=funded_merchant, role="staff").user)
    assert (
        client.post(f"/api-keys/{created.api_key.pk}/rate-limit/", {"rate_limit_per_minute": "9"}).status_code
        == 403
    )
    assert ApiKey.objects.get().rate_limit_per_minute is None


def test_another_merchants_key_cannot_be_changed(client, funded_merchant, other_merchant):
    theirs = api_key_create(merchant=other_merchant, name="theirs")
    client.force_login(MembershipFactory(merchant=funded_merchant, role="owner").user)
    client.post(f"/api-keys/{theirs.api_key.pk}/rate-limit/", {"rate_limit_per_minute": "9"})
    assert ApiKey.objects.get().rate_limit_per_minute is None


def test_a_key_created_with_a_limit_on_the_dashboard_keeps_it(client, funded_merchant):
    client.force_login(MembershipFactory(merchant=funded_merchant, role="owner").user)
    client.post("/api-keys/", {"name": "bulk", "rate_limit_per_minute": "20000"})
    assert ApiKey.objects.get().rate_limit_per_minute == 20000


def test_support_staff_raise_a_keys_limit_in_admin(admin_client, funded_merchant):
    created = api_key_create(merchant=funded_merchant, name="bulk")
    url = f"/admin/merchants/apikey/{created.api_key.pk}/change/"
    assert admin_client.post(url, {"rate_limit_per_minute": "30000"}).status_code == 302
    assert ApiKey.objects.get().rate_limit_per_minute == 30000
