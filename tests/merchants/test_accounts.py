"""A person's own account: verification on sign-up, password reset, change of email, signed-in browsers."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from merchants.models import User, UserSession
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = {"store_name": "Fern Ceramics", "email": "fern@example.com", "password": "glazed-teapot-blue-31"}


def test_signing_up_works_at_once_and_mails_a_verification_link(client, mailbox):
    client.post(reverse("signup"), SIGNUP)

    home = client.get(reverse("home"))
    assert home.status_code == 200
    assert "Please verify your email address" in home.content.decode()
    message = mailbox.wait_for("fern@example.com", subject="Verify")
    assert message.get_body(preferencelist=("html",)) is not None

    client.get(mailbox.link(message, "/account/verify/"))

    assert User.objects.get(email="fern@example.com").email_verified
    assert "Please verify your email address" not in client.get(reverse("home")).content.decode()


def test_the_verification_link_can_be_sent_again(client, mailbox):
    user = MembershipFactory().user
    client.force_login(user)

    client.post(reverse("email-verify-resend"))

    assert mailbox.wait_for(user.email, subject="Verify")


def test_a_tampered_verification_link_is_refused(client, mailbox):
    client.post(reverse("signup"), SIGNUP)
    link = mailbox.link(mailbox.wait_for("fern@example.com"), "/account/verify/")

    response = client.get(link[:-4] + "xyz/")

    assert response.status_code == 400
    assert not User.objects.get(email="fern@example.com").email_verified


def test_a_forgotten_password_is_reset_through_an_emailed_link(mailbox):
    user = MembershipFactory().user
    browser = Client()
    browser.post(reverse("password_reset"), {"email": user.email.upper()})
    link = mailbox.link(mailbox.wait_for(user.email, subject="Reset"), "/password/reset/")

    form = browser.get(link, follow=True)
    new = "a-freshly-chosen-secret-58"
    done = browser.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}, follow=True)

    assert "Your password is changed" in done.content.decode()
    user.refresh_from_db()
    assert user.check_password(new) and user.email_verified
    assert browser.get(link, follow=True).context["validlink"] is False  # used once, void now


def test_asking_to_reset_an_unknown_address_answers_the_same_and_sends_nothing(mailbox):
    known = MembershipFactory().user
    answers = [
        re.sub(r'"X-CSRFToken": "[^"]+"', "", page.content.decode())
        for page in (
            Client().post(reverse("password_reset"), {"email": email}, follow=True)
            for email in (known.email, "nobody@example.com")
        )
    ]

    assert answers[0] == answers[1]
    assert mailbox.to("nobody@example.com") == []


def test_changing_email_waits_for_the_link_sent_to_the_new_address(client, mailbox):
    user = MembershipFactory().user
    old = user.email
    client.force_login(user)

    client.post(reverse("email-change"), {"new_email": "Moved@Example.com", "password": PASSWORD})
    user.refresh_from_db()
    assert user.email == old
    link = mailbox.link(mailbox.wait_for("moved@example.com", subject="Confirm"), "/account/email/")
    client.post(link)

    user.refresh_from_db()
    assert (user.email, user.email_verified) == ("moved@example.com", True)
    assert mailbox.wait_for(old, subject="changed")
    assert client.post(link).status_code == 400  # once only


def test_changing_email_needs_the_current_password(client, mailbox):
    user = MembershipFactory().user
    client.force_login(user)

    response = client.post(reverse("email-change"), {"new_email": "x@example.com", "password": "wrong"})

    assert "not your current password" in response.content.decode()
    assert mailbox.messages == []


def test_changing_to_a_taken_address_tells_only_that_inbox(client, mailbox):
    user = MembershipFactory().user
    taken = UserFactory(email="taken@example.com")
    client.force_login(user)

    page = client.post(reverse("email-change"), {"new_email": taken.email, "password": PASSWORD}, follow=True)
    free = client.post(
        reverse("email-change"), {"new_email": "free@example.com", "password": PASSWORD}, follow=True
    )

    def said(response):
        return [
            str(m).replace(taken.email, "X").replace("free@example.com", "X")
            for m in response.context["messages"]
        ]

    assert said(page) == said(free)
    assert "already has a Tokenhub account" in mailbox.text(mailbox.wait_for(taken.email))
    user.refresh_from_db()
    assert user.email != taken.email


def test_signed_in_browsers_are_listed_and_one_can_be_logged_out(mailbox):
    user = MembershipFactory().user
    laptop, phone = Client(HTTP_USER_AGENT="Laptop browser"), Client(HTTP_USER_AGENT="Phone browser")
    for browser in (laptop, phone):
        browser.post(reverse("login"), {"username": user.email, "password": PASSWORD})

    page = laptop.get(reverse("account")).content.decode()
    assert "Laptop browser" in page and "Phone browser" in page
    phone_session = UserSession.objects.get(user_agent="Phone browser")
    laptop.post(reverse("session-revoke", args=[phone_session.pk]))

    assert phone.get(reverse("home")).status_code == 302  # sent to log in
    assert laptop.get(reverse("home")).status_code == 200
    assert not UserSession.objects.filter(pk=phone_session.pk).exists()


def test_nobody_ends_another_persons_session(mailbox):
    user, other = MembershipFactory().user, MembershipFactory().user
    theirs = Client()
    theirs.post(reverse("login"), {"username": other.email, "password": PASSWORD})
    mine = Client()
    mine.force_login(user)

    mine.post(reverse("session-revoke", args=[UserSession.objects.get(user=other).pk]))

    assert theirs.get(reverse("home")).status_code == 200
