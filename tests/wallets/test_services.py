"""The ledger's services, one behaviour each, on the test database (PostgreSQL or SQLite)."""

from datetime import timedelta

import pytest

from tests.wallets.helpers import SYSTEM, key, reload
from wallets import services
from wallets.exceptions import (
    HoldAlreadyResolved,
    HoldExceeded,
    HoldExpired,
    IdempotencyKeyReused,
    InsufficientTokens,
    InvalidAmount,
)
from wallets.models import Account, Transfer
from wallets.reconcile import flagged_wallets, reconcile_ledger

pytestmark = pytest.mark.django_db


def test_a_new_merchant_gets_an_empty_wallet(wallet_factory):
    wallet = wallet_factory()
    assert (wallet.kind, wallet.balance, wallet.available) == (Account.Kind.WALLET, 0, 0)


def test_a_top_up_credits_the_wallet_from_issuance(wallet_factory):
    wallet = wallet_factory()
    transfer = services.topup_credit(wallet=wallet, amount=500, key="topup:cs_1", actor=SYSTEM)
    assert transfer.debit_account == services.system_account("issuance")
    assert (transfer.credit_account_id, transfer.balance_after) == (wallet.pk, 500)
    assert reload(wallet).balance == 500
    assert reconcile_ledger() == []


def test_replaying_a_top_up_returns_the_first_transfer_and_credits_once(wallet_factory):
    wallet = wallet_factory()
    first = services.topup_credit(wallet=wallet, amount=500, key="stripe:cs_2", actor=SYSTEM)
    again = services.topup_credit(wallet=wallet, amount=500, key="stripe:cs_2", actor=SYSTEM)
    assert again.pk == first.pk
    assert reload(wallet).balance == 500
    assert Transfer.objects.filter(idempotency_key="stripe:cs_2").count() == 1


def test_a_key_reused_for_another_wallet_is_a_programming_error_not_a_replay(wallet_factory):
    services.topup_credit(wallet=wallet_factory(), amount=5, key="stripe:cs_3", actor=SYSTEM)
    with pytest.raises(IdempotencyKeyReused):
        services.topup_credit(wallet=wallet_factory(), amount=5, key="stripe:cs_3", actor=SYSTEM)


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "10"])
def test_amounts_that_are_not_positive_whole_tokens_are_refused(wallet, amount):
    with pytest.raises(InvalidAmount):
        services.topup_credit(wallet=wallet, amount=amount, key=key(), actor=SYSTEM)


def test_a_hold_reserves_tokens_without_changing_the_balance(wallet):
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    wallet = reload(wallet)
    assert (wallet.balance, wallet.debits_pending, wallet.available) == (1_000, 300, 700)
    assert (hold.balance_after, hold.held_after, hold.signed_amount) == (1_000, 300, 0)
    assert reconcile_ledger() == []


def test_a_hold_larger_than_the_available_balance_is_refused_and_reserves_nothing(wallet):
    with pytest.raises(InsufficientTokens) as refused:
        services.hold_create(wallet=wallet, amount=1_001, key=key("hold"), actor=SYSTEM)
    assert (refused.value.required, refused.value.available) == (1_001, 1_000)
    assert reload(wallet).debits_pending == 0
    assert not Transfer.objects.filter(kind="hold").exists()


def test_replaying_a_hold_that_took_everything_returns_it_instead_of_refusing(wallet):
    first = services.hold_create(wallet=wallet, amount=1_000, key="run:1:hold", actor=SYSTEM)
    assert services.hold_create(wallet=wallet, amount=1_000, key="run:1:hold", actor=SYSTEM).pk == first.pk
    assert reload(wallet).debits_pending == 1_000


def test_posting_less_than_the_hold_charges_that_and_releases_the_rest(wallet):
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    settle = services.hold_post(hold=hold, amount=120, key=key("settle"), actor=SYSTEM)
    wallet = reload(wallet)
    assert (wallet.balance, wallet.debits_pending, wallet.available) == (880, 0, 880)
    assert (settle.kind, settle.pending_id, settle.signed_amount) == ("settle", hold.pk, -120)
    assert settle.credit_account == services.system_account("consumption")
    assert reconcile_ledger() == []


def test_posting_the_whole_hold_charges_all_of_it(wallet):
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    services.hold_post(hold=hold, amount=300, key=key("settle"), actor=SYSTEM)
    assert reload(wallet).available == 700


def test_posting_more_than_the_hold_is_refused(wallet):
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    with pytest.raises(HoldExceeded):
        services.hold_post(hold=hold, amount=301, key=key("settle"), actor=SYSTEM)
    assert reload(wallet).debits_pending == 300


def test_posting_zero_releases_the_whole_hold(wallet):
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    release = services.hold_post(hold=hold, amount=0, key=key("settle"), actor=SYSTEM)
    assert (release.kind, release.amount) == ("void", 300)
    assert reload(wallet).available == 1_000


def test_voiding_a_hold_releases_everything_and_charges_nothing(wallet):
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    void = services.hold_void(hold=hold, key=key("void"), actor=SYSTEM)
    wallet = reload(wallet)
    assert (wallet.balance, wallet.available, void.amount) == (1_000, 1_000, 300)
    assert reconcile_ledger() == []


def test_replaying_a_void_returns_the_first_release_and_releases_once(wallet):
    services.hold_create(wallet=wallet, amount=200, key=key("hold"), actor=SYSTEM)
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    first = services.hold_void(hold=hold, key="run:5:void", actor=SYSTEM)
    assert services.hold_void(hold=hold, key="run:5:void", actor=SYSTEM).pk == first.pk
    assert reload(wallet).debits_pending == 200
    assert reconcile_ledger() == []


def test_replaying_a_hold_inside_a_callers_transaction_leaves_that_transaction_usable(wallet):
    from django.db import transaction

    with transaction.atomic():
        first = services.hold_create(wallet=wallet, amount=300, key="run:6:hold", actor=SYSTEM)
        assert services.hold_create(wallet=wallet, amount=300, key="run:6:hold", actor=SYSTEM).pk == first.pk
        services.topup_credit(wallet=wallet, amount=1, key=key("topup"), actor=SYSTEM)
    assert (reload(wallet).debits_pending, reload(wallet).balance) == (300, 1_001)


def test_a_hold_resolves_once_so_a_void_after_a_post_is_refused(wallet):
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    services.hold_post(hold=hold, amount=100, key=key("settle"), actor=SYSTEM)
    with pytest.raises(HoldAlreadyResolved):
        services.hold_void(hold=hold, key=key("void"), actor=SYSTEM)
    with pytest.raises(HoldAlreadyResolved):
        services.hold_post(hold=hold, amount=50, key=key("settle"), actor=SYSTEM)
    assert reload(wallet).balance == 900
    assert reconcile_ledger() == []


def test_replaying_a_post_returns_the_first_settlement_and_charges_once(wallet):
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    first = services.hold_post(hold=hold, amount=100, key="run:7:settle", actor=SYSTEM)
    assert services.hold_post(hold=hold, amount=100, key="run:7:settle", actor=SYSTEM).pk == first.pk
    assert reload(wallet).balance == 900


def test_a_settle_key_cannot_be_replayed_against_another_hold(wallet):
    one = services.hold_create(wallet=wallet, amount=10, key=key("hold"), actor=SYSTEM)
    other = services.hold_create(wallet=wallet, amount=10, key=key("hold"), actor=SYSTEM)
    services.hold_post(hold=one, amount=5, key="run:8:settle", actor=SYSTEM)
    with pytest.raises(IdempotencyKeyReused):
        services.hold_post(hold=other, amount=5, key="run:8:settle", actor=SYSTEM)


def test_a_hold_past_its_timeout_cannot_be_posted_and_the_sweep_expires_it(wallet):
    hold = services.hold_create(
        wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM, timeout=timedelta(0)
    )
    with pytest.raises(HoldExpired):
        services.hold_post(hold=hold, amount=100, key=key("settle"), actor=SYSTEM)
    assert services.holds_expire() == 1
    assert hold.resolution.kind == "expire"
    assert reload(wallet).available == 1_000
    assert services.holds_expire() == 0
    assert reconcile_ledger() == []


def test_the_sweep_leaves_holds_within_their_timeout_alone(wallet):
    services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    assert services.holds_expire() == 0
    assert reload(wallet).debits_pending == 300


def test_a_positive_adjustment_credits_from_the_support_account_with_its_reason(wallet):
    transfer = services.adjustment_create(
        wallet=wallet, amount=250, reason="Goodwill, ticket 12", actor=SYSTEM
    )
    assert transfer.debit_account == services.system_account("support")
    assert (transfer.memo, reload(wallet).balance) == ("Goodwill, ticket 12", 1_250)


def test_a_negative_adjustment_debits_the_wallet(wallet):
    services.adjustment_create(wallet=wallet, amount=-250, reason="Duplicate grant", actor=SYSTEM)
    assert reload(wallet).balance == 750
    assert reconcile_ledger() == []


def test_a_negative_adjustment_larger_than_the_available_balance_is_refused(wallet):
    services.hold_create(wallet=wallet, amount=600, key=key("hold"), actor=SYSTEM)
    with pytest.raises(InsufficientTokens):
        services.adjustment_create(wallet=wallet, amount=-401, reason="Too much", actor=SYSTEM)
    assert reload(wallet).balance == 1_000


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_adjustment_without_a_reason_is_refused(wallet, reason):
    with pytest.raises(InvalidAmount):
        services.adjustment_create(wallet=wallet, amount=5, reason=reason, actor=SYSTEM)


def test_only_a_clawback_takes_a_wallet_below_zero_and_flags_it(wallet):
    services.clawback_debit(wallet=wallet, amount=1_500, key="stripe:ch_1:refund", actor=SYSTEM)
    wallet = reload(wallet)
    assert (wallet.available, wallet.in_debt) == (-500, True)
    assert reconcile_ledger() == []
    assert flagged_wallets() == [(wallet.pk, -500)]


def test_a_wallet_in_debt_can_hold_nothing(wallet):
    services.clawback_debit(wallet=wallet, amount=1_500, key=key("clawback"), actor=SYSTEM)
    with pytest.raises(InsufficientTokens):
        services.hold_create(wallet=wallet, amount=1, key=key("hold"), actor=SYSTEM)


def test_a_top_up_that_covers_the_debt_clears_the_flag(wallet):
    services.clawback_debit(wallet=wallet, amount=1_500, key=key("clawback"), actor=SYSTEM)
    services.topup_credit(wallet=wallet, amount=400, key=key("topup"), actor=SYSTEM)
    assert reload(wallet).in_debt is True
    services.topup_credit(wallet=wallet, amount=100, key=key("topup"), actor=SYSTEM)
    assert (reload(wallet).available, reload(wallet).in_debt) == (0, False)
    assert flagged_wallets() == []


def test_a_clawback_the_wallet_can_cover_does_not_flag_it(wallet):
    services.clawback_debit(wallet=wallet, amount=400, key=key("clawback"), actor=SYSTEM)
    assert (reload(wallet).available, reload(wallet).in_debt) == (600, False)


def test_a_refund_gives_consumed_tokens_back(wallet):
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    services.hold_post(hold=hold, amount=300, key=key("settle"), actor=SYSTEM)
    services.refund_credit(wallet=wallet, amount=300, key=key("refund"), actor=SYSTEM)
    assert reload(wallet).balance == 1_000
    assert reconcile_ledger() == []


def test_every_transfer_records_its_actor(wallet, support_user):
    from merchants.actors import Actor

    transfer = services.adjustment_create(
        wallet=wallet, amount=5, reason="Test", actor=Actor.staff(support_user), reference="T-1"
    )
    assert (transfer.actor_kind, transfer.actor_user_id, transfer.actor_label, transfer.reference) == (
        "staff",
        support_user.pk,
        "Tokenhub support",  # what a merchant's statement shows; the user id names the staff member
        "T-1",
    )


def test_the_sweep_reads_only_its_lookback_window_and_reconcile_names_what_it_missed(wallet):
    # A hold that timed out two days ago: beat was down all that time.
    services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM, timeout=timedelta(days=-2))

    assert services.holds_expire(lookback=timedelta(days=1)) == 0
    assert [v.code for v in reconcile_ledger() if v.invariant == 4]
    assert services.holds_expire(lookback=timedelta(days=3)) == 1
    assert reconcile_ledger() == []
