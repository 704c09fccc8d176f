"""The balance mark: a spend runs the alert and auto-recharge checks only when it leaves the wallet below
the highest threshold that could fire, and always while an alert waits to be re-armed."""

import pytest

from tests.factories import MembershipFactory
from tests.wallets.helpers import SYSTEM, key, reload
from wallets import balance_events, services
from wallets.alerts import alert_settings_save
from wallets.models import BalanceAlert, RechargeSettings, TopupPack
from wallets.reconcile import reconcile_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def ledger_stays_consistent():
    yield
    assert reconcile_ledger() == []


@pytest.fixture
def wallet(db):
    """Topped up with 1,000 tokens: the default alert thresholds are 200 (20 %), 50 (5 %) and 0."""
    owner = MembershipFactory(role="owner")
    account = services.wallet_of(merchant=owner.merchant)
    services.topup_credit(wallet=account, amount=1_000, key=key("topup"), actor=SYSTEM)
    return reload(account)


def spend(wallet, tokens: int) -> int:
    hold = services.hold_create(wallet=wallet, amount=tokens, key=key("hold"), actor=SYSTEM)
    available = hold.balance_after - hold.held_after
    balance_events.wallet_spent_if_low(wallet_id=wallet.pk, available=available)
    return available


def alert_level(wallet) -> int | None:
    return BalanceAlert.objects.filter(wallet_id=wallet.pk).values_list("level", flat=True).first()


def test_the_mark_is_the_highest_alert_threshold(wallet):
    assert balance_events.balance_mark(wallet_id=wallet.pk) == 200


def test_a_spend_above_the_mark_runs_no_check(wallet):
    assert spend(wallet, 700) == 300

    assert alert_level(wallet) is None  # the alert check would have created the wallet's alert row


def test_a_spend_below_the_mark_raises_the_alert(wallet):
    spend(wallet, 850)

    assert alert_level(wallet) == 1


def test_a_raised_alert_is_checked_on_every_spend_until_it_is_re_armed(wallet):
    spend(wallet, 850)  # 150 left: the 20 % alert is raised
    assert balance_events.balance_mark(wallet_id=wallet.pk) == balance_events.ALWAYS

    services.topup_credit(wallet=wallet, amount=5_000, key=key("topup"), actor=SYSTEM)
    spend(wallet, 10)  # far above every threshold now, and still checked: the alert re-arms

    assert alert_level(wallet) == 0
    assert balance_events.balance_mark(wallet_id=wallet.pk) == 1_000  # 20 % of the new top-up


def test_saved_alert_settings_move_the_mark_at_once(wallet):
    assert balance_events.balance_mark(wallet_id=wallet.pk) == 200

    alert_settings_save(merchant=wallet.merchant, email_enabled=True, percents=[50], alert_at_zero=True)

    assert balance_events.balance_mark(wallet_id=wallet.pk) == 500


def test_an_auto_recharge_threshold_above_the_alerts_is_the_mark(wallet):
    pack = TopupPack.objects.create(name="Starter", tokens=10_000, price_cents=1_000, currency="usd")
    RechargeSettings.objects.create(
        wallet=wallet, enabled=True, threshold=700, pack=pack, payment_method_id="pm_card_visa"
    )

    assert balance_events.balance_mark(wallet_id=wallet.pk) == 700


def test_the_mark_is_cached_for_the_shipped_time(settings):
    assert settings.BALANCE_MARK_CACHE_SECONDS == 30.0
