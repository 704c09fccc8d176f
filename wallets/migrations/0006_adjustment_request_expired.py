from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("wallets", "0005_topup_payment_expired_failed"),
    ]

    operations = [
        migrations.AlterField(
            model_name="adjustmentrequest",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Waiting for approval"),
                    ("approved", "Approved and posted"),
                    ("rejected", "Rejected"),
                    ("expired", "Expired undecided"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.RemoveConstraint(
            model_name="adjustmentrequest",
            name="adjustment_request_status_consistent",
        ),
        migrations.AddConstraint(
            model_name="adjustmentrequest",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("decided_by__isnull", False), ("status", "approved"), ("transfer__isnull", False)),
                    models.Q(("decided_by__isnull", False), ("status", "rejected"), ("transfer__isnull", True)),
                    models.Q(("decided_by__isnull", True), ("status", "pending"), ("transfer__isnull", True)),
                    models.Q(("decided_by__isnull", True), ("status", "expired"), ("transfer__isnull", True)),
                    _connector="OR",
                ),
                name="adjustment_request_status_consistent",
            ),
        ),
    ]
