"""Who pays: a run's hold drawn from a sponsorship, then promotional credits, then paid tokens."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from agents.models import Run
from agents.runs import leases
from agents.runs.create import run_create
from agents.runs.estimate import run_estimate
from agents.runs.settle import run_hold_parts, run_refund, settle_key
from merchants.actors import Actor
from merchants.models import Merchant
from merchants.services import user_signup
from tests.factories import MerchantFactory
from tests.plugins.workers import funded, in_process_worker, listing, run_in_threads, wait_finished
from wallets.exceptions import InsufficientTokens
from wallets.funding import funding_hold, funding_post, funding_release
from wallets.models import Account, Sponsorship, SponsorshipMonth, Transfer
from wallets.reconcile import reconcile_ledger
from wallets.selectors import sponsored_available, wallet_balance
from wallets.services import promo_grant, promos_expire, wallet_of
from wallets.sponsorships import (
    sponsorship_create,
    sponsorship_end,
    sponsorship_limit_change,
    sponsorship_pause,
)

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")
MERCHANT = Actor.system("merchant")


def sponsor_for(beneficiary, *, monthly_limit: int, tokens: int = 1_000_000, tools=()) -> Sponsorship:
    sponsor = funded(tokens)
    return sponsorship_create(
        sponsor=sponsor, beneficiary=beneficiary, monthly_limit=monthly_limit, tools=tools, accepted=True
    )


def promo(merchant, tokens: int, *, days: int = 7, key: str | None = None) -> Account:
    transfer = promo_grant(
        merchant=merchant,
        amount=tokens,
        expires_at=timezone.now() + timedelta(days=days),
        key=key or f"campaign:{merchant.pk}:{tokens}:{days}",
        actor=SYSTEM,
    )
    return Account.objects.get(pk=transfer.wallet_id)


def available_of(account: Account) -> int:
    account.refresh_from_db()
    return account.available


def test_a_hold_takes_the_sponsorship_then_the_soonest_expiring_credits_then_paid_tokens():
    store = funded(1_000)
    sponsorship = sponsor_for(store, monthly_limit=300)
    later, sooner = promo(store, 200, days=20), promo(store, 100, days=3)

    funded_hold = funding_hold(
        merchant=store, tool="listing-writer", amount=900, key="run:a:hold", actor=MERCHANT
    )

    parts = funded_hold.parts
    assert [part.amount for part in parts] == [300, 100, 200, 300]
    assert [part.wallet_id for part in parts] == [
        wallet_of(merchant=sponsorship.sponsor).pk,
        sooner.pk,
        later.pk,
        wallet_of(merchant=store).pk,
    ]
    assert parts[0].beneficiary_id == wallet_of(merchant=store).pk
    assert parts[0].idempotency_key == "run:a:hold" and parts[3].idempotency_key == "run:a:hold:3"
    assert SponsorshipMonth.objects.get(sponsorship=sponsorship).held == 300
    assert reconcile_ledger() == []


def test_the_charge_is_taken_from_the_parts_in_draw_order_and_the_rest_released():
    store = funded(1_000)
    sponsorship = sponsor_for(store, monthly_limit=300)
    block = promo(store, 100)
    parts = funding_hold(merchant=store, tool=None, amount=900, key="run:b:hold", actor=MERCHANT).parts

    resolutions = funding_post(parts=parts, amount=350, key="run:b:settle", actor=SYSTEM)

    assert [(r.kind, r.amount) for r in resolutions] == [("settle", 300), ("settle", 50), ("void", 500)]
    month = SponsorshipMonth.objects.get(sponsorship=sponsorship)
    assert (month.held, month.spent) == (0, 300)
    assert available_of(block) == 50
    assert available_of(wallet_of(merchant=store)) == 1_000
    assert available_of(wallet_of(merchant=sponsorship.sponsor)) == 1_000_000 - 300
    assert reconcile_ledger() == []


def test_releasing_a_run_gives_every_source_its_tokens_back_and_the_month_its_room():
    store = funded(1_000)
    sponsorship = sponsor_for(store, monthly_limit=300)
    parts = funding_hold(merchant=store, tool=None, amount=800, key="run:c:hold", actor=MERCHANT).parts

    funding_release(parts=parts, key="run:c:settle", actor=SYSTEM)
    funding_release(parts=parts, key="run:c:settle", actor=SYSTEM)  # a replay moves nothing more

    assert SponsorshipMonth.objects.get(sponsorship=sponsorship).held == 0
    assert sponsored_available(merchant=store) == 300
    assert available_of(wallet_of(merchant=store)) == 1_000
    assert reconcile_ledger() == []


def test_a_store_without_enough_across_its_sources_is_refused_with_all_it_could_spend_and_nothing_held():
    store = funded(100)
    sponsor_for(store, monthly_limit=50)
    promo(store, 25)

    with pytest.raises(InsufficientTokens) as refused:
        funding_hold(merchant=store, tool=None, amount=176, key="run:d:hold", actor=MERCHANT)

    assert (refused.value.required, refused.value.available) == (176, 175)
    assert not Transfer.objects.filter(kind="hold").exists()
    assert not SponsorshipMonth.objects.filter(held__gt=0).exists()
    assert reconcile_ledger() == []


def test_a_sponsorship_for_one_tool_pays_for_nothing_else():
    store = funded(1_000)
    sponsor_for(store, monthly_limit=500, tools=["marketing-copy"])

    parts = funding_hold(
        merchant=store, tool="listing-writer", amount=100, key="run:e:hold", actor=MERCHANT
    ).parts

    assert [part.wallet_id for part in parts] == [wallet_of(merchant=store).pk]
    assert sponsored_available(merchant=store, tool="marketing-copy") == 500


def test_a_paused_or_ended_sponsorship_pays_for_no_new_run_but_a_held_one_still_settles():
    store = funded(0)
    sponsorship = sponsor_for(store, monthly_limit=1_000)
    parts = funding_hold(merchant=store, tool=None, amount=400, key="run:f:hold", actor=MERCHANT).parts

    sponsorship_pause(sponsorship=sponsorship)
    with pytest.raises(InsufficientTokens):
        funding_hold(merchant=store, tool=None, amount=10, key="run:g:hold", actor=MERCHANT)
    sponsorship_end(sponsorship=sponsorship)
    funding_post(parts=parts, amount=250, key="run:f:settle", actor=SYSTEM)

    assert SponsorshipMonth.objects.get().spent == 250
    assert sponsored_available(merchant=store) == 0
    assert reconcile_ledger() == []


def test_lowering_a_limit_below_what_was_used_keeps_the_month_consistent():
    store = funded(0)
    sponsorship = sponsor_for(store, monthly_limit=1_000)
    funding_hold(merchant=store, tool=None, amount=600, key="run:h:hold", actor=MERCHANT)

    sponsorship_limit_change(sponsorship=sponsorship, monthly_limit=100)

    assert SponsorshipMonth.objects.get().limit_tokens == 600
    assert sponsored_available(merchant=store) == 0
    with pytest.raises(InsufficientTokens):
        funding_hold(merchant=store, tool=None, amount=1, key="run:i:hold", actor=MERCHANT)
    assert reconcile_ledger() == []


def test_a_sponsor_whose_wallet_is_short_lends_only_what_it_has():
    store = funded(0)
    sponsor_for(store, monthly_limit=10_000, tokens=300)

    assert sponsored_available(merchant=store) == 300
    with pytest.raises(InsufficientTokens):
        funding_hold(merchant=store, tool=None, amount=301, key="run:j:hold", actor=MERCHANT)


@pytest.mark.django_db(transaction=True)
def test_thirty_racing_runs_of_an_empty_wallet_take_exactly_the_sponsorships_five_holds(llm_endpoint, broker):
    store = funded(0)
    same_listing = listing("Aurora Lamp")  # one input, so every run holds the same
    held = run_estimate(merchant=store, tool="listing-writer", input=same_listing).held
    sponsorship = sponsor_for(store, monthly_limit=5 * held, tokens=10_000_000)
    sponsor_wallet = wallet_of(merchant=sponsorship.sponsor)

    def create(index: int) -> Run:
        return run_create(merchant=store, tool="listing-writer", input=same_listing, actor=MERCHANT)

    results = run_in_threads(30, create)  # before any worker runs: no charge frees room during the race

    accepted = [result for result in results if isinstance(result, Run)]
    refused = [result for result in results if isinstance(result, InsufficientTokens)]
    assert (len(accepted), len(refused)) == (5, 25), results
    try:
        with in_process_worker():
            finished = wait_finished(*accepted, timeout=60)
    finally:
        leases.heartbeat.stop()
    assert all(run.status == Run.Status.SUCCEEDED for run in finished)
    costs = sum(run.cost for run in finished)
    assert available_of(sponsor_wallet) == 10_000_000 - costs
    assert wallet_balance(merchant=store).balance == 0
    assert sponsored_available(merchant=store) == 5 * held - costs
    assert reconcile_ledger() == []


@pytest.mark.django_db(transaction=True)
def test_a_store_that_signs_up_runs_a_listing_at_once_on_its_trial_credits(
    llm_endpoint, celery_worker, settings
):
    _user, store = user_signup(
        email="new@shop.example", password="a-long-enough-password-1", store_name="New"
    )

    balance = wallet_balance(merchant=store)
    assert balance.promotional_available == settings.TRIAL_TOKENS == 50_000
    assert balance.paid_available == 0
    run = run_create(merchant=store, tool="listing-writer", input=listing(), actor=MERCHANT)
    (finished,) = wait_finished(run, timeout=60)

    assert finished.status == Run.Status.SUCCEEDED
    assert wallet_balance(merchant=store).promotional_available == settings.TRIAL_TOKENS - finished.cost
    assert reconcile_ledger() == []


def test_trial_credits_are_granted_once_and_last_the_trial_days(settings):
    _user, store = user_signup(
        email="once@shop.example", password="a-long-enough-password-1", store_name="Once"
    )

    (block,) = Account.objects.filter(merchant=store, kind="promo")
    assert (
        timedelta(days=13, hours=23)
        < block.expires_at - timezone.now()
        <= timedelta(days=settings.TRIAL_DAYS)
    )
    promo_grant(
        merchant=store, amount=settings.TRIAL_TOKENS, expires_at=block.expires_at, key=f"trial:{store.pk}",
        actor=SYSTEM,
    )  # fmt: skip
    assert Transfer.objects.filter(kind="promotion", wallet__merchant=store).count() == 1


def test_create_merchant_still_grants_exactly_the_tokens_asked_for_and_no_trial():
    call_command("create_merchant", "cli-store", "--owner-email", "cli@shop.example", "--tokens", "700")

    balance = wallet_balance(merchant=Merchant.objects.get(slug="cli-store"))
    assert (balance.paid_available, balance.promotional_available) == (700, 0)


def test_expired_promotional_credits_leave_by_a_transfer_and_lend_nothing_meanwhile():
    store = funded(0)
    block = promo(store, 500, days=1)
    parts = funding_hold(merchant=store, tool=None, amount=200, key="run:k:hold", actor=MERCHANT).parts
    Account.objects.filter(pk=block.pk).update(expires_at=timezone.now() - timedelta(hours=1))

    with pytest.raises(InsufficientTokens):
        funding_hold(merchant=store, tool=None, amount=1, key="run:l:hold", actor=MERCHANT)
    assert promos_expire() == 1
    assert available_of(block) == 0
    funding_release(parts=parts, key="run:k:settle", actor=SYSTEM)
    assert promos_expire() == 1  # what the run gave back goes too
    assert promos_expire() == 0

    expired = Transfer.objects.filter(kind="promo_expire", wallet=block).order_by("id")
    assert [transfer.amount for transfer in expired] == [300, 200]
    assert available_of(block) == 0 and block.credits_posted == 500
    assert reconcile_ledger() == []


def test_reconcile_names_expired_credits_the_sweeper_has_not_taken():
    store = funded(0)
    block = promo(store, 500, days=1)
    Account.objects.filter(pk=block.pk).update(expires_at=timezone.now() - timedelta(hours=1))

    assert [v.code for v in reconcile_ledger()] == ["expired_promotion_left"]


def test_reconcile_names_a_sponsorship_month_that_differs_from_its_transfers():
    store = funded(0)
    sponsorship = sponsor_for(store, monthly_limit=1_000)
    funding_hold(merchant=store, tool=None, amount=100, key="run:m:hold", actor=MERCHANT)
    SponsorshipMonth.objects.filter(sponsorship=sponsorship).update(held=40)

    assert [v.code for v in reconcile_ledger()] == ["sponsorship_month_mismatch"]


def test_refunding_a_sponsored_run_gives_the_tokens_back_to_whoever_paid():
    store = funded(10_000)
    sponsorship = sponsor_for(store, monthly_limit=300)
    run = run_create(merchant=store, tool="listing-writer", input=listing(), actor=MERCHANT)
    assert run.held > 400
    charge = funding_post(parts=run_hold_parts(run), amount=400, key=settle_key(run.pk), actor=SYSTEM)[0]
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.SUCCEEDED,
        cost=400,
        settlement=charge,
        finished_at=timezone.now(),
        output={"title": "A"},
    )
    run.refresh_from_db()

    run_refund(run=run, actor=SYSTEM)

    assert available_of(wallet_of(merchant=sponsorship.sponsor)) == 1_000_000
    assert available_of(wallet_of(merchant=store)) == 10_000
    refunds = Transfer.objects.filter(kind="refund").order_by("id")
    assert sorted(refund.amount for refund in refunds) == [100, 300]


def test_create_sponsorship_prints_the_new_id_on_its_last_line(capsys):
    sponsor, beneficiary = MerchantFactory(slug="brand"), MerchantFactory(slug="reseller")

    call_command(
        "create_sponsorship", "brand", "reseller", "--monthly-limit", "50000", "--tool", "listing-writer"
    )

    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    sponsorship = Sponsorship.objects.get(pk=int(last_line))
    assert (sponsorship.sponsor, sponsorship.beneficiary, sponsorship.status) == (
        sponsor,
        beneficiary,
        "active",
    )
    assert sponsorship.tools == ["listing-writer"] and sponsorship.monthly_limit == 50_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["brand", "brand", "--monthly-limit", "10"], "cannot sponsor itself"),
        (["brand", "reseller", "--monthly-limit", "0"], "above zero"),
        (["brand", "reseller", "--monthly-limit", "10", "--tool", "nope"], "no tool called nope"),
        (["brand", "nobody", "--monthly-limit", "10"], "no store 'nobody'"),
    ],
)
def test_create_sponsorship_refuses_bad_input_with_a_clear_message(args, message):
    from django.core.management.base import CommandError

    MerchantFactory(slug="brand"), MerchantFactory(slug="reseller")
    with pytest.raises(CommandError, match=message):
        call_command("create_sponsorship", *args)
    assert not Sponsorship.objects.exists()
