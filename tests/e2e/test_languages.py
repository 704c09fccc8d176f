"""The dashboard in English and Simplified Chinese, on a phone (390 px) and a desktop (1280 px).

Screenshots land in tests/e2e/screenshots/lang-<language>-<width>-<page>.png; they are looked at by a person
(CJK fonts come from fonts-noto-cjk, which `make browser` installs).
"""

import pytest
from playwright.sync_api import expect

from agents.models import Run
from merchants.actors import Actor
from merchants.models import Merchant
from tests.e2e.conftest import _REPORT_CSP_VIOLATIONS, _is_csp_violation
from tests.factories import PASSWORD, MembershipFactory
from wallets import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SYSTEM = Actor.system("test")

# Per language: the browser's locale (its Accept-Language) and words each page shows in it.
LANGUAGES = {
    "en": {
        "locale": "en-US",
        "login": ("Log in to Tokenhub", "Log in"),
        "home": "Available tokens",
        "tool": "Product name",
        "wallet": "Ledger statement",
        "runs": "All tools",
        "switch": "简体中文",
    },
    "zh": {
        "locale": "zh-CN",
        "login": ("登录 Tokenhub", "登录"),
        "home": "可用 Token",
        "tool": "商品名称",
        "wallet": "账单明细",
        "runs": "全部工具",
        "switch": "English",
    },
}
WIDTHS = [390, 1280]


@pytest.fixture
def browser_page(chromium, live_server):
    """A page in a browser context with the given locale and width; fails on any CSP violation."""
    opened = []
    violations: list[str] = []

    def open_page(*, locale: str, width: int, time_zone: str = "UTC"):
        context = chromium.new_context(
            base_url=live_server.url,
            viewport={"width": width, "height": 860},
            locale=locale,
            timezone_id=time_zone,
        )
        context.add_init_script(_REPORT_CSP_VIOLATIONS)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("console", lambda m: violations.append(m.text) if _is_csp_violation(m.text) else None)
        opened.append(context)
        return page

    yield open_page
    for context in opened:
        context.close()
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(dict.fromkeys(violations))


def _store_with_history():
    membership = MembershipFactory(merchant__name="竹里 Bamboo Goods", merchant__time_zone="Asia/Shanghai")
    merchant = membership.merchant
    wallet = services.wallet_of(merchant=merchant)
    services.promotion_credit(wallet=wallet, amount=1_250_000, key="lang:fund", actor=SYSTEM, memo="Welcome")
    hold = services.hold_create(wallet=wallet, amount=3_000, key="lang:hold", actor=SYSTEM)
    settlement = services.hold_post(hold=hold, amount=1_834, key="lang:settle", actor=SYSTEM)
    Run.objects.create(
        merchant=merchant,
        tool="listing-writer",
        status="succeeded",
        input={"product_name": "亚麻围裙 Linen apron"},
        output={"title": "Linen apron", "bullets": ["Soft"], "description": "A linen apron.", "seo": {}},
        model="qwen-plus",
        held=3_000,
        cost=1_834,
        hold=hold,
        settlement=settlement,
        finished_at=settlement.created_at,
    )
    return membership


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    # Reported, not asserted: the phone layout is issue 15's other half; the words must fit either way.
    if width > viewport:
        print(f"{page.url}: {width}px wide at {viewport}px")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_dashboard_pages_read_in_the_browsers_language(browser_page, screenshot, language, width):
    words = LANGUAGES[language]
    membership = _store_with_history()
    page = browser_page(locale=words["locale"], width=width)
    name = f"lang-{language}-{width}"

    page.goto("/login/")
    heading, button = words["login"]
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    screenshot(page, f"{name}-login")
    page.locator("#id_username").fill(membership.user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name=button, exact=True).click()

    expect(page.locator("main")).to_contain_text(words["home"])
    expect(page.locator("html")).to_have_attribute("lang", "en" if language == "en" else "zh-hans")
    _no_sideways_scroll(page)
    screenshot(page, f"{name}-home")
    for path, key in (("/tools/listing-writer/", "tool"), ("/wallet/", "wallet"), ("/runs/", "runs")):
        page.goto(path)
        expect(page.locator("main")).to_contain_text(words[key])
        _no_sideways_scroll(page)
        screenshot(page, f"{name}-{key}")


@pytest.mark.parametrize("width", WIDTHS)
def test_a_failed_run_reads_in_chinese_with_its_number_on_a_phone_and_a_desktop(
    browser_page, screenshot, width
):
    from agents.runs.messages import gave_up_message

    membership = _store_with_history()
    wallet = services.wallet_of(merchant=membership.merchant)
    hold = services.hold_create(wallet=wallet, amount=3_000, key="lang:failed:hold", actor=SYSTEM)
    release = services.hold_void(hold=hold, key="lang:failed:void", actor=SYSTEM)
    run = Run.objects.create(
        merchant=membership.merchant,
        tool="listing-writer",
        status="failed",
        input={"product_name": "亚麻围裙 Linen apron"},
        model="qwen-plus",
        held=3_000,
        hold=hold,
        settlement=release,
        error_code="timeout",
        error_message=gave_up_message("timeout", 5),
        finished_at=release.created_at,
    )
    page = browser_page(locale="zh-CN", width=width)
    page.goto("/login/")
    page.locator("#id_username").fill(membership.user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.locator("main")).to_contain_text("可用 Token")

    page.goto(f"/runs/{run.pk}/")

    banner = page.locator(".banner.error")
    expect(banner).to_contain_text("已尝试 5 次")
    expect(banner).not_to_contain_text("did not answer")
    _no_sideways_scroll(page)
    screenshot(page, f"lang-zh-{width}-failed-run")


def test_switching_language_sticks_after_log_out(browser_page, screenshot):
    membership = _store_with_history()
    page = browser_page(locale="zh-CN", width=1280)
    page.goto("/login/")
    expect(page.get_by_role("heading", name="登录 Tokenhub")).to_be_visible()

    page.get_by_test_id("language-switch").get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Log in to Tokenhub")).to_be_visible()
    page.locator("#id_username").fill(membership.user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.locator("main")).to_contain_text("Available tokens")

    page.get_by_test_id("language-switch").get_by_role("button", name="简体中文").first.click()
    expect(page.locator("main")).to_contain_text("可用 Token")
    screenshot(page, "lang-switched-to-zh-home")
    membership.user.refresh_from_db()
    assert membership.user.language == "zh-hans"

    page.goto("/wallet/")
    expect(page.locator("main")).to_contain_text("账单明细")
    page.get_by_role("button", name="退出登录").first.click()
    expect(page.get_by_role("heading", name="登录 Tokenhub")).to_be_visible()


def test_sign_up_takes_the_browsers_time_zone(browser_page):
    page = browser_page(locale="zh-CN", width=390, time_zone="Asia/Shanghai")
    page.goto("/signup/")

    page.locator("#id_store_name").fill("杭州茶园")
    page.locator("#id_email").fill("tea@hangzhou.example")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="开通店铺").click()

    expect(page.locator("main")).to_contain_text("可用 Token")
    assert Merchant.objects.get(name="杭州茶园").time_zone == "Asia/Shanghai"
