"""Headless Debian Chromium driven by Playwright against pytest-django's live server."""

import os
import shutil
from pathlib import Path

import pytest

# The simulator and a real Celery worker, shared with the agents tests.
from tests.agents.conftest import _qwen_simulator_server, llm_endpoint, qwen_simulator  # noqa: F401
from tests.agents.worker import broker, celery_worker  # noqa: F401

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


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


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
    from tests.factories import MembershipFactory
    from wallets import services
    from wallets.actors import Actor

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
