"""Every dashboard page at a phone's width (390 px) and a laptop's (1280 px), in English and in Chinese:
nothing is wider than the screen, the navigation collapses behind a menu button on the phone, tables stay
inside their card.

The store is seeded with one of everything a page lists (runs of each tool, a failed run, a batch, a
conversation waiting for a person, an API key, a second member) through the services, so each page shows
real rows, long ones included. Screenshots land in tests/e2e/screenshots/layout-<page>-<width>[-zh-CN].png.
"""

import re

import pytest
from playwright.sync_api import expect

from agents import bulk
from agents.conversations import services as conversations
from agents.runs.create import run_create
from agents.runs.execute import run_claim
from agents.runs.settle import run_fail, run_succeed
from merchants.actors import Actor
from merchants.api_keys import api_key_create
from tests.factories import MembershipFactory, UserFactory
from tests.plugins.workers import listing

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

SYSTEM = Actor.system("test")
WIDTHS = (390, 1280)
LONG_NAME = "Hand-stitched organic linen kitchen apron with two deep pockets and adjustable neck strap"


def _completion(text: str = "{}"):
    from agents.llm import Completion

    return Completion(text=text, input_tokens=412, output_tokens=530, model="qwen-plus", finish_reason="stop")


def _succeed(run, output):
    claimed = run_claim(run_id=run.pk)
    return run_succeed(run=claimed, claim=claimed.attempts, completion=_completion(), output=output)


@pytest.fixture
def store(logged_in, broker):
    """The logged-in owner's store with rows on every page; returns the ids the pages need."""
    merchant, user = logged_in.merchant, logged_in.user
    succeeded = _succeed(
        run_create(merchant=merchant, tool="listing-writer", input=listing(LONG_NAME), actor=SYSTEM),
        {
            "title": LONG_NAME,
            "bullets": ["Soft, breathable linen that gets better with every wash"] * 3,
            "description": "A long description " * 30,
            "seo": {"title": "Linen apron", "meta_description": "An apron", "keywords": ["linen", "apron"]},
            "tags": ["linen", "kitchen", "apron"],
        },
    )
    failed = run_create(
        merchant=merchant,
        tool="marketing-copy",
        input={"product_name": "Forbidden gadget", "channel": "ad"},
        actor=SYSTEM,
    )
    claimed = run_claim(run_id=failed.pk)
    run_fail(
        run=claimed,
        claim=claimed.attempts,
        code="moderation",
        message="The AI provider refused this input as inappropriate. Nothing was charged; change the text and try again.",
    )
    conversation, _, bot_run = conversations.conversation_start(
        merchant=merchant, actor=SYSTEM, customer_ref="ana.maria.longname@example.com",
        message="I want to talk to a person about a refund for order 100045.",
    )  # fmt: skip
    _succeed(
        bot_run,
        {
            "reply": "I'm passing this to our team; a person will reply soon.",
            "needs_human": True,
            "sources": [],
        },
    )
    batch = bulk.bulk_create(
        merchant=merchant,
        content=f"product_name,features\n{LONG_NAME},Linen|Pockets\nBamboo spoon,Smooth\n".encode(),
        actor=SYSTEM,
        filename="spring-catalogue-with-a-very-long-file-name.csv",
        created_by=user,
    )
    api_key_create(merchant=merchant, name="Shopify sync (production, eu-west warehouse)", created_by=user)
    MembershipFactory(merchant=merchant, user=UserFactory(email="a.very.long.colleague.address@example.com"))
    return {"run": succeeded.pk, "bot_run": bot_run.pk, "batch": batch.pk, "conversation": conversation.pk}


def dashboard_pages(ids) -> dict[str, str]:
    return {
        "home": "/",
        "listing-writer": "/tools/listing-writer/",
        "marketing-copy": "/tools/marketing-copy/",
        "run": f"/runs/{ids['run']}/",
        "bot-run": f"/runs/{ids['bot_run']}/",
        "runs": "/runs/",
        "bulk": "/bulk/",
        "batch": f"/bulk/{ids['batch']}/",
        "wallet": "/wallet/",
        "api-keys": "/api-keys/",
        "team": "/team/",
        "store": "/store/",
        "support": "/support/",
        "conversation": f"/support/{ids['conversation']}/",
        "account": "/account/",
        "password": "/password/",
        "not-found": "/runs/00000000-0000-0000-0000-000000000000/",
    }


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("language", ["en", "zh-CN"])
@pytest.mark.parametrize("width", WIDTHS)
def test_no_dashboard_page_is_wider_than_the_screen(page, store, screenshot, width, language):
    page.set_viewport_size({"width": width, "height": 844 if width < 500 else 860})
    page.set_extra_http_headers({"Accept-Language": language})  # the user has not picked a language
    suffix = "" if language == "en" else f"-{language}"
    too_wide = {}
    for name, url in dashboard_pages(store).items():
        page.goto(url)
        expect(page.locator("header.topbar")).to_be_visible()
        screenshot(page, f"layout-{name}-{width}{suffix}")
        if (scroll := page_width(page)) > width:
            too_wide[name] = scroll
    assert too_wide == {}, f"pages wider than {width} px in {language}: {too_wide}"
    if language != "en":  # the pages really were in Chinese, not English measured twice
        expect(page.locator("html")).to_have_attribute("lang", re.compile("zh", re.IGNORECASE))


def test_on_a_phone_the_navigation_opens_behind_the_menu_button(page, store, screenshot):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    menu = page.get_by_role("button", name="Menu")
    nav = page.locator("#site-nav")
    expect(nav).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")

    menu.click()
    expect(nav).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("support-inbox-count")).to_have_text("1")
    screenshot(page, "layout-menu-open-390")
    assert page_width(page) <= 390

    nav.get_by_role("link", name="Runs").click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    expect(page.locator("#site-nav")).to_be_hidden()


def test_on_a_laptop_the_navigation_shows_without_a_menu_button(page, store):
    page.goto("/")
    expect(page.locator("#site-nav")).to_be_visible()
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    # QWEN_BASE_URL is the local simulator here: every page says its answers are simulated.
    expect(page.get_by_test_id("simulated-answers")).to_contain_text("Simulated answers")


def test_the_runs_list_shows_tool_names_and_filters_by_tool_and_status(page, store, screenshot):
    page.goto("/runs/")
    rows = page.get_by_test_id("run-row")
    expect(rows).to_have_count(5)  # a listing, a failed copy, the bot's answer, two batch rows
    expect(page.get_by_text("listing-writer", exact=True)).to_have_count(0)
    page.get_by_label("Tool").select_option(label="Marketing copy")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Marketing copy")
    expect(rows.first).to_contain_text("Failed")
    page.get_by_label("Tool").select_option("")
    page.get_by_label("Status").select_option("succeeded")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    screenshot(page, "runs-filtered")


def test_a_bot_run_shows_the_reply_as_a_conversation(page, store, screenshot):
    page.goto(f"/runs/{store['bot_run']}/")
    reply = page.get_by_test_id("bot-reply")
    expect(reply.locator(".bubble.customer")).to_contain_text("talk to a person about a refund")
    expect(reply.locator(".bubble.assistant")).to_contain_text("a person will reply soon")
    expect(reply).to_contain_text("handed this conversation to a person")
    expect(page.locator("pre")).to_have_count(0)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Customer-service bot")
    expect(page.get_by_text("needs_human")).to_have_count(0)
    screenshot(page, "bot-run")


def test_a_missing_page_is_the_styled_404_with_the_navigation(page, store, screenshot):
    response = page.goto("/runs/00000000-0000-0000-0000-000000000000/")
    assert response.status == 404
    expect(page.get_by_test_id("error-page")).to_contain_text("There is no such run in this store.")
    expect(page.locator("#site-nav")).to_be_attached()
    screenshot(page, "not-found")
