import csv
import io

import pytest
from django.urls import reverse

from merchants.actors import Actor
from tests.factories import MembershipFactory
from wallets import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_with_ledger(client):
    membership = MembershipFactory()
    wallet = services.wallet_of(merchant=membership.merchant)
    actor = Actor.system("test")
    services.promotion_credit(wallet=wallet, amount=10_000, key="page:grant", actor=actor, memo="Welcome")
    hold = services.hold_create(wallet=wallet, amount=3_000, key="page:hold", actor=actor)
    services.hold_post(hold=hold, amount=1_200, key="page:settle", actor=actor, memo="Listing run")
    services.adjustment_create(wallet=wallet, amount=-100, reason="=HYPERLINK(evil)", actor=actor)
    client.force_login(membership.user)
    return membership


def test_the_wallet_page_shows_balance_and_the_statement_newest_first(client, member_with_ledger):
    page = client.get(reverse("wallet")).content.decode()
    statement = page[page.rindex("<tbody>") :]

    assert "8,700" in page
    assert statement.index("Support adjustment") < statement.index("Charge") < statement.index("Promotion")


def test_the_statement_filters_by_kind(client, member_with_ledger):
    page = client.get(reverse("wallet"), {"kind": "settle"}).content.decode()

    assert "Listing run" in page
    assert "Welcome" not in page


def test_the_csv_export_matches_the_ledger_and_defuses_formulas(client, member_with_ledger):
    response = client.get(reverse("wallet-statement-csv"))
    content = b"".join(response.streaming_content)
    assert content.startswith("\ufeff".encode())  # so Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))

    # The kinds as the statement page names them, not the stored codes.
    assert [row["kind"] for row in rows] == ["Support adjustment", "Charge", "Hold", "Promotion"]
    assert sum(int(row["tokens"]) for row in rows) == 8_700
    assert rows[0]["memo"].startswith("'=")


def test_another_merchants_ledger_never_appears(client, member_with_ledger):
    other = MembershipFactory()
    services.promotion_credit(
        wallet=services.wallet_of(merchant=other.merchant),
        amount=777_777,
        key="page:other",
        actor=Actor.system("test"),
        memo="Other store",
    )

    page = client.get(reverse("wallet")).content.decode()
    export = b"".join(client.get(reverse("wallet-statement-csv")).streaming_content).decode()

    assert "777,777" not in page and "Other store" not in page
    assert "777777" not in export
