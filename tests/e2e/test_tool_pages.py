"""A merchant runs a tool in the browser: the run is held, worked by a real Celery worker against the
simulator over HTTP, and the page updates itself to the result and the charge."""

import pytest
from playwright.sync_api import expect

from wallets.reconcile import reconcile_ledger

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def test_a_listing_run_updates_itself_to_the_result_and_the_charge(
    page,
    logged_in,
    llm_endpoint,
    celery_worker,
    screenshot,
):
    page.goto("/tools/listing-writer/")
    page.get_by_label("Product name").fill("Bamboo toothbrush 4-pack")
    page.get_by_label("Features").fill("Soft charcoal bristles\nCompostable handle")
    page.get_by_label("Marketplace").select_option("amazon")
    page.get_by_role("button", name="Run listing writer").click()

    expect(page.get_by_test_id("run-status")).to_have_text("Succeeded", timeout=30_000)
    expect(page.get_by_test_id("listing-title")).to_contain_text("Bamboo toothbrush 4-pack")
    expect(page.locator(".output li")).to_have_count(5)
    expect(page.get_by_text("charged")).to_be_visible()
    # The sidebar refreshes itself when the run finishes: the new run is listed, the balance is lower.
    expect(page.get_by_test_id("tool-sidebar")).to_contain_text("Bamboo toothbrush 4-pack")
    expect(page.get_by_test_id("sidebar-available")).not_to_contain_text("500,000")
    screenshot(page, "listing-writer-result")

    page.get_by_role("button", name="Copy").first.click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()

    page.goto("/")
    expect(page.get_by_test_id("used-this-month")).not_to_have_text("0")
    expect(page.locator(".usage-row .bar.listing-writer")).to_have_count(1)
    screenshot(page, "home-after-a-run")
    assert reconcile_ledger() == [], [str(v) for v in reconcile_ledger()]


def test_a_failed_run_says_nothing_was_charged(page, logged_in, llm_endpoint, celery_worker):
    llm_endpoint.fault("moderation", match="Forbidden gadget")
    page.goto("/tools/marketing-copy/")
    page.get_by_label("Product name").fill("Forbidden gadget")
    page.get_by_label("Channel").select_option("ad")
    page.get_by_role("button", name="Run marketing copy").click()

    expect(page.get_by_test_id("run-status")).to_have_text("Failed", timeout=30_000)
    expect(page.get_by_text("Nothing was charged")).to_be_visible()
    page.goto("/wallet/")
    expect(page.get_by_test_id("available")).to_have_text("500,000")
