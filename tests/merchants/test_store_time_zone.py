"""A store's time zone: set at sign-up from the browser, editable, and used by every date it reads."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from agents.models import Run
from merchants.actors import Actor
from merchants.models import Merchant
from tests.factories import PASSWORD, MembershipFactory
from wallets import services

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
# 20:00 UTC on 31 January is 04:00 on 1 February in Shanghai (UTC+8).
TRANSFER_AT = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)
# When the merchant looks: 10:00 on 1 February in Shanghai, 02:00 on 1 February in UTC.
NOW = datetime(2026, 2, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """Ledger rows written at a chosen instant (the services stamp them with timezone.now()), and "now"
    for the pages that follow."""

    def at(when: datetime) -> None:
        monkeypatch.setattr("django.utils.timezone.now", lambda: when)

    return at, at


def _store(client, clock, *, time_zone: str):
    write_at, look_at = clock
    membership = MembershipFactory(merchant__time_zone=time_zone)
    merchant = membership.merchant
    wallet = services.wallet_of(merchant=merchant)
    write_at(datetime(2026, 1, 2, tzinfo=UTC))
    services.promotion_credit(wallet=wallet, amount=100_000, key=f"{merchant.pk}:fund", actor=SYSTEM)
    write_at(TRANSFER_AT)
    hold = services.hold_create(wallet=wallet, amount=2_000, key=f"{merchant.pk}:hold", actor=SYSTEM)
    settlement = services.hold_post(hold=hold, amount=1_234, key=f"{merchant.pk}:settle", actor=SYSTEM)
    Run.objects.create(
        merchant=merchant,
        tool="listing-writer",
        status="succeeded",
        input={"product_name": "Linen apron"},
        output={},
        model="qwen-plus",
        held=2_000,
        cost=1_234,
        hold=hold,
        settlement=settlement,
        finished_at=TRANSFER_AT,
    )
    client.force_login(membership.user)
    look_at(NOW)
    return merchant


def _csv_rows(client, query: str = "") -> list[dict]:
    response = client.get(reverse("wallet-statement-csv") + query)
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


def _charge_rows(rows: list[dict]) -> list[dict]:
    # The header may carry labels (issue 15's wording half); the timestamp is the second column either way.
    return [row for row in rows if "1234" in "".join(row.values()).replace(",", "")]


def test_a_shanghai_store_sees_a_late_january_utc_transfer_on_1_february(client, clock):
    _store(client, clock, time_zone="Asia/Shanghai")

    page = client.get(reverse("wallet")).content.decode()
    assert "2026-02-01 04:00:00" in page
    assert "2026-01-31 20:00" not in page

    (charge,) = _charge_rows(_csv_rows(client))
    assert "2026-02-01T04:00:00+08:00" in charge.values()


def test_a_shanghai_store_counts_it_in_this_month_and_on_1_february_in_the_chart(client, clock):
    _store(client, clock, time_zone="Asia/Shanghai")

    page = client.get(reverse("home")).content.decode()

    assert 'data-testid="used-this-month">1,234<' in page
    assert 'title="Feb 1: 1,234 tokens"' in page
    assert "Jan 31: 1,234" not in page


def test_a_utc_store_keeps_the_same_transfer_in_january(client, clock):
    _store(client, clock, time_zone="UTC")

    home = client.get(reverse("home")).content.decode()
    assert 'data-testid="used-this-month">0<' in home
    assert 'title="Jan 31: 1,234 tokens"' in home
    assert "2026-01-31 20:00:00" in client.get(reverse("wallet")).content.decode()


def test_the_statement_date_filter_uses_the_stores_days(client, clock):
    _store(client, clock, time_zone="Asia/Shanghai")

    rows = _csv_rows(client, "?since=2026-02-01&until=2026-02-01")

    assert len(_charge_rows(rows)) == 1
    assert _charge_rows(_csv_rows(client, "?until=2026-01-31")) == []


def test_the_api_keeps_utc_for_a_shanghai_store(client, clock):
    _store(client, clock, time_zone="Asia/Shanghai")

    response = client.get("/api/v1/wallet/transfers")

    assert response.status_code == 200, response.content
    assert "2026-01-31T20:00:00Z" in response.content.decode()


def test_sign_up_takes_the_browsers_time_zone(client):
    client.post(
        reverse("signup"),
        {
            "store_name": "Hangzhou Tea",
            "email": "tea@example.com",
            "password": PASSWORD,
            "time_zone": "Asia/Shanghai",
        },
    )

    assert Merchant.objects.get(name="Hangzhou Tea").time_zone == "Asia/Shanghai"


@pytest.mark.parametrize("sent", ["", "Mars/Olympus_Mons", "x" * 200])
def test_sign_up_with_no_or_an_unknown_time_zone_starts_in_utc(client, sent):
    response = client.post(
        reverse("signup"),
        {"store_name": "Tea", "email": "tea@example.com", "password": PASSWORD, "time_zone": sent},
    )

    assert response.status_code == 302
    assert Merchant.objects.get(name="Tea").time_zone == "UTC"


def test_the_store_profile_edits_the_time_zone_and_refuses_an_unknown_one(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    url = reverse("store-profile")
    form = {
        "brand_voice": "",
        "default_language": "en",
        "knowledge_base": "",
        "name": membership.merchant.name,
    }

    bad = client.post(url, {**form, "time_zone": "Mars/Olympus_Mons"})
    assert bad.status_code == 200 and "time_zone" in bad.context["form"].errors
    good = client.post(url, {**form, "time_zone": "Asia/Shanghai"})

    assert good.status_code == 302
    membership.merchant.refresh_from_db()
    assert membership.merchant.time_zone == "Asia/Shanghai"


def test_the_sign_up_page_carries_the_hidden_browser_time_zone_field(client):
    page = client.get(reverse("signup")).content.decode()

    assert 'name="time_zone"' in page and "data-browser-time-zone" in page
