import pytest
from django.urls import reverse

from merchants.models import Membership, Merchant, User
from tests.factories import PASSWORD, MembershipFactory
from wallets.models import Account

pytestmark = pytest.mark.django_db


def _signup(client, **overrides):
    data = {"store_name": "Bamboo & Co", "email": "Owner@Example.com", "password": PASSWORD, **overrides}
    return client.post(reverse("signup"), data)


def test_sign_up_creates_the_user_the_store_its_wallet_and_an_owner_membership(client):
    response = _signup(client)

    assert response.status_code == 302
    assert response.url == reverse("home")
    user = User.objects.get(email="owner@example.com")
    merchant = Merchant.objects.get(name="Bamboo & Co")
    assert merchant.slug == "bamboo-co"
    assert Membership.objects.get(user=user, merchant=merchant).role == Membership.Role.OWNER
    # Its paid wallet starts empty; the trial comes as promotional credits (tests/wallets/test_funding.py).
    assert Account.objects.get(merchant=merchant, kind="wallet").available == 0


def test_sign_up_logs_the_new_owner_in_and_shows_their_store(client):
    _signup(client)

    page = client.get(reverse("home"))

    assert page.status_code == 200
    assert "Bamboo &amp; Co" in page.content.decode()


def test_sign_up_with_a_taken_email_changes_nothing(client):
    _signup(client)
    client.logout()

    response = _signup(client, store_name="Another store", email="OWNER@example.com")

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Merchant.objects.count() == 1


def test_sign_up_rejects_a_weak_password(client):
    response = _signup(client, password="12345678")

    assert response.status_code == 200
    assert User.objects.count() == 0


def test_two_stores_with_the_same_name_get_distinct_addresses(client):
    _signup(client)
    client.logout()
    _signup(client, email="second@example.com")

    assert sorted(Merchant.objects.values_list("slug", flat=True)) == ["bamboo-co", "bamboo-co-2"]


def test_an_owner_logs_in_with_email_and_password(client):
    user = MembershipFactory().user

    response = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})

    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200


def test_a_wrong_password_does_not_log_in(client):
    user = MembershipFactory().user

    response = client.post(reverse("login"), {"username": user.email, "password": "wrong-password"})

    assert response.status_code == 200
    assert client.get(reverse("home")).status_code == 302


def test_repeated_wrong_passwords_lock_the_account_out(client):
    user = MembershipFactory().user
    for _ in range(5):
        client.post(reverse("login"), {"username": user.email, "password": "wrong-password"})

    response = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})

    assert response.status_code == 429
    assert client.get(reverse("home")).status_code == 302


def test_log_out_ends_the_session(client):
    user = MembershipFactory().user
    client.force_login(user)

    client.post(reverse("logout"))

    assert client.get(reverse("home")).status_code == 302


def test_the_dashboard_sends_anonymous_visitors_to_log_in(client):
    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
