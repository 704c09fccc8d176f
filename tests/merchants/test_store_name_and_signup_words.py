"""The store's name is edited on the store profile; sign-up errors sit next to the field they are about."""

import pytest
from django.urls import reverse

from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_an_owner_renames_the_store_and_its_slug_stays(client):
    membership = MembershipFactory(role="owner", merchant__name="Bamboo Goods")
    slug = membership.merchant.slug
    client.force_login(membership.user)

    response = client.post(
        reverse("store-profile"),
        {"name": "  Bamboo & Linen Goods ", "brand_voice": "", "default_language": "en", "knowledge_base": "",
         "time_zone": "Asia/Shanghai"},
    )  # fmt: skip

    assert response.status_code == 302
    membership.merchant.refresh_from_db()
    assert (membership.merchant.name, membership.merchant.slug) == ("Bamboo & Linen Goods", slug)
    assert "Bamboo &amp; Linen Goods" in client.get(reverse("home")).content.decode()


def test_a_profile_saved_without_a_name_keeps_the_stores_name(client):
    membership = MembershipFactory(role="manager", merchant__name="Fern Ceramics")
    client.force_login(membership.user)

    client.post(
        reverse("store-profile"),
        {"brand_voice": "Short.", "default_language": "de", "knowledge_base": "", "time_zone": "UTC"},
    )

    membership.merchant.refresh_from_db()
    assert (membership.merchant.name, membership.merchant.brand_voice) == ("Fern Ceramics", "Short.")


def test_the_store_profile_form_labels_the_name_field(client):
    membership = MembershipFactory(role="owner")
    client.force_login(membership.user)
    page = client.get(reverse("store-profile")).content.decode()
    assert "Store name" in page and 'name="name"' in page


def test_a_weak_password_is_explained_under_the_password_field(client):
    response = client.post(
        reverse("signup"), {"store_name": "Fern", "email": "fern@example.com", "password": "fern@example.com"}
    )
    form = response.context["form"]
    assert form.non_field_errors() == []
    assert form.errors["password"]  # Django's validators: too similar, too short, too common
