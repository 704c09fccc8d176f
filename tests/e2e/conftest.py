"""Headless Debian Chromium driven by Playwright against pytest-django's live server."""

import os
import shutil
from pathlib import Path

import pytest

# The simulator and a real Celery worker, shared with the agents tests.

SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make are still
# synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Debian's chromium for the browser tests (make browser installs it).")
        pytest.skip("needs Debian's chromium: `make browser` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


# Reports every Content-Security-Policy violation as a console error the `page` fixture can see, with
# what was blocked: Chromium's own "Refused to ..." message does not always reach the console API.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline code"}`
    + ` in ${event.sourceFile || event.documentURI}:${event.lineNumber}`);
});
"""


def _is_csp_violation(text: str) -> bool:
    return text.startswith("CSP violation:") or (
        text.startswith("Refused to") and "Content Security Policy" in text
    )


@pytest.fixture
def csp_violations() -> list[str]:
    """The CSP violations the page has reported so far; a test that provokes one on purpose clears it."""
    return []


@pytest.fixture
def page(chromium, live_server, csp_violations):
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
    context.add_init_script(_REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(15_000)

    def on_console(message) -> None:
        if _is_csp_violation(message.text):
            csp_violations.append(message.text)

    page.on("console", on_console)
    yield page
    context.close()
    if csp_violations:
        # Every dashboard page must work under the policy: a violation is a broken page for a real user.
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(dict.fromkeys(csp_violations)))


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def log_in(page):
    """Log a user in through the real login form."""
    from tests.factories import PASSWORD

    def log_in_as(user) -> None:
        page.goto("/login/")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()

    return log_in_as


@pytest.fixture
def logged_in(log_in):
    """An owner of a store with 500,000 tokens and a knowledge base, logged in."""
    from merchants.actors import Actor
    from tests.factories import MembershipFactory
    from wallets import services

    membership = MembershipFactory(
        merchant__name="Bamboo Goods",
        merchant__knowledge_base=(
            "Shipping: we ship to Canada and the United States; delivery takes 5 to 7 days.\n\n"
            "Returns: unused items can be returned within 30 days."
        ),
    )
    services.promotion_credit(
        wallet=services.wallet_of(merchant=membership.merchant), amount=500_000, key="e2e:fund",
        actor=Actor.system("test"),
    )  # fmt: skip
    log_in(membership.user)
    return membership
