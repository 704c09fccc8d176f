"""Transfers are never edited or deleted: the ORM refuses, and on PostgreSQL so does the database."""

import pytest
from django.db import DatabaseError, connection, transaction

from tests.wallets.helpers import SYSTEM, key
from wallets import services
from wallets.models import LedgerImmutable, Transfer

pytestmark = pytest.mark.django_db


@pytest.fixture
def transfer(wallet):
    return services.topup_credit(wallet=wallet, amount=77, key=key("topup"), actor=SYSTEM)


def _unchanged(transfer: Transfer) -> bool:
    row = Transfer.objects.filter(pk=transfer.pk).values_list("amount", "memo").get()
    return row == (transfer.amount, transfer.memo)


def test_saving_a_changed_transfer_is_refused(transfer):
    transfer.amount = 1
    with pytest.raises(LedgerImmutable):
        transfer.save()
    assert Transfer.objects.get(pk=transfer.pk).amount == 77


def test_deleting_a_transfer_is_refused(transfer):
    with pytest.raises(LedgerImmutable):
        transfer.delete()
    with pytest.raises(LedgerImmutable):
        Transfer.objects.filter(pk=transfer.pk).delete()
    assert Transfer.objects.filter(pk=transfer.pk).exists()


def test_a_queryset_update_of_transfers_is_refused(transfer):
    with pytest.raises(LedgerImmutable):
        Transfer.objects.filter(pk=transfer.pk).update(amount=1)
    assert _unchanged(transfer)


def test_a_new_instance_with_an_existing_id_cannot_overwrite_that_row(transfer):
    copy = Transfer.objects.get(pk=transfer.pk)
    copy._state.adding = True
    copy.memo = "rewritten"
    with pytest.raises(DatabaseError), transaction.atomic():
        copy.save()  # an INSERT, so the primary key collides instead of the row changing
    assert _unchanged(transfer)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE wallets_transfer SET amount = 1 WHERE id = %s",
        "UPDATE wallets_transfer SET memo = 'edited' WHERE id = %s",
        "DELETE FROM wallets_transfer WHERE id = %s",
    ],
)
def test_the_database_rejects_raw_updates_and_deletes_of_transfers(transfer, statement):
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [transfer.pk])
    assert _unchanged(transfer)


@pytest.mark.postgres
def test_the_database_rejects_an_overdraft_written_with_raw_sql(wallet):
    overdraw = "UPDATE wallets_account SET debits_pending = credits_posted + 1 WHERE id = %s"
    with pytest.raises(DatabaseError, match="account_available_non_negative"), transaction.atomic():
        connection.cursor().execute(overdraw, [wallet.pk])
    wallet.refresh_from_db()
    assert wallet.debits_pending == 0
