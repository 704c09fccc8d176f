"""Migration operations Django's own ones get wrong for us."""

from __future__ import annotations

from django.db import migrations


def fk_index_dropped(
    alter: migrations.AlterField, *, table: str, column: str, index: str
) -> migrations.SeparateDatabaseAndState:
    """`alter` (a foreign key turned `db_index=False`) that drops that key's own index and nothing else.

    Django's AlterField, asked for this, drops every single-column B-tree on the column that is not a
    Meta index — the index behind a partial UniqueConstraint included (it took the guard that allows one
    in-flight recharge per wallet) — and drops and re-adds the foreign key, which re-checks every row.
    """
    return migrations.SeparateDatabaseAndState(
        state_operations=[alter],
        database_operations=[
            migrations.RunSQL(
                f'DROP INDEX IF EXISTS "{index}"',
                reverse_sql=f'CREATE INDEX "{index}" ON "{table}" ("{column}")',
            )
        ],
    )
