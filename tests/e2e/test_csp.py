"""The dashboard works under its Content-Security-Policy: every page is served with it, and a browser
reports no violation (the `page` fixture fails any test that causes one)."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAGES = ["home", "wallet", "runs", "bulk-listings", "support", "team", "api-keys", "store-profile"]


def test_every_dashboard_page_is_served_with_the_policy_and_runs_without_violations(page, logged_in):
    for name in PAGES:
        response = page.goto(reverse(name))

        assert response is not None and response.status == 200, name
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy, name
        page.wait_for_load_state("networkidle")
    page.goto(reverse("tool", args=["listing-writer"]))
    expect(page.locator("form").first).to_be_visible()


def test_an_injected_inline_script_is_refused_and_reported(page, logged_in, csp_violations):
    page.goto(reverse("home"))

    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injectedRan = true";
            document.head.append(script);
        }"""
    )

    for _ in range(50):  # console events arrive asynchronously: wait up to 5 s for the report
        if csp_violations:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("() => window.injectedRan") is None
    assert any("script-src" in violation for violation in csp_violations), csp_violations
    csp_violations.clear()  # provoked on purpose: the fixture must not fail this test
