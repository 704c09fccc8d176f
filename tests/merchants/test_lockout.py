"""Wrong passwords lock the account being guessed, never the address or anyone else (dashboard and admin)."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.9"


def _login(client, email, password, *, admin=False, ip=ATTACKER):
    url = reverse("admin:login") if admin else reverse("login")
    return client.post(url, {"username": email, "password": password}, REMOTE_ADDR=ip)


def _guess(email, times=5, *, admin=False, ip=ATTACKER):
    client = Client()
    for _ in range(times):
        _login(client, email, "not-the-password", admin=admin, ip=ip)


def _logs_in(email, *, admin=False, ip=ATTACKER) -> bool:
    response = _login(Client(), email, PASSWORD, admin=admin, ip=ip)
    return response.status_code == 302


@pytest.mark.parametrize("admin", [False, True], ids=["dashboard", "admin"])
def test_five_wrong_passwords_for_one_account_never_lock_another(admin, mailbox):
    victim = MembershipFactory().user
    other = MembershipFactory().user
    superuser = UserFactory(is_staff=True, is_superuser=True)

    _guess(victim.email, admin=admin)

    # From the very address the guesses came from, on both log-in pages.
    assert _logs_in(other.email, ip=ATTACKER)
    assert _logs_in(superuser.email, admin=True, ip=ATTACKER)
    assert _logs_in(superuser.email, ip=ATTACKER)
    assert not _logs_in(victim.email, ip="198.51.100.1")


def test_failures_are_recorded_with_the_email_they_were_for(mailbox):
    victim = MembershipFactory().user

    _guess(f"  {victim.email.upper()} ", times=2)

    assert set(AccessAttempt.objects.values_list("username", flat=True)) == {victim.email}


def test_guesses_for_one_account_from_many_addresses_lock_that_account(mailbox):
    victim = MembershipFactory().user

    for n in range(5):
        _guess(victim.email, times=1, ip=f"198.51.100.{n + 10}")

    assert not _logs_in(victim.email, ip="192.0.2.77")
    assert not _logs_in(victim.email, admin=True, ip="192.0.2.78")


def test_the_lockout_page_is_styled_and_says_for_how_long_and_what_to_do(mailbox):
    victim = MembershipFactory().user
    _guess(victim.email)

    response = _login(Client(), victim.email, PASSWORD)

    assert response.status_code == 429
    page = response.content.decode()
    assert "tokenhub.css" in page
    assert "15 minutes" in page
    assert reverse("password_reset") in page
    assert response["Retry-After"] == "900"


def test_the_locked_accounts_owner_is_mailed_a_reset_link_once_and_resetting_unlocks(client, mailbox):
    victim = MembershipFactory().user
    _guess(victim.email, times=8)

    message = mailbox.wait_for(victim.email, subject="paused")
    assert len(mailbox.to(victim.email)) == 1
    assert "15 minutes" in mailbox.text(message)
    link = mailbox.link(message, "/password/reset/")
    form_page = client.get(link, follow=True)
    new_password = "a-brand-new-passphrase-77"
    client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else link,
        {"new_password1": new_password, "new_password2": new_password},
    )

    response = _login(Client(), victim.email, new_password)
    assert response.status_code == 302


def test_support_unlocks_an_account_from_admin(client, mailbox):
    victim = MembershipFactory().user
    agent = UserFactory(is_staff=True)
    agent.groups.add(Group.objects.get(name="Support"))
    _guess(victim.email)
    assert not _logs_in(victim.email, ip="192.0.2.1")

    client.force_login(agent)
    page = client.get(reverse("admin:merchants_user_change", args=[victim.pk]))
    assert "Paused after wrong passwords" in page.content.decode()
    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 200
    response = client.post(
        reverse("admin:merchants_user_changelist"),
        {"action": "unlock_selected", "_selected_action": [victim.pk]},
    )

    assert response.status_code == 302
    assert _logs_in(victim.email, ip="192.0.2.1")
