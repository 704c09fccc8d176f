"""API keys: a revoked key stays revoked, and a store has at most API_KEYS_PER_STORE active keys."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from merchants.api_keys import api_key_authenticate, api_key_create, api_key_revoke
from merchants.exceptions import ApiKeyLimitReached, NotAllowed
from merchants.models import ApiKey
from tests.concurrency import run_in_threads
from tests.factories import MembershipFactory, MerchantFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_revoked_key_cannot_be_restored_through_the_model(merchant):
    created = api_key_create(merchant=merchant, name="shop")
    revoked = api_key_revoke(merchant=merchant, key_id=created.api_key.pk)

    revoked.revoked_at = None
    with pytest.raises(NotAllowed):
        revoked.save()

    assert api_key_authenticate(raw_key=created.raw_key) is None


def test_no_admin_field_can_clear_revoked_at(client, merchant):
    created = api_key_create(merchant=merchant, name="shop")
    api_key_revoke(merchant=merchant, key_id=created.api_key.pk)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:merchants_apikey_change", args=[created.api_key.pk])

    form = client.get(url).context["adminform"].form
    client.post(url, {"revoked_at_0": "", "revoked_at_1": "", "monthly_token_budget": ""})

    assert "revoked_at" not in form.fields
    assert ApiKey.objects.get(pk=created.api_key.pk).revoked_at is not None


def test_support_sees_keys_but_cannot_change_them(client, merchant):
    created = api_key_create(merchant=merchant, name="shop")
    agent = UserFactory(is_staff=True)
    agent.groups.add(Group.objects.get(name="Support"))
    client.force_login(agent)

    assert client.get(reverse("admin:merchants_apikey_changelist")).status_code == 200
    response = client.post(
        reverse("admin:merchants_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [created.api_key.pk]},
    )
    assert response.status_code in (200, 302)
    assert ApiKey.objects.get(pk=created.api_key.pk).revoked_at is None


def test_a_store_has_at_most_the_configured_number_of_active_keys(settings, merchant):
    settings.API_KEYS_PER_STORE = 3
    keys = [api_key_create(merchant=merchant, name=f"k{n}") for n in range(3)]

    with pytest.raises(ApiKeyLimitReached, match="3 active API keys"):
        api_key_create(merchant=merchant, name="one too many")
    api_key_revoke(merchant=merchant, key_id=keys[0].api_key.pk)
    api_key_create(merchant=merchant, name="after revoking one")

    assert api_key_create(merchant=MerchantFactory(), name="another store").api_key.pk


def test_the_key_limit_is_a_clear_error_on_the_page(client, settings):
    settings.API_KEYS_PER_STORE = 1
    membership = MembershipFactory(role="owner")
    client.force_login(membership.user)
    client.post(reverse("api-keys"), {"name": "first"})

    response = client.post(reverse("api-keys"), {"name": "second"})

    assert "the most it may have. Revoke a key you no longer use" in response.content.decode()
    assert ApiKey.objects.filter(merchant=membership.merchant).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_keys_created_at_once_never_pass_the_limit(settings):
    settings.API_KEYS_PER_STORE = 3
    merchant = MerchantFactory()

    results = run_in_threads(6, lambda i: api_key_create(merchant=merchant, name=f"k{i}"))

    assert sum(isinstance(r, ApiKeyLimitReached) for r in results) == 3
    assert ApiKey.objects.filter(merchant=merchant).count() == 3
