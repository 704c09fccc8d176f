"""Support staff in admin: the ledger is read-only to everyone, balances move only through the form."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD, UserFactory
from tests.wallets.helpers import SYSTEM, reload
from wallets import bootstrap, services
from wallets.models import Account, AdjustmentRequest, Price, Transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def transfer(wallet):
    return Transfer.objects.filter(wallet=wallet).first()


def _adjust(client, wallet, **data):
    url = reverse("admin:wallets_account_adjust", args=[wallet.pk])
    form = client.get(url).context["form"]
    return client.post(url, {"key": form.initial["key"], "ticket_reference": "", **data})


def test_the_support_group_has_exactly_the_permissions_it_needs():
    granted = {
        (p.content_type.app_label, p.codename) for p in Group.objects.get(name="Support").permissions.all()
    }
    assert {p for p in granted if p[0] == "wallets"} == {
        p for p in bootstrap.SUPPORT_PERMISSIONS if p[0] == "wallets"
    }
    assert not any(
        codename.startswith(("change_", "delete_")) for label, codename in granted if label == "wallets"
    )


def test_support_adjusts_a_balance_with_a_reason_through_the_admin_form(client, wallet, support_user):
    client.force_login(support_user)
    response = _adjust(
        client, wallet, amount="250", reason="Goodwill for a slow run", ticket_reference="T-42"
    )
    assert response.status_code == 302
    transfer = Transfer.objects.get(kind="adjustment")
    assert (transfer.actor_kind, transfer.actor_user_id) == ("staff", support_user.pk)
    assert (transfer.amount, transfer.memo, transfer.reference) == (250, "Goodwill for a slow run", "T-42")
    assert reload(wallet).balance == 1_250


def test_submitting_the_same_adjustment_page_twice_posts_once(client, wallet, support_user):
    client.force_login(support_user)
    url = reverse("admin:wallets_account_adjust", args=[wallet.pk])
    data = {"key": client.get(url).context["form"].initial["key"], "amount": "250", "reason": "Goodwill"}
    client.post(url, data)
    client.post(url, data)
    assert reload(wallet).balance == 1_250


def test_the_adjustment_form_requires_a_reason(client, wallet, support_user):
    client.force_login(support_user)
    response = _adjust(client, wallet, amount="250", reason="  ")
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert reload(wallet).balance == 1_000


def test_an_adjustment_that_would_overdraw_is_refused_in_the_form(client, wallet, support_user):
    client.force_login(support_user)
    response = _adjust(client, wallet, amount="-1001", reason="Too much")
    assert "The wallet has 1,000 tokens available" in str(response.context["form"].non_field_errors())
    assert reload(wallet).balance == 1_000


def test_a_large_adjustment_waits_for_a_second_staff_member_in_admin(
    client, wallet, support_user, second_support_user, settings
):
    settings.ADJUSTMENT_APPROVAL_THRESHOLD = 100
    client.force_login(support_user)
    _adjust(client, wallet, amount="5000", reason="Enterprise credit")
    request = AdjustmentRequest.objects.get()
    changelist = reverse("admin:wallets_adjustmentrequest_changelist")
    approve = {"action": "approve_selected", "_selected_action": [request.pk]}
    client.post(changelist, approve)
    assert reload(wallet).balance == 1_000  # the requester's own approval is refused

    client.force_login(second_support_user)
    client.post(changelist, approve)
    request.refresh_from_db()
    assert (request.status, request.decided_by) == ("approved", second_support_user)
    assert reload(wallet).balance == 6_000
    assert request.transfer.actor_user_id == second_support_user.pk


@pytest.mark.parametrize("who", ["support_user", "superuser"])
@pytest.mark.parametrize("model", ["account", "transfer", "adjustmentrequest"])
def test_nobody_can_add_change_or_delete_ledger_rows_in_admin(client, request, wallet, transfer, who, model):
    client.force_login(request.getfixturevalue(who))
    obj = {"account": wallet, "transfer": transfer}.get(model) or AdjustmentRequest.objects.create(
        wallet=wallet, amount=5, reason="x", requested_by=UserFactory()
    )
    assert client.get(reverse(f"admin:wallets_{model}_change", args=[obj.pk])).status_code == 200  # view only
    assert (
        client.post(reverse(f"admin:wallets_{model}_change", args=[obj.pk]), {"amount": 1}).status_code == 403
    )
    assert client.get(reverse(f"admin:wallets_{model}_delete", args=[obj.pk])).status_code == 403
    assert (
        client.post(reverse(f"admin:wallets_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert client.get(reverse(f"admin:wallets_{model}_add")).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert reload(wallet).balance == 1_000


def test_the_ledger_is_searchable_by_merchant_slug_and_idempotency_key(client, wallet, support_user):
    services.topup_credit(wallet=wallet, amount=5, key="stripe:cs_find_me", actor=SYSTEM)
    client.force_login(support_user)
    changelist = reverse("admin:wallets_transfer_changelist")
    assert client.get(changelist, {"q": "stripe:cs_find_me"}).context["cl"].result_count == 1
    assert client.get(changelist, {"q": wallet.merchant.slug}).context["cl"].result_count == 2
    by_wallet = client.get(changelist, {"wallet__id__exact": wallet.pk})  # the wallet page's "Transfers" link
    assert by_wallet.context["cl"].result_count == 2
    accounts = reverse("admin:wallets_account_changelist")
    assert list(client.get(accounts, {"q": wallet.merchant.slug}).context["cl"].result_list) == [wallet]


def test_a_price_in_effect_is_history_and_a_new_row_replaces_it(client, superuser):
    client.force_login(superuser)
    current = Price.objects.get(model="qwen-plus")
    assert client.post(reverse("admin:wallets_price_change", args=[current.pk]), {}).status_code == 403
    assert (
        client.post(reverse("admin:wallets_price_delete", args=[current.pk]), {"post": "yes"}).status_code
        == 403
    )
    starts = timezone.now() + timedelta(days=1)
    row = {
        "model": "qwen-plus", "input_weight": "1.1", "output_weight": "3.3",
        "effective_from_0": starts.strftime("%Y-%m-%d"), "effective_from_1": starts.strftime("%H:%M:%S"),
    }  # fmt: skip
    assert client.post(reverse("admin:wallets_price_add"), row).status_code == 302
    assert Price.objects.filter(model="qwen-plus").count() == 2


def test_a_new_price_cannot_start_in_the_past(client, superuser):
    client.force_login(superuser)
    row = {"model": "qwen-plus", "input_weight": "1", "output_weight": "3",
           "effective_from_0": "2026-01-02", "effective_from_1": "00:00:00"}  # fmt: skip
    response = client.post(reverse("admin:wallets_price_add"), row)
    assert "effective_from" in response.context["adminform"].form.errors


def test_the_sixth_wrong_admin_password_is_locked_out_even_when_right(client):
    staff = UserFactory(is_staff=True)
    login = reverse("admin:login")
    attempts = [client.post(login, {"username": staff.email, "password": "wrong"}) for _ in range(5)]
    # The first four answer with the form again; the fifth failure reaches AXES_FAILURE_LIMIT and locks.
    assert [r.status_code for r in attempts] == [200, 200, 200, 200, 429]
    assert client.post(login, {"username": staff.email, "password": "wrong"}).status_code == 429
    assert client.post(login, {"username": staff.email, "password": PASSWORD}).status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_ledger_account_cannot_be_created_from_admin_even_by_a_superuser(client, superuser):
    client.force_login(superuser)
    count = Account.objects.count()
    client.post(reverse("admin:wallets_account_add"), {"kind": "wallet", "code": "x"})
    assert Account.objects.count() == count


def test_a_staff_user_outside_support_cannot_adjust(client, wallet):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(reverse("admin:wallets_account_adjust", args=[wallet.pk])).status_code == 403
