"""Adding a member sends an invitation by email, the same whether or not the address has an account."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from merchants.models import Invitation, Membership, User
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _manager(**kwargs):
    membership = MembershipFactory(role="manager", **kwargs)
    client = Client()
    client.force_login(membership.user)
    return membership, client


def _invite(client, email, role="staff"):
    return client.post(reverse("team-member-add"), {"email": email, "role": role}, follow=True)


def _page_text(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_adding_a_member_never_reveals_whether_the_email_has_an_account(mailbox):
    _membership, client = _manager()
    existing = UserFactory(email="has.account@example.com")

    known = _invite(client, existing.email)
    unknown = _invite(client, "no.account@example.com")

    assert _page_text(known).replace(existing.email, "X") == _page_text(unknown).replace(
        "no.account@example.com", "X"
    )
    assert known.status_code == unknown.status_code == 200
    first, second = mailbox.wait_for(existing.email), mailbox.wait_for("no.account@example.com")
    assert str(first["Subject"]) == str(second["Subject"])
    assert not User.objects.filter(email="no.account@example.com").exists()  # nothing made until accepted


def test_an_invitee_sets_their_own_password_and_joins(mailbox):
    membership, client = _manager(merchant__name="Linen & Co")
    _invite(client, "new.person@example.com", role="staff")
    message = mailbox.wait_for("new.person@example.com", subject="invited")
    assert "Linen &amp; Co" in mailbox.html(message) and "Linen & Co" in mailbox.text(message)
    link = mailbox.link(message, "/invitations/")

    invitee = Client()
    page = invitee.get(link)
    assert "Choose a password" in page.content.decode()
    password = "my-own-chosen-passphrase-9"
    response = invitee.post(link, {"password1": password, "password2": password})

    assert response.status_code == 302
    user = User.objects.get(email="new.person@example.com")
    assert user.check_password(password) and user.email_verified
    assert Membership.objects.get(user=user).merchant == membership.merchant
    assert invitee.get(reverse("home")).status_code == 200


def test_an_invitation_link_works_once(mailbox):
    _membership, client = _manager()
    _invite(client, "once@example.com")
    link = mailbox.link(mailbox.wait_for("once@example.com"), "/invitations/")
    Client().post(link, {"password1": "first-chosen-pass-11", "password2": "first-chosen-pass-11"})

    again = Client().post(link, {"password1": "second-chosen-pass-22", "password2": "second-chosen-pass-22"})

    assert again.status_code == 400
    assert "used already" in again.content.decode()
    assert User.objects.get(email="once@example.com").check_password("first-chosen-pass-11")


def test_an_expired_invitation_link_is_refused(mailbox):
    _membership, client = _manager()
    _invite(client, "late@example.com")
    link = mailbox.link(mailbox.wait_for("late@example.com"), "/invitations/")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = Client().get(link)

    assert response.status_code == 400
    assert "expired" in response.content.decode()


def test_someone_with_an_account_logs_in_and_joins_with_their_own_password(mailbox):
    membership, client = _manager()
    existing = UserFactory()
    _invite(client, existing.email, role="manager")
    link = mailbox.link(mailbox.wait_for(existing.email), "/invitations/")

    anonymous = Client().get(link)
    assert "Log in" in anonymous.content.decode() and "password1" not in anonymous.content.decode()
    invitee = Client()
    invitee.post(reverse("login"), {"username": existing.email, "password": PASSWORD})
    invitee.post(link)

    assert Membership.objects.get(user=existing, merchant=membership.merchant).role == "manager"


def test_an_invitation_cannot_be_used_by_another_account(mailbox):
    _membership, client = _manager()
    _invite(client, "meant.for@example.com")
    link = mailbox.link(mailbox.wait_for("meant.for@example.com"), "/invitations/")
    stranger = Client()
    stranger.force_login(UserFactory())

    response = stranger.post(link)

    assert "This invitation is for meant.for@example.com" in response.content.decode()
    assert Invitation.objects.get().accepted_at is None


def test_a_new_invitation_replaces_the_one_sent_before(mailbox):
    _membership, client = _manager()
    _invite(client, "twice@example.com")
    _invite(client, "twice@example.com")
    first, second = mailbox.to("twice@example.com")

    assert Client().get(mailbox.link(first, "/invitations/")).status_code == 400
    assert Client().get(mailbox.link(second, "/invitations/")).status_code == 200


def test_a_manager_withdraws_a_waiting_invitation(mailbox):
    _membership, client = _manager()
    _invite(client, "withdrawn@example.com")
    invitation = Invitation.objects.get()
    assert "withdrawn@example.com" in client.get(reverse("team")).content.decode()

    client.post(reverse("team-invitation-revoke", args=[invitation.pk]))

    assert (
        Client().get(mailbox.link(mailbox.to("withdrawn@example.com")[0], "/invitations/")).status_code == 400
    )


def test_staff_cannot_invite(mailbox):
    staff = MembershipFactory(role="staff")
    client = Client()
    client.force_login(staff.user)

    assert _invite(client, "x@example.com").status_code == 403
    assert mailbox.messages == []
