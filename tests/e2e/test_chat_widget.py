"""The chat widget in headless Chromium on a shop page served from another origin: the launcher, a
visitor's question answered (streamed, cited, charged to the store's wallet), a reload that keeps the
conversation, the hand-over, a staff reply from the dashboard arriving live, and the panel on a phone."""

import functools
import http.server
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents.models import Conversation, Message, Run
from merchants.actors import Actor
from tests.e2e.conftest import _REPORT_CSP_VIOLATIONS
from tests.factories import ArticleFactory
from tests.plugins.workers import charged, wallet
from wallets.reconcile import reconcile_ledger
from widgets import services

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

SHOP_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Bamboo Goods</title>
<style>body{{font-family:Georgia,serif;margin:0;background:#faf7f0}}header{{background:#2f4f2f;color:#fff;padding:18px 28px}}
main{{padding:28px;display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:20px}}
.product{{background:#fff;border:1px solid #ddd;border-radius:8px;padding:16px;height:160px}}</style></head>
<body><header><h1>Bamboo Goods</h1><p>Sustainable kitchenware since 2019</p></header>
<main><div class="product">Bamboo cutting board — $24</div><div class="product">Bamboo spoons (set of 4) — $12</div>
<div class="product">Bamboo dish rack — $39</div></main>
<script src="{src}" async></script></body></html>"""


@pytest.fixture
def shop(tmp_path: Path):
    """A fake shop on its own origin (127.0.0.1 on another port; the dashboard is on localhost)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"

    def publish(widget_src: str) -> str:
        (tmp_path / "index.html").write_text(SHOP_PAGE.format(src=widget_src), encoding="utf-8")
        return f"{origin}/index.html"

    yield origin, publish
    server.shutdown()


@pytest.fixture
def visitor_page(chromium):
    contexts = []

    def open_page(**options):
        context = chromium.new_context(**{"viewport": {"width": 1280, "height": 860}, **options})
        context.add_init_script(_REPORT_CSP_VIOLATIONS)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


def widget_on_shop(live_server, shop, merchant, **settings):
    origin, publish = shop
    widget = services.widget_create(merchant=merchant, origins=[origin], color="#2f7d4f", **settings)
    return widget, publish(f"{live_server.url}/widget/{widget.public_key}.js")


@pytest.mark.worker
def test_a_visitor_on_another_origin_chats_with_the_bot_then_a_person_replies_live(
    page, logged_in, live_server, shop, visitor_page, llm_endpoint, celery_worker, screenshot
):
    merchant = logged_in.merchant
    ArticleFactory(merchant=merchant, title="Shipping", url="https://bamboo.example/shipping",
                   body="We ship to Canada and the United States; delivery takes 5 to 7 days.")  # fmt: skip
    ArticleFactory(merchant=merchant, title="Returns", body="Unused items can be returned within 30 days.")
    _widget, url = widget_on_shop(live_server, shop, merchant)
    spent_before = wallet(merchant).debits_posted
    visitor = visitor_page()

    visitor.goto(url)
    visitor.get_by_test_id("widget-launcher").click()
    expect(visitor.get_by_test_id("widget-notice").first).to_contain_text("How can we help")
    screenshot(visitor, "widget-open")
    visitor.get_by_test_id("widget-input").fill("Do you ship to Canada?")
    visitor.get_by_test_id("widget-send").click()

    expect(visitor.get_by_test_id("widget-message-customer")).to_have_text("Do you ship to Canada?")
    reply = visitor.get_by_test_id("widget-message-assistant")
    expect(reply).to_contain_text("Canada", timeout=30_000)
    expect(reply.get_by_test_id("widget-citations")).to_contain_text("Shipping")
    screenshot(visitor, "widget-bot-reply")
    run = Run.objects.get(tool="customer-service")
    assert run.status == "succeeded" and charged(run) == run.cost > 0
    assert wallet(merchant).debits_posted - spent_before == run.cost

    visitor.reload()
    expect(visitor.get_by_test_id("widget-message-assistant")).to_contain_text(
        "Canada"
    )  # reopened, same chat
    expect(visitor.get_by_test_id("widget-message-customer")).to_have_count(1)
    visitor.get_by_test_id("widget-helpful").click()
    expect(visitor.get_by_test_id("widget-helpful")).to_have_attribute("aria-pressed", "true")
    visitor.get_by_test_id("widget-human").click()
    expect(visitor.get_by_test_id("widget-log")).to_contain_text("A person will reply here soon")
    conversation = Conversation.objects.get()
    assert conversation.status == "needs_human"

    page.goto(f"/support/{conversation.pk}/")
    page.get_by_label("Staff reply").fill("Hi, this is Sam from Bamboo Goods. Canada takes 5 to 7 days.")
    page.get_by_role("button", name="Send reply").click()

    expect(visitor.get_by_test_id("widget-message-staff")).to_contain_text("this is Sam", timeout=30_000)
    expect(visitor.get_by_test_id("widget-log")).to_contain_text("A person has joined")
    screenshot(visitor, "widget-staff-reply")
    assert Message.objects.get(role="assistant").rating.helpful is True
    assert Run.objects.count() == 1  # nothing charged while the person handles it
    assert reconcile_ledger() == []


def test_the_reply_streams_into_the_widget_and_the_panel_fills_a_phone_screen(
    logged_in, live_server, shop, visitor_page, broker, screenshot
):
    from agents.runs import streams
    from agents.runs.settle import run_cancel

    _widget, url = widget_on_shop(live_server, shop, logged_in.merchant, language="zh")
    ArticleFactory(merchant=logged_in.merchant, title="配送", body="我们配送到加拿大。")
    phone = visitor_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)

    phone.goto(url)
    phone.get_by_test_id("widget-launcher").click()
    phone.get_by_test_id("widget-input").fill("你们配送到加拿大吗？")  # noqa: RUF001
    phone.get_by_test_id("widget-send").click()
    expect(phone.get_by_test_id("widget-message-customer")).to_have_count(1)
    # No worker: the run stays queued while we publish what a streaming worker would.
    run = Run.objects.get()
    streams.stream_publish(run.pk, '{"reply": "您好！我们配送到')  # noqa: RUF001
    streams.stream_publish(run.pk, "加拿大，需要")  # noqa: RUF001

    expect(phone.get_by_test_id("widget-live")).to_have_text("您好！我们配送到加拿大，需要")  # noqa: RUF001
    box = phone.locator(".panel").bounding_box()
    assert box is not None and box["width"] == 390
    screenshot(phone, "widget-phone-streaming")
    run_cancel(run=run, actor=Actor.system("test"))
    assert reconcile_ledger() == []


def test_a_page_on_an_origin_the_widget_does_not_list_gets_no_chat(
    logged_in, live_server, shop, visitor_page
):
    widget = services.widget_create(merchant=logged_in.merchant, origins=["https://elsewhere.example"])
    _origin, publish = shop
    url = publish(f"{live_server.url}/widget/{widget.public_key}.js")
    visitor = visitor_page()

    visitor.goto(url)
    visitor.get_by_test_id("widget-launcher").click()
    visitor.get_by_test_id("widget-input").fill("Hello?")
    visitor.get_by_test_id("widget-send").click()

    expect(visitor.get_by_test_id("widget-log")).to_contain_text("Chat is not available right now")
    assert not Conversation.objects.exists()


def test_an_owner_creates_a_widget_adds_an_article_and_reads_the_outcomes(page, logged_in, screenshot):
    page.goto("/support/")
    page.get_by_test_id("support-tabs").get_by_role("link", name="Chat widget").click()
    page.get_by_label("Name").fill("Shop chat")
    page.get_by_label("Websites that may show it").fill("https://bamboo.example")
    page.get_by_role("button", name="Create widget").click()

    expect(page.get_by_test_id("widget-tag")).to_have_value(
        re.compile(r'^<script src="http://.+/widget/pk_.+\.js" async></script>$')
    )
    screenshot(page, "support-chat-widget")

    page.goto("/support/articles/")
    page.get_by_label("Title").fill("Shipping")
    page.get_by_label("Text").fill("We ship to Canada and the United States; delivery takes 5 to 7 days.")
    page.get_by_role("button", name="Add article").click()
    expect(page.get_by_test_id("articles")).to_contain_text("Shipping")
    screenshot(page, "support-articles")

    now = timezone.now()
    for i in range(24):  # a month of conversations: most resolved by the bot, every third handed over
        day = now - timedelta(days=i % 12, hours=30)
        conversation = Conversation.objects.create(
            merchant=logged_in.merchant, created_at=day, handed_over_at=day if i % 3 == 0 else None
        )
        Message.objects.create(conversation=conversation, role="customer", content="Canada?", created_at=day)
        Message.objects.create(conversation=conversation, role="assistant", content="Yes.", created_at=day)
    page.get_by_test_id("support-tabs").get_by_role("link", name="Outcomes").click()
    expect(page.get_by_test_id("outcomes")).to_contain_text("Resolved by the bot")
    expect(page.get_by_test_id("outcomes")).to_contain_text("24")
    expect(page.get_by_test_id("outcomes-chart")).to_be_visible()
    screenshot(page, "support-outcomes")
