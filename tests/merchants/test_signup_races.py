"""Sign-ups racing for one email: exactly one account and store, a form error for the rest, never a 500."""

import pytest
from django.test import Client
from django.urls import reverse

from merchants.models import Membership, Merchant, User
from tests.concurrency import run_in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_ten_concurrent_sign_ups_with_one_email_make_one_account_and_one_store():
    def sign_up(i: int) -> int:
        response = Client().post(
            reverse("signup"),
            {
                "store_name": f"Racing Store {i}",
                "email": "Same@Example.com",
                "password": "swift-otter-river-64",
            },
        )
        return response.status_code

    statuses = run_in_threads(10, sign_up)

    assert sorted(statuses) == [200] * 9 + [302], statuses
    assert User.objects.filter(email__iexact="same@example.com").count() == 1
    assert Merchant.objects.count() == 1
    assert Membership.objects.count() == 1


def test_the_losers_of_a_sign_up_race_see_a_form_error():
    def sign_up(i: int) -> str:
        response = Client().post(
            reverse("signup"),
            {"store_name": "Same Name", "email": "twice@example.com", "password": "swift-otter-river-64"},
        )
        return response.content.decode() if response.status_code == 200 else ""

    pages = [page for page in run_in_threads(4, sign_up) if page]

    assert len(pages) == 3
    assert all("An account with this email already exists" in page for page in pages)
