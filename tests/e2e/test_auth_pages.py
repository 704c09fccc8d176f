import pytest
from playwright.sync_api import expect

from merchants.actors import Actor
from tests.factories import PASSWORD, MembershipFactory
from wallets import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_new_merchant_signs_up_and_lands_on_their_dashboard(page, screenshot):
    page.goto("/signup/")
    screenshot(page, "signup")

    page.get_by_label("Store name").fill("Bamboo Goods")
    page.get_by_label("Email").fill("founder@bamboo.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create store").click()

    expect(page.get_by_role("heading", name="Bamboo Goods")).to_be_visible()
    # Its trial credits let it use every tool at once: no "run out" warning.
    expect(page.get_by_test_id("available")).to_have_text("50,000")
    expect(page.get_by_role("alert")).to_have_count(0)
    screenshot(page, "home-new-store")


def test_an_owner_logs_in_and_sees_balance_and_ledger(page, screenshot):
    membership = MembershipFactory(merchant__name="Tea Garden")
    services.promotion_credit(
        wallet=services.wallet_of(merchant=membership.merchant),
        amount=250_000,
        key="grant:e2e",
        actor=Actor.system("test"),
        memo="Welcome tokens",
    )
    page.goto("/login/")
    screenshot(page, "login")

    page.get_by_label("Email").fill(membership.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_test_id("available")).to_have_text("250,000")
    expect(page.get_by_text("Welcome tokens")).to_be_visible()
    screenshot(page, "home-with-balance")


def test_a_wrong_password_shows_an_error_and_stays_on_the_login_page(page):
    membership = MembershipFactory()
    page.goto("/login/")

    page.get_by_label("Email").fill(membership.user.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_text("do not match an account")).to_be_visible()
    expect(page).to_have_url(f"{page.url.split('/login/')[0]}/login/")
