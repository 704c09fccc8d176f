"""reconcile_ledger names each broken invariant; the commands that run it and grant tokens."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from tests.wallets.helpers import SYSTEM, key, reload
from wallets import reconcile, services
from wallets.models import Transfer
from wallets.reconcile import Violation, reconcile_ledger, register_check

pytestmark = pytest.mark.django_db


def _corrupt(sql: str, *params) -> None:
    """Counters are plain columns (only transfers have the trigger): raw SQL can break them, as a bug could."""
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))


def _codes() -> set[tuple[int, str]]:
    return {(v.invariant, v.code) for v in reconcile_ledger()}


def test_a_consistent_ledger_has_no_violations(wallet):
    hold = services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    services.hold_post(hold=hold, amount=100, key=key("settle"), actor=SYSTEM)
    services.hold_create(wallet=wallet, amount=50, key=key("hold"), actor=SYSTEM)
    assert reconcile_ledger() == []


def test_a_corrupted_counter_is_named_with_its_wallet(wallet):
    _corrupt("UPDATE wallets_account SET credits_posted = credits_posted + 5 WHERE id = %s", wallet.pk)
    violations = reconcile_ledger()
    assert (1, "counters_mismatch") in {(v.invariant, v.code) for v in violations}
    mismatch = next(v for v in violations if v.code == "counters_mismatch")
    assert mismatch.ids == (wallet.pk,)
    assert "credits_posted is 1,005, transfers say 1,000" in mismatch.message
    assert (2, "balances_nonzero_sum") in _codes()


def test_a_corrupted_pending_counter_is_named(wallet):
    services.hold_create(wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM)
    _corrupt("UPDATE wallets_account SET debits_pending = 0 WHERE id = %s", wallet.pk)
    assert _codes() == {(1, "counters_mismatch")}


@pytest.mark.postgres  # SQLite has no CHECK guard against this, so this corruption is PostgreSQL-only here
def test_an_unflagged_overdraft_is_a_violation_but_a_flagged_one_is_not(wallet):
    _corrupt("SET CONSTRAINTS ALL IMMEDIATE")  # flush deferred FK checks so the table can be altered
    _corrupt("ALTER TABLE wallets_account DROP CONSTRAINT account_available_non_negative")  # rolled back
    _corrupt("UPDATE wallets_account SET debits_posted = 1500 WHERE id = %s", wallet.pk)
    assert (3, "overdrawn") in _codes()
    _corrupt("UPDATE wallets_account SET in_debt = TRUE WHERE id = %s", wallet.pk)
    assert (3, "overdrawn") not in _codes()


def test_a_hold_left_unresolved_past_its_timeout_and_a_sweep_is_a_violation(wallet):
    hold = services.hold_create(
        wallet=wallet, amount=300, key=key("hold"), actor=SYSTEM, timeout=timedelta(0)
    )
    assert reconcile_ledger() == []  # within the sweep's grace
    late = timezone.now() + reconcile.sweep_grace() + timedelta(seconds=1)
    stale = reconcile.check_holds_resolved_once_and_in_time(now=late)
    assert [(v.code, v.ids) for v in stale] == [("hold_outlived_timeout", (hold.pk,))]
    services.holds_expire()
    assert reconcile.check_holds_resolved_once_and_in_time(now=late) == []


def test_the_sweep_grace_defaults_to_two_beat_intervals():
    assert reconcile.sweep_grace() == timedelta(seconds=120)


def test_a_transfer_between_two_wallets_is_misshapen(wallet_factory):
    one, other = wallet_factory(tokens=10), wallet_factory(tokens=10)
    Transfer.objects.create(
        kind="topup", debit_account=one, credit_account=other, wallet=other, amount=1,
        idempotency_key=key("bad"), actor_kind="system",
    )  # fmt: skip
    assert (2, "transfer_misshapen") in _codes()


def test_other_apps_register_their_invariants_without_wallets_importing_them(wallet):
    def runs_have_one_settlement():
        return [Violation(5, "run_unsettled", "run 1 succeeded without a settlement", (1,))]

    register_check(runs_have_one_settlement)
    register_check(runs_have_one_settlement)
    try:
        assert [v.code for v in reconcile_ledger()] == ["run_unsettled"]
    finally:
        reconcile._CHECKS.pop(f"{__name__}.{runs_have_one_settlement.__qualname__}")


def test_a_check_that_cannot_run_is_reported_as_a_violation_not_skipped(wallet):
    def broken_check():
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM wallets_account")
        return []

    register_check(broken_check)
    try:
        violations = reconcile_ledger()
    finally:
        reconcile._CHECKS.pop(f"{__name__}.{broken_check.__qualname__}")
    assert [(v.invariant, v.code) for v in violations] == [(0, "check_failed")]
    assert "broken_check could not run" in violations[0].message
    assert reconcile_ledger() == []  # the failed query did not poison the transaction


def test_the_reconcile_command_prints_one_line_when_all_invariants_hold(wallet):
    out = StringIO()
    call_command("reconcile_ledger", stdout=out)
    assert out.getvalue().count("\n") == 1
    assert out.getvalue().startswith("Ledger consistent: 1 transfers over 1 wallets")


def test_the_reconcile_command_mentions_wallets_flagged_in_debt(wallet):
    services.clawback_debit(wallet=wallet, amount=1_500, key=key("clawback"), actor=SYSTEM)
    out = StringIO()
    call_command("reconcile_ledger", stdout=out)
    assert f"1 wallet(s) flagged in debt: {wallet.pk}" in out.getvalue()


def test_the_reconcile_command_exits_1_naming_each_violation(wallet):
    _corrupt("UPDATE wallets_account SET debits_posted = debits_posted + 7 WHERE id = %s", wallet.pk)
    err = StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("reconcile_ledger", stderr=err)
    assert failed.value.returncode == 1
    assert f"invariant 1 counters_mismatch: wallet {wallet.pk}" in err.getvalue()
    assert "invariant 2 balances_nonzero_sum" in err.getvalue()


def test_grant_tokens_credits_a_wallet_as_a_support_adjustment_by_the_cli(wallet):
    out = StringIO()
    call_command(
        "grant_tokens", wallet.merchant.slug, "250", "--reason", "Goodwill", "--ticket", "T-9", stdout=out
    )
    transfer = Transfer.objects.get(kind="adjustment")
    assert (transfer.amount, transfer.memo, transfer.reference) == (250, "Goodwill", "T-9")
    assert (transfer.actor_kind, transfer.actor_label.startswith("grant_tokens CLI (os user ")) == (
        "system",
        True,
    )
    assert reload(wallet).balance == 1_250
    assert "Credited 250 tokens" in out.getvalue()


def test_grant_tokens_with_a_negative_amount_debits(wallet):
    call_command("grant_tokens", wallet.merchant.slug, "-250", "--reason", "Duplicate", stdout=StringIO())
    assert reload(wallet).balance == 750


def test_grant_tokens_refuses_to_overdraw(wallet):
    with pytest.raises(CommandError, match="1,001 tokens and your wallet has 1,000 available"):
        call_command("grant_tokens", wallet.merchant.slug, "-1001", "--reason", "Too much")
    assert reload(wallet).balance == 1_000


def test_grant_tokens_run_twice_with_one_key_moves_once(wallet):
    for _ in range(2):
        call_command(
            "grant_tokens", wallet.merchant.slug, "5", "--reason", "x", "--key", "T-1", stdout=StringIO()
        )
    assert reload(wallet).balance == 1_005


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-store", "5", "--reason", "x"], "No merchant"),
        (["{slug}", "0", "--reason", "x"], "non-zero"),
        (["{slug}", "5", "--reason", " "], "reason is required"),
    ],
)
def test_grant_tokens_refuses_bad_input(wallet, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("grant_tokens", *[a.format(slug=wallet.merchant.slug) for a in args])
