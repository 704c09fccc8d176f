"""A new merchant signs up, verifies, resets a forgotten password and invites a colleague who sets their own
password: every step through an email the worker sent to a real local SMTP server, in headless Chromium."""

import re

import pytest
from playwright.sync_api import expect

from merchants.models import Membership, User

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def smtp(smtp_server, settings):
    """Mail goes the production way: committed, enqueued on the broker, sent by the worker over SMTP."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    return smtp_server


def test_sign_up_verify_reset_and_invite_all_through_email(
    page, live_server, smtp, celery_worker, screenshot
):
    page.goto("/signup/")
    page.get_by_label("Store name").fill("Harbor Tea")
    page.get_by_label("Email").fill("ada@harbor.example")
    page.get_by_label("Password").fill("steeped-oolong-harbor-8")
    page.get_by_role("button", name="Create store").click()
    expect(page.get_by_text("Please verify your email address")).to_be_visible()
    screenshot(page, "account-unverified-banner")

    verify = smtp.wait_for("ada@harbor.example", subject="Verify")
    page.goto(smtp.link(verify, "/account/verify/"))
    expect(page.get_by_text("is verified")).to_be_visible()
    expect(page.get_by_text("Please verify your email address")).to_have_count(0)

    page.get_by_role("button", name="Log out").click()
    page.goto("/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("ada@harbor.example")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    reset = smtp.wait_for("ada@harbor.example", subject="Reset")
    page.goto(smtp.link(reset, "/password/reset/"))
    page.locator("#id_new_password1").fill("brewed-again-harbor-19")
    page.locator("#id_new_password2").fill("brewed-again-harbor-19")
    screenshot(page, "account-choose-new-password")
    page.get_by_role("button", name="Save my new password").click()
    expect(page.get_by_role("heading", name="Your password is changed")).to_be_visible()
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Email").fill("ada@harbor.example")
    page.get_by_label("Password").fill("brewed-again-harbor-19")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Harbor Tea")).to_be_visible()

    page.goto("/team/")
    page.get_by_label("Email").fill("grace@harbor.example")
    page.locator("#id_role").select_option("manager")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent to grace@harbor.example")).to_be_visible()
    screenshot(page, "team-invitation-sent")

    invitation = smtp.wait_for("grace@harbor.example", subject="invited")
    assert "Harbor Tea" in smtp.text(invitation) and "password" not in str(invitation["Subject"]).lower()
    colleague = page.context.browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 860}
    )
    other = colleague.new_page()
    other.goto(smtp.link(invitation, "/invitations/"))
    expect(other.get_by_role("heading", name="Join Harbor Tea")).to_be_visible()
    other.locator("#id_password1").fill("grace-picks-her-own-5")
    other.locator("#id_password2").fill("grace-picks-her-own-5")
    screenshot(other, "invitation-accept")
    other.get_by_role("button", name="Create my account and join").click()
    expect(other.get_by_text(re.compile("Welcome to Harbor Tea"))).to_be_visible()
    colleague.close()

    grace = User.objects.get(email="grace@harbor.example")
    assert grace.check_password("grace-picks-her-own-5") and grace.email_verified
    assert Membership.objects.get(user=grace).role == "manager"
