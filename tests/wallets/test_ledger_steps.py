"""Ledger steps (wallets.services.hold_step / post_step): one movement folded into a caller's statement,
under the same guard as every other movement. PostgreSQL only, as the steps are."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tests.wallets.helpers import SYSTEM, key, reload
from wallets import services
from wallets.funding import wallet_pays_first
from wallets.models import Transfer
from wallets.reconcile import reconcile_ledger

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def run_step(step: services.LedgerStep, *, before: str = "") -> tuple | None:
    """The step alone in one statement (`before`: CTEs the step's gate names), as a caller runs it."""
    sql = f"WITH {before}{step.sql} SELECT id, balance_after, held_after, wallet_id FROM {step.name}"  # noqa: S608
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, step.params)
        return cursor.fetchone()


def test_a_hold_step_reserves_tokens_and_records_the_hold_like_hold_create(wallet_factory):
    wallet = wallet_factory(tokens=1_000)

    step = services.hold_step(account_id=wallet.pk, amount=300, key=key("hold"), actor=SYSTEM)
    row = run_step(step)

    hold = step.saved(row)
    assert (hold.kind, hold.amount, hold.balance_after, hold.held_after) == ("hold", 300, 1_000, 300)
    assert Transfer.objects.get(pk=hold.pk).debit_account_id == wallet.pk
    assert (reload(wallet).balance, wallet.debits_pending) == (1_000, 300)
    assert reconcile_ledger() == []


def test_a_hold_step_the_guard_refuses_moves_nothing_and_records_nothing(wallet_factory):
    wallet = wallet_factory(tokens=100)

    assert (
        run_step(services.hold_step(account_id=wallet.pk, amount=101, key=key("hold"), actor=SYSTEM)) is None
    )

    assert reload(wallet).debits_pending == 0
    assert not Transfer.objects.filter(wallet=wallet, kind="hold").exists()


def test_a_hold_step_on_a_merchants_wallet_finds_the_wallet_itself(wallet_factory):
    wallet = wallet_factory(tokens=1_000)

    step = services.hold_step(
        wallet_of_merchant=wallet.merchant_id,
        only_if=wallet_pays_first(merchant=wallet.merchant),
        amount=250,
        key=key("hold"),
        actor=SYSTEM,
    )
    hold = step.saved(run_step(step))

    assert hold.wallet_id == hold.debit_account_id == wallet.pk
    assert reload(wallet).debits_pending == 250
    assert reconcile_ledger() == []


def test_a_wallet_hold_step_does_not_move_while_promotional_tokens_draw_first(wallet_factory):
    wallet = wallet_factory(tokens=1_000)
    services.promo_grant(
        merchant=wallet.merchant,
        amount=50,
        expires_at=timezone.now() + timedelta(days=1),
        key=key(),
        actor=SYSTEM,
    )

    step = services.hold_step(
        wallet_of_merchant=wallet.merchant_id,
        only_if=wallet_pays_first(merchant=wallet.merchant),
        amount=10,
        key=key("hold"),
        actor=SYSTEM,
    )

    assert run_step(step) is None
    assert reload(wallet).debits_pending == 0


def test_a_hold_step_replayed_with_its_key_fails_the_whole_statement_and_moves_nothing_more(wallet_factory):
    wallet = wallet_factory(tokens=1_000)
    cause = key("hold")
    run_step(services.hold_step(account_id=wallet.pk, amount=100, key=cause, actor=SYSTEM))

    with pytest.raises(IntegrityError):
        run_step(services.hold_step(account_id=wallet.pk, amount=100, key=cause, actor=SYSTEM))

    assert reload(wallet).debits_pending == 100
    assert reconcile_ledger() == []


def test_a_hold_step_names_exactly_one_account():
    with pytest.raises(ValueError, match="one of"):
        services.hold_step(amount=1, key=key(), actor=SYSTEM)
    with pytest.raises(ValueError, match="one of"):
        services.hold_step(account_id=1, wallet_of_merchant=1, amount=1, key=key(), actor=SYSTEM)


GATE_OPEN = "guard AS (SELECT 1 AS id), "
GATE_SHUT = "guard AS (SELECT 1 AS id WHERE false), "


def held(wallet, amount: int = 400):
    return services.hold_create(wallet=wallet, amount=amount, key=key("hold"), actor=SYSTEM)


def post_of(hold, amount: int) -> services.LedgerStep:
    """The hold's post as a step gated on `guard` (one that applies: not sponsored, not expired)."""
    step = services.post_step(hold=hold, amount=amount, key=key("post"), actor=SYSTEM, gate="guard")
    assert step is not None
    return step


def test_a_post_step_charges_and_releases_the_rest_only_while_its_gate_returns_a_row(wallet_factory):
    wallet = wallet_factory(tokens=1_000)
    hold = held(wallet)

    assert run_step(post_of(hold, 150), before=GATE_SHUT) is None
    assert (reload(wallet).balance, wallet.debits_pending) == (1_000, 400)

    step = post_of(hold, 150)
    post = step.saved(run_step(step, before=GATE_OPEN))

    assert (post.kind, post.amount, post.pending_id) == ("settle", 150, hold.pk)
    assert (reload(wallet).balance, wallet.debits_pending) == (850, 0)
    assert reconcile_ledger() == []


def test_a_second_post_step_of_one_hold_fails_and_charges_nothing_more(wallet_factory):
    wallet = wallet_factory(tokens=1_000)
    hold = held(wallet)
    run_step(post_of(hold, 100), before=GATE_OPEN)

    with pytest.raises(IntegrityError):
        run_step(post_of(hold, 100), before=GATE_OPEN)

    assert (reload(wallet).balance, wallet.debits_pending) == (900, 0)
    assert reconcile_ledger() == []


def test_a_post_step_of_nothing_releases_the_whole_hold(wallet_factory):
    wallet = wallet_factory(tokens=1_000)
    step = post_of(held(wallet), 0)
    release = step.saved(run_step(step, before=GATE_OPEN))

    assert (release.kind, release.amount) == ("void", 400)
    assert (reload(wallet).balance, wallet.debits_pending) == (1_000, 0)
    assert reconcile_ledger() == []


def test_an_expired_hold_is_not_posted_in_one_step(wallet_factory):
    wallet = wallet_factory(tokens=1_000)
    hold = services.hold_create(
        wallet=wallet, amount=400, key=key("hold"), actor=SYSTEM, timeout=timedelta(seconds=-1)
    )

    assert services.post_step(hold=hold, amount=100, key=key("post"), actor=SYSTEM, gate="guard") is None
