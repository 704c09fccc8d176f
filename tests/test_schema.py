"""The schema our migrations build."""

import pytest
from django.apps import apps
from django.db import connection

pytestmark = pytest.mark.django_db

OUR_APPS = ("merchants", "wallets", "agents", "widgets", "analytics")

# Pairs of plain B-tree indexes on one table where the first one's columns (and operator classes) begin
# the second's: every query the first serves, the second serves too, and each write maintains both.
REDUNDANT_INDEXES = """
SELECT t.relname, a.relname, b.relname
FROM pg_index ia
JOIN pg_index ib ON ib.indrelid = ia.indrelid AND ib.indexrelid <> ia.indexrelid
JOIN pg_class a ON a.oid = ia.indexrelid
JOIN pg_class b ON b.oid = ib.indexrelid
JOIN pg_class t ON t.oid = ia.indrelid
WHERE t.relname = ANY(%s)
  AND NOT ia.indisunique
  AND ia.indpred IS NULL AND ib.indpred IS NULL
  AND ia.indexprs IS NULL AND ib.indexprs IS NULL
  AND ia.indnatts <= ib.indnatts
  AND array_to_string((ib.indkey::int2[])[0:ia.indnatts - 1], ' ') = array_to_string(ia.indkey::int2[], ' ')
  AND array_to_string((ib.indclass::oid[])[0:ia.indnatts - 1], ' ')
      = array_to_string(ia.indclass::oid[], ' ')
  AND array_to_string((ib.indoption::int2[])[0:ia.indnatts - 1], ' ')
      = array_to_string(ia.indoption::int2[], ' ')
ORDER BY 1, 2
"""


def _our_tables() -> list[str]:
    return [model._meta.db_table for label in OUR_APPS for model in apps.get_app_config(label).get_models()]


def _redundant_indexes() -> list[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(REDUNDANT_INDEXES, [_our_tables()])
        return cursor.fetchall()


@pytest.mark.postgres
def test_no_index_of_ours_is_the_start_of_another_one():
    # A foreign key's own index beside a composite index led by the same column is one more B-tree every
    # insert of a run or a transfer writes to, for no read.
    assert _redundant_indexes() == []


@pytest.mark.postgres
def test_the_redundancy_check_finds_an_index_another_one_starts_with():
    with connection.cursor() as cursor:
        cursor.execute("CREATE INDEX test_transfer_wallet_alone ON wallets_transfer (wallet_id)")
    assert (
        "wallets_transfer",
        "test_transfer_wallet_alone",
        "transfer_wallet_newest",
    ) in _redundant_indexes()


@pytest.mark.postgres
def test_an_index_of_other_columns_or_order_is_not_called_redundant():
    with connection.cursor() as cursor:
        cursor.execute("CREATE INDEX test_transfer_wallet_descending ON wallets_transfer (wallet_id DESC)")
        cursor.execute("CREATE INDEX test_transfer_memo ON wallets_transfer (memo)")
    assert _redundant_indexes() == []


def test_every_constraint_and_index_a_model_declares_is_in_the_database():
    # Django's AlterField once dropped the partial unique index that allows one in-flight recharge per
    # wallet, while the migration state still listed it: the models said guarded, the database was not.
    missing = []
    with connection.cursor() as cursor:
        for label in OUR_APPS:
            for model in apps.get_app_config(label).get_models():
                present = connection.introspection.get_constraints(cursor, model._meta.db_table)
                declared = [*model._meta.constraints, *model._meta.indexes]
                missing += [
                    (model._meta.db_table, item.name) for item in declared if item.name not in present
                ]
    assert missing == []
