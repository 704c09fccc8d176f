"""`usage_report` and the revenue rule, against runs executed on the Qwen simulator and a real ledger."""

import csv
import io
import json
import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum

from agents.models import Run
from agents.runs.create import run_create
from agents.runs.execute import Outcome, run_execute
from analytics.models import RunEconomics
from analytics.services import economics_refresh
from tests.factories import MerchantFactory, TopupPaymentFactory
from tests.plugins.workers import SYSTEM, charged, funded, listing
from wallets.models import Transfer
from wallets.reconcile import reconcile_ledger
from wallets.services import clawback_debit, hold_create, hold_post, promotion_credit, topup_credit, wallet_of

pytestmark = pytest.mark.django_db


def run_listing(merchant, name="Aurora Lamp"):
    run = run_create(merchant=merchant, tool="listing-writer", input=listing(name), actor=SYSTEM)
    assert run_execute(run_id=run.pk) == Outcome("succeeded")
    run.refresh_from_db()
    return run


def paid_topup(merchant, *, tokens: int, cents: int) -> Transfer:
    session = f"cs_test_{uuid.uuid4().hex}"
    transfer = topup_credit(
        wallet=wallet_of(merchant=merchant), amount=tokens, key=f"stripe:{session}", actor=SYSTEM
    )
    TopupPaymentFactory(
        merchant=merchant, tokens=tokens, amount_cents=cents, transfer=transfer, checkout_session_id=session
    )
    return transfer


def report(*args) -> dict:
    out = io.StringIO()
    call_command("usage_report", "--format", "json", *args, stdout=out)
    return json.loads(out.getvalue())


def settled_tokens_of(tool: str) -> int:
    """The ledger's side: the settle transfers resolving the holds of the tool's runs."""
    holds = Run.objects.filter(tool=tool).values("hold_id")
    return Transfer.objects.filter(kind="settle", pending_id__in=holds).aggregate(n=Sum("amount"))["n"] or 0


def test_usage_report_agrees_with_the_ledger_and_counts_two_listing_stores(llm_endpoint):
    first, second = MerchantFactory(), MerchantFactory()
    paid_topup(first, tokens=1_000_000, cents=500)
    paid_topup(second, tokens=1_000_000, cents=500)
    runs = [run_listing(first), run_listing(first, "Birch Stool"), run_listing(second)]
    marketing = run_create(
        merchant=second,
        tool="marketing-copy",
        input={"brief": "Spring sale on lamps", "channel": "email"},
        actor=SYSTEM,
    )
    run_execute(run_id=marketing.pk)

    data = report()

    tools = {row["tool"]: row for row in data["tools"]}
    listing_row = tools["listing-writer"]
    assert listing_row["stores_active"] == 2 and listing_row["runs"] == 3
    assert listing_row["tokens"] == settled_tokens_of("listing-writer") == sum(charged(r) for r in runs)
    for tool, row in tools.items():
        assert row["tokens"] == settled_tokens_of(tool), tool
    assert Decimal(listing_row["provider_cost_usd"]) > 0
    # Every token came from a $5 per million pack: revenue is the charge at that price.
    assert Decimal(listing_row["revenue_usd"]) == (
        Decimal(listing_row["tokens"]) * Decimal("0.000005")
    ).quantize(Decimal("0.000001"))
    assert Decimal(listing_row["gross_margin_usd"]) == Decimal(listing_row["revenue_usd"]) - Decimal(
        listing_row["provider_cost_usd"]
    )
    assert sum(row["tokens"] for row in data["models"]) == sum(row["tokens"] for row in data["tools"])
    retention = {row["tool"]: row for row in data["retention"]}
    assert retention["listing-writer"]["stores"] == 2 and len(retention["listing-writer"]["retained"]) == 8
    assert reconcile_ledger() == []


def test_csv_format_has_one_row_per_tool_model_and_cohort(llm_endpoint):
    run_listing(funded(1_000_000))
    out = io.StringIO()
    call_command("usage_report", "--format", "csv", "--since", "2000-01-01", stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    sections = {row["section"] for row in rows}
    assert sections == {"tool", "model", "retention"}
    assert [r["name"] for r in rows if r["section"] == "tool"] == ["listing-writer"]


def test_a_range_without_runs_reports_nothing(llm_endpoint):
    run_listing(funded(1_000_000))
    assert report("--since", "2001-01-01", "--until", "2001-01-31")["tools"] == []


def test_spending_draws_the_cost_basis_first_in_first_out(llm_endpoint):
    """A paid lot, then a granted one: the runs take the paid tokens first at the pack's price per token,
    then the granted ones at 0, splitting the run that crosses the boundary."""
    probe = run_listing(funded(1_000_000))
    merchant = MerchantFactory()
    paid = int(probe.cost * 1.5)
    paid_topup(merchant, tokens=paid, cents=1_000)  # $10 for `paid` tokens
    promotion_credit(
        wallet=wallet_of(merchant=merchant), amount=1_000_000, key=f"g:{uuid.uuid4()}", actor=SYSTEM
    )
    runs = [run_listing(merchant) for _ in range(3)]

    economics_refresh()

    unit = Decimal("10") / paid
    left = paid
    for run in runs:
        from_paid = min(left, charged(run))
        left -= from_paid
        fact = RunEconomics.objects.get(run_id=run.pk)
        assert fact.tokens == charged(run)
        assert fact.revenue_usd == (from_paid * unit).quantize(Decimal("0.00000001"))
    assert RunEconomics.objects.get(run_id=runs[-1].pk).revenue_usd == 0
    total = sum(RunEconomics.objects.get(run_id=r.pk).revenue_usd for r in runs)
    assert abs(total - Decimal("10")) < Decimal("0.0000001")  # every paid token spent: all the money earned
    assert reconcile_ledger() == []


def test_a_clawed_back_payment_carries_revenue_only_for_the_tokens_it_kept(llm_endpoint):
    merchant = MerchantFactory()
    transfer = paid_topup(merchant, tokens=1_000_000, cents=500)
    promotion_credit(
        wallet=wallet_of(merchant=merchant), amount=1_000_000, key=f"g:{uuid.uuid4()}", actor=SYSTEM
    )
    payment = transfer.topup_payment
    # The whole payment was refunded: its tokens were clawed back, the grant pays for the run.
    clawback_debit(
        wallet=wallet_of(merchant=merchant), amount=1_000_000, key=f"c:{uuid.uuid4()}", actor=SYSTEM
    )
    payment.tokens_clawed_back, payment.refunded_cents, payment.status = 1_000_000, 500, "refunded"
    payment.save(update_fields=["tokens_clawed_back", "refunded_cents", "status"])
    run = run_listing(merchant)

    economics_refresh()

    assert RunEconomics.objects.get(run_id=run.pk).revenue_usd == 0


def test_failed_runs_count_provider_cost_but_no_tokens(llm_endpoint):
    merchant = funded(1_000_000)
    name = f"Cedar Box {uuid.uuid4().hex[:6]}"
    llm_endpoint.fault(["malformed", "malformed"], match=name)
    run = run_create(merchant=merchant, tool="listing-writer", input=listing(name), actor=SYSTEM)
    assert run_execute(run_id=run.pk) == Outcome("failed")

    data = report()

    row = next(r for r in data["tools"] if r["tool"] == "listing-writer")
    assert (row["runs"], row["tokens"], row["stores_active"]) == (0, 0, 0)
    assert Decimal(row["provider_cost_usd"]) > 0 and Decimal(row["gross_margin_usd"]) < 0


def weeks_ago_run(merchant, *, tool: str, weeks: int) -> None:
    """A succeeded, settled run created `weeks` weeks ago (the worker's result, written directly)."""
    from datetime import timedelta

    from django.utils import timezone

    key = uuid.uuid4().hex
    wallet = wallet_of(merchant=merchant)
    hold = hold_create(wallet=wallet, amount=200, key=f"{key}:hold", actor=SYSTEM)
    settlement = hold_post(hold=hold, amount=100, key=f"{key}:settle", actor=SYSTEM)
    created = timezone.now() - timedelta(weeks=weeks)
    Run.objects.create(
        merchant=merchant, tool=tool, status="succeeded", input={}, output={}, model="qwen-plus", held=200,
        cost=100, hold=hold, settlement=settlement, created_at=created, finished_at=created,
    )  # fmt: skip


def test_retention_counts_the_stores_of_a_cohort_that_came_back_in_each_later_week(db):
    loyal, once, late = funded(10_000), funded(10_000), funded(10_000)
    for weeks in (3, 2, 1):
        weeks_ago_run(loyal, tool="listing-writer", weeks=weeks)
    weeks_ago_run(once, tool="listing-writer", weeks=3)
    weeks_ago_run(late, tool="listing-writer", weeks=2)  # a store of the next cohort, not of this one

    cohorts = {row["cohort_week"]: row for row in report()["retention"] if row["tool"] == "listing-writer"}

    first, second = sorted(cohorts)
    assert cohorts[first]["stores"] == 2
    assert cohorts[first]["retained"][:2] == [1, 1]  # W+1 and W+2: the loyal store only
    assert cohorts[first]["retained"][3:] == [None] * 5  # weeks not over yet
    assert cohorts[second]["stores"] == 1 and cohorts[second]["retained"][0] == 0


def test_an_auto_recharge_carries_the_price_it_was_paid(llm_endpoint):
    from wallets.models import RechargeAttempt

    merchant = MerchantFactory()
    wallet = wallet_of(merchant=merchant)
    attempt = RechargeAttempt.objects.create(
        wallet=wallet, tokens=1_000_000, amount_cents=500, currency="usd"
    )
    transfer = topup_credit(
        wallet=wallet, amount=1_000_000, key=f"stripe-recharge:{attempt.reference}", actor=SYSTEM
    )
    RechargeAttempt.objects.filter(pk=attempt.pk).update(status="succeeded", transfer=transfer)
    run = run_listing(merchant)

    economics_refresh()

    expected = (Decimal(charged(run)) * Decimal("0.000005")).quantize(Decimal("0.00000001"))
    assert RunEconomics.objects.get(run_id=run.pk).revenue_usd == expected > 0
