from django.db import migrations

IMMUTABLE_FUNCTION = """
CREATE OR REPLACE FUNCTION wallets_transfer_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger transfers are immutable: %% on wallets_transfer rejected', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$ LANGUAGE plpgsql;
"""
IMMUTABLE_TRIGGER = """
CREATE TRIGGER wallets_transfer_no_update_or_delete
    BEFORE UPDATE OR DELETE ON wallets_transfer
    FOR EACH ROW EXECUTE FUNCTION wallets_transfer_immutable();
"""
DROP = """
DROP TRIGGER IF EXISTS wallets_transfer_no_update_or_delete ON wallets_transfer;
DROP FUNCTION IF EXISTS wallets_transfer_immutable();
"""


def install_immutability(apps, schema_editor):
    # PostgreSQL only; on SQLite the model and queryset refuse the same writes.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(IMMUTABLE_FUNCTION)
        schema_editor.execute(IMMUTABLE_TRIGGER)


def remove_immutability(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


def reference_data(apps, schema_editor):
    from wallets.bootstrap import reference_data_ensure

    reference_data_ensure(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(install_immutability, remove_immutability),
        migrations.RunPython(reference_data, migrations.RunPython.noop),
    ]
