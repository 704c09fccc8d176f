"""Real threads, each on its own PostgreSQL connection, racing on one wallet. The ledger must not care."""

from datetime import timedelta

import pytest

from tests.wallets.helpers import SYSTEM, key, reload, run_in_threads
from wallets import services
from wallets.exceptions import HoldAlreadyResolved, HoldExpired, InsufficientTokens
from wallets.models import Transfer
from wallets.reconcile import reconcile_ledger

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_thirty_two_threads_holding_at_once_never_overdraw(wallet_factory):
    wallet = wallet_factory(tokens=1_000)
    results = run_in_threads(
        32, lambda i: services.hold_create(wallet=wallet, amount=100, key=f"race:{i}:hold", actor=SYSTEM)
    )
    holds = [r for r in results if isinstance(r, Transfer)]
    refused = [r for r in results if isinstance(r, InsufficientTokens)]
    assert (len(holds), len(refused)) == (10, 22), results
    wallet = reload(wallet)
    assert (wallet.available, wallet.debits_pending) == (0, 1_000)
    assert reconcile_ledger() == []


def test_thirty_two_threads_debiting_by_adjustment_never_overdraw(wallet_factory):
    wallet = wallet_factory(tokens=1_000)
    results = run_in_threads(
        32, lambda i: services.adjustment_create(wallet=wallet, amount=-100, reason="race", actor=SYSTEM)
    )
    assert sum(isinstance(r, Transfer) for r in results) == 10, results
    assert reload(wallet).balance == 0
    assert reconcile_ledger() == []


def test_concurrent_replays_of_one_hold_return_the_same_transfer_and_reserve_once(wallet_factory):
    # The hold takes everything, so a replay that waited on the row lock must still answer with the hold.
    wallet = wallet_factory(tokens=1_000)
    results = run_in_threads(
        16, lambda i: services.hold_create(wallet=wallet, amount=1_000, key="run:42:hold", actor=SYSTEM)
    )
    assert all(isinstance(r, Transfer) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert reload(wallet).debits_pending == 1_000
    assert reconcile_ledger() == []


def test_concurrent_replays_of_one_top_up_credit_once(wallet_factory):
    wallet = wallet_factory()
    results = run_in_threads(
        16, lambda i: services.topup_credit(wallet=wallet, amount=500, key="topup:cs_race", actor=SYSTEM)
    )
    assert len({r.pk for r in results if isinstance(r, Transfer)}) == 1, results
    assert reload(wallet).balance == 500
    assert reconcile_ledger() == []


def test_concurrent_posts_of_one_hold_charge_it_exactly_once(wallet_factory):
    wallet = wallet_factory(tokens=1_000)
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    results = run_in_threads(
        16, lambda i: services.hold_post(hold=hold, amount=100 + i, key=f"settle:{i}", actor=SYSTEM)
    )
    settled = [r for r in results if isinstance(r, Transfer)]
    assert len(settled) == 1, results
    assert all(isinstance(r, HoldAlreadyResolved) for r in results if r not in settled)
    assert reload(wallet).balance == 1_000 - settled[0].amount
    assert reconcile_ledger() == []


def test_concurrent_replays_of_one_post_return_the_same_settlement(wallet_factory):
    wallet = wallet_factory(tokens=1_000)
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    results = run_in_threads(
        16, lambda i: services.hold_post(hold=hold, amount=200, key="run:9:settle", actor=SYSTEM)
    )
    assert len({r.pk for r in results if isinstance(r, Transfer)}) == 1
    assert all(isinstance(r, Transfer) for r in results), results
    assert reload(wallet).balance == 800
    assert reconcile_ledger() == []


def test_posts_voids_and_expiries_racing_on_one_hold_resolve_it_once(wallet_factory):
    wallet = wallet_factory(tokens=1_000)
    # Expiring in a moment: early posts may win, later ones meet HoldExpired; the sweep races them all.
    hold = services.hold_create(
        wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM, timeout=timedelta(milliseconds=50)
    )

    def contender(i: int):
        match i % 3:
            case 0:
                return services.hold_post(hold=hold, amount=250, key=f"post:{i}", actor=SYSTEM)
            case 1:
                return services.hold_void(hold=hold, key=f"void:{i}", actor=SYSTEM)
            case _:
                return services.holds_expire(now=hold.timeout_at)

    results = run_in_threads(24, contender)
    unexpected = [
        r
        for r in results
        if isinstance(r, Exception) and not isinstance(r, HoldAlreadyResolved | HoldExpired)
    ]
    assert unexpected == []
    assert Transfer.objects.filter(pending=hold).count() == 1
    resolution = Transfer.objects.get(pending=hold)
    assert reload(wallet).balance == (750 if resolution.kind == "settle" else 1_000)
    assert reload(wallet).debits_pending == 0
    assert reconcile_ledger() == []


def test_holds_and_posts_spread_over_wallets_keep_every_invariant(wallet_factory):
    wallets = [wallet_factory(tokens=1_000) for _ in range(4)]

    def cycle(i: int):
        wallet = wallets[i % 4]
        for n in range(5):
            try:
                hold = services.hold_create(wallet=wallet, amount=40, key=f"c:{i}:{n}:hold", actor=SYSTEM)
            except InsufficientTokens:
                continue
            services.hold_post(hold=hold, amount=30, key=f"c:{i}:{n}:settle", actor=SYSTEM)

    results = run_in_threads(16, cycle)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sum(reload(w).balance for w in wallets) == 4_000 - 16 * 5 * 30
    assert reconcile_ledger() == []
