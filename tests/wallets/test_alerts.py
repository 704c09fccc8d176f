"""Balance alerts (once per crossing, re-armed by a top-up) and sponsor alerts at 80 % and 100 % of a month;
the balance mark: a run's hold runs the alert and auto-recharge checks only when it leaves the wallet below
the highest threshold that could fire, and always while an alert waits to be re-armed."""

from datetime import date

import pytest
from django.urls import reverse

from merchants.models import OutboundEmail
from tests.factories import MembershipFactory
from tests.wallets.helpers import SYSTEM, key, reload
from wallets import alerts, balance_events, services
from wallets.alerts import alert_settings_save
from wallets.balance_events import wallet_spent
from wallets.models import BalanceAlert, RechargeSettings, SponsorshipAlertState, TopupPack
from wallets.reconcile import reconcile_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def ledger_stays_consistent():
    yield
    assert reconcile_ledger() == []


@pytest.fixture
def owner(db):
    return MembershipFactory(role="owner")


@pytest.fixture
def wallet(owner):
    """Topped up with 1,000 tokens: the default thresholds are 200 (20 %), 50 (5 %) and 0."""
    account = services.wallet_of(merchant=owner.merchant)
    services.topup_credit(wallet=account, amount=1_000, key=key("topup"), actor=SYSTEM)
    return reload(account)


def spend(wallet, tokens: int) -> None:
    services.hold_create(wallet=wallet, amount=tokens, key=key("hold"), actor=SYSTEM)
    wallet_spent(wallet_id=wallet.pk)


def alert_mails() -> list[OutboundEmail]:
    return list(OutboundEmail.objects.filter(template="balance_alert").order_by("id"))


def test_each_threshold_crossed_emails_the_owners_once(wallet, owner):
    spend(wallet, 700)  # 300 left: above every threshold
    assert alert_mails() == []

    spend(wallet, 150)  # 150 < 200
    spend(wallet, 10)  # still between 20 % and 5 %: no second email
    spend(wallet, 100)  # 40 < 50
    spend(wallet, 40)  # 0

    subjects = [mail.subject for mail in alert_mails()]
    assert len(subjects) == 3
    assert "below 20%" in subjects[0] and "below 5%" in subjects[1] and "run out" in subjects[2]
    assert {mail.to for mail in alert_mails()} == {owner.user.email}
    assert BalanceAlert.objects.get(wallet=wallet).level == 3


def test_a_released_hold_does_not_re_arm_an_alert_but_a_top_up_does(wallet):
    hold = services.hold_create(wallet=wallet, amount=900, key=key("hold"), actor=SYSTEM)
    wallet_spent(wallet_id=wallet.pk)
    services.hold_void(hold=hold, key=key("void"), actor=SYSTEM)
    spend(wallet, 900)  # the same crossing again, with no money added in between
    assert len(alert_mails()) == 1

    services.topup_credit(wallet=wallet, amount=10_000, key=key("topup"), actor=SYSTEM)
    spend(wallet, 1)  # the next check sees the top-up and re-arms (thresholds now 2,000 / 500 / 0)
    assert BalanceAlert.objects.get(wallet=wallet).level == 0
    spend(wallet, 9_000)
    assert len(alert_mails()) == 2


def test_owners_choose_the_thresholds_and_can_turn_the_email_off(wallet, owner):
    alerts.alert_settings_save(
        merchant=owner.merchant, email_enabled=False, percents=[50], alert_at_zero=False
    )
    spend(wallet, 600)

    assert alert_mails() == []
    assert BalanceAlert.objects.get(wallet=wallet).level == 1  # the banner still shows it
    assert [
        (t.tokens, t.percent) for t in alerts.thresholds(BalanceAlert.objects.get(wallet=wallet), basis=1_000)
    ] == [(500, 50)]


def test_every_dashboard_page_shows_the_banner_below_a_threshold(client, wallet, owner):
    client.force_login(owner.user)
    assert 'data-testid="balance-alert"' not in client.get(reverse("runs")).content.decode()

    spend(wallet, 900)

    for page in ("runs", "wallet"):
        html = client.get(reverse(page)).content.decode()
        assert 'data-testid="balance-alert"' in html
        assert "below 20% of your last top-up" in html


def test_the_alert_settings_form_saves_the_thresholds(client, wallet, owner):
    client.force_login(owner.user)

    client.post(
        reverse("wallet-alerts"), {"percents": "30, 10", "alert_at_zero": "on", "email_enabled": "on"}
    )
    client.post(reverse("wallet-alerts"), {"percents": "150"})  # refused: not a percentage below 100

    alert = BalanceAlert.objects.get(wallet=wallet)
    assert (alert.percents, alert.alert_at_zero, alert.email_enabled) == ([30, 10], True, True)


def test_a_sponsor_is_alerted_once_at_80_and_once_at_100_percent_each_month(owner):
    def used(tokens: int, month: date = date(2026, 12, 1)) -> int | None:
        return alerts.sponsorship_usage_changed(
            sponsorship_id=7, sponsor_merchant_id=owner.merchant.pk, used=tokens, limit=1_000, month=month
        )

    assert [used(500), used(800), used(900), used(1_000), used(1_000)] == [None, 1, None, 2, None]
    assert used(1_000, month=date(2027, 1, 1)) == 2  # a new month alerts again
    mails = OutboundEmail.objects.filter(template="sponsorship_alert")
    assert mails.count() == 3
    assert SponsorshipAlertState.objects.count() == 2


def test_a_sponsor_alert_never_raises_into_its_caller(owner):
    assert (
        alerts.sponsorship_usage_changed(sponsorship_id=8, sponsor_merchant_id=10**9, used=900, limit=1_000)
        is None
    )


def spend_if_low(wallet, tokens: int) -> int:
    """A run's hold: the balance checks run only below the wallet's mark."""
    hold = services.hold_create(wallet=wallet, amount=tokens, key=key("hold"), actor=SYSTEM)
    available = hold.balance_after - hold.held_after
    balance_events.wallet_spent_if_low(wallet_id=wallet.pk, available=available)
    return available


def alert_level(wallet) -> int | None:
    return BalanceAlert.objects.filter(wallet_id=wallet.pk).values_list("level", flat=True).first()


def test_the_mark_is_the_highest_alert_threshold(wallet):
    assert balance_events.balance_mark(wallet_id=wallet.pk) == 200


def test_a_spend_above_the_mark_runs_no_check(wallet):
    assert spend_if_low(wallet, 700) == 300

    assert alert_level(wallet) is None  # the alert check would have created the wallet's alert row


def test_a_spend_below_the_mark_raises_the_alert(wallet):
    spend_if_low(wallet, 850)

    assert alert_level(wallet) == 1


def test_a_raised_alert_is_checked_on_every_spend_until_it_is_re_armed(wallet):
    spend_if_low(wallet, 850)  # 150 left: the 20 % alert is raised
    assert balance_events.balance_mark(wallet_id=wallet.pk) == balance_events.ALWAYS

    services.topup_credit(wallet=wallet, amount=5_000, key=key("topup"), actor=SYSTEM)
    spend_if_low(wallet, 10)  # far above every threshold now, and still checked: the alert re-arms

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
