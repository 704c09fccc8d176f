"""Provider usage and cost on a run: every model call the provider billed, priced by ProviderPrice."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.llm import Completion
from agents.models import ProviderPrice, Run
from agents.runs.create import run_create
from agents.runs.execute import Outcome, run_execute
from agents.runs.usage import CallUsage, provider_price_for, usage_record
from tests.plugins.workers import SYSTEM, funded, listing, product_name
from wallets.reconcile import reconcile_ledger

pytestmark = pytest.mark.django_db

TOKENS = 1_000_000


def create(merchant, name):
    return run_create(merchant=merchant, tool="listing-writer", input=listing(name), actor=SYSTEM)


def list_price_cost(run: Run) -> Decimal:
    price = provider_price_for(model="qwen-plus")
    assert price is not None
    return price.cost_usd(
        input_tokens=run.provider_input_tokens,
        cached_tokens=run.provider_cached_tokens,
        output_tokens=run.provider_output_tokens,
    )


def test_the_default_provider_prices_are_the_public_list_prices():
    plus = provider_price_for(model="qwen-plus")
    assert plus is not None
    assert (plus.input_usd_per_million, plus.cached_input_usd_per_million, plus.output_usd_per_million) == (
        Decimal("0.4"),
        Decimal("0.08"),
        Decimal("1.2"),
    )
    assert provider_price_for(model="qwen-flash") is not None  # the bot's model is priced too


def test_cached_input_tokens_are_priced_at_the_cached_price():
    price = ProviderPrice(
        model="m",
        input_usd_per_million=Decimal("0.40"),
        cached_input_usd_per_million=Decimal("0.08"),
        output_usd_per_million=Decimal("1.20"),
    )
    # 600k uncached at 0.40 + 400k cached at 0.08 + 1M output at 1.20
    assert price.cost_usd(input_tokens=1_000_000, cached_tokens=400_000, output_tokens=1_000_000) == Decimal(
        "1.472"
    )


def test_a_succeeded_run_records_its_provider_usage_and_a_positive_cost(llm_endpoint):
    run = create(funded(TOKENS), product_name())

    assert run_execute(run_id=run.pk) == Outcome("succeeded")

    run.refresh_from_db()
    assert (run.provider_input_tokens, run.provider_output_tokens) == (run.input_tokens, run.output_tokens)
    assert run.provider_cost_usd == list_price_cost(run) > 0


def test_a_repaired_answer_records_both_calls_though_only_one_is_charged(llm_endpoint):
    name = product_name()
    run = create(funded(TOKENS), name)
    llm_endpoint.fault("malformed", match=name)

    assert run_execute(run_id=run.pk) == Outcome("succeeded")

    run.refresh_from_db()
    assert llm_endpoint.stats()["requests"] == 2
    assert run.provider_input_tokens > run.input_tokens  # the first, unusable call is ours to pay
    assert run.provider_cost_usd == list_price_cost(run)
    assert reconcile_ledger() == []


def test_a_run_that_fails_after_two_unusable_answers_still_records_what_the_provider_billed(llm_endpoint):
    name = product_name()
    run = create(funded(TOKENS), name)
    llm_endpoint.fault(["malformed", "malformed"], match=name)

    assert run_execute(run_id=run.pk) == Outcome("failed")

    run.refresh_from_db()
    assert (run.status, run.cost) == ("failed", 0)
    assert run.provider_input_tokens > 0 and run.provider_output_tokens > 0
    assert run.provider_cost_usd > 0
    assert reconcile_ledger() == []


def test_a_busy_provider_answer_records_no_usage(llm_endpoint, fast_retries):
    name = product_name()
    run = create(funded(TOKENS), name)
    llm_endpoint.fault("429", match=name)

    assert run_execute(run_id=run.pk) == Outcome("retrying")

    run.refresh_from_db()
    assert (run.provider_input_tokens, run.provider_output_tokens, run.provider_cost_usd) == (0, 0, 0)


def test_usage_of_later_claims_adds_to_what_earlier_claims_recorded(llm_endpoint):
    run = create(funded(TOKENS), product_name())
    first = Completion(text="x", input_tokens=100, output_tokens=10, model="qwen-plus", finish_reason="stop")
    second = Completion(
        text="y",
        input_tokens=200,
        output_tokens=20,
        model="qwen-plus",
        finish_reason="stop",
        cached_tokens=50,
    )
    usage_record(run_id=run.pk, usage=CallUsage(model="qwen-plus", calls=[first]))
    usage_record(run_id=run.pk, usage=CallUsage(model="qwen-plus", calls=[second]))

    run.refresh_from_db()
    assert (run.provider_input_tokens, run.provider_cached_tokens, run.provider_output_tokens) == (
        300,
        50,
        30,
    )
    # 250 uncached x 0.40 + 50 cached x 0.08 + 30 output x 1.20, per million
    assert run.provider_cost_usd == Decimal("0.000140")


def test_a_new_provider_price_applies_from_its_effective_moment():
    ProviderPrice.objects.create(
        model="qwen-plus",
        input_usd_per_million=Decimal("0.30"),
        cached_input_usd_per_million=Decimal("0.06"),
        output_usd_per_million=Decimal("0.90"),
        effective_from=timezone.now() + timedelta(days=1),
    )
    now_price = provider_price_for(model="qwen-plus")
    later = provider_price_for(model="qwen-plus", at=timezone.now() + timedelta(days=2))
    assert now_price is not None and later is not None
    assert (now_price.input_usd_per_million, later.input_usd_per_million) == (Decimal("0.4"), Decimal("0.3"))
