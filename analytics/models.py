"""The operator's analytics read one fact table, rebuilt from the ledger and the runs (docs/analytics.md).

A row per finished run: what it was charged (the sum of its settle transfers), the revenue those tokens
carried (their FIFO cost basis) and what the provider billed for it. Nothing writes these rows but
`analytics.services.economics_refresh`; the ledger and the runs stay the source of truth.
"""

from decimal import Decimal

from django.db import models


class RunEconomics(models.Model):
    run_id = models.UUIDField(primary_key=True)
    merchant_id = models.BigIntegerField()
    tool = models.CharField(max_length=64)
    model = models.CharField(max_length=64)
    status = models.CharField(max_length=16)
    created_at = models.DateTimeField()
    week = models.DateField(help_text="Monday (UTC) of the week the run was created in.")
    tokens = models.BigIntegerField(default=0, help_text="Settled charges: the sum of its settle transfers.")
    promo_tokens = models.BigIntegerField(default=0, help_text="Of those, drawn from promotional credit.")
    revenue_usd = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    provider_cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    provider_input_tokens = models.BigIntegerField(default=0)
    provider_output_tokens = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "run economics"
        indexes = [
            models.Index(fields=["week", "tool"], name="economics_week_tool"),
            models.Index(fields=["tool", "merchant_id", "week"], name="economics_tool_store_week"),
            models.Index(fields=["created_at"], name="economics_created"),
        ]

    def __str__(self) -> str:
        return f"{self.tool} run {self.run_id}"


class StoreWeek(models.Model):
    """The fact table rolled up per store, tool, model, week and month: what the page reads.

    A week that straddles two months has a row for each month, so both the weekly and the monthly view
    are exact sums of these rows.
    """

    merchant_id = models.BigIntegerField()
    tool = models.CharField(max_length=64)
    model = models.CharField(max_length=64)
    week = models.DateField()
    month = models.DateField()
    runs = models.BigIntegerField(help_text="Succeeded runs.")
    failed_runs = models.BigIntegerField()
    tokens = models.BigIntegerField()
    revenue_usd = models.DecimalField(max_digits=18, decimal_places=8)
    provider_cost_usd = models.DecimalField(max_digits=18, decimal_places=8)
    first_week = models.DateField(
        null=True, help_text="The store's first week with a succeeded run of this tool: its cohort."
    )

    class Meta:
        indexes = [
            models.Index(fields=["week"], name="store_week_week"),
            models.Index(fields=["month"], name="store_week_month"),
            models.Index(fields=["first_week"], name="store_week_cohorts"),
        ]

    def __str__(self) -> str:
        return f"{self.tool} for store {self.merchant_id}, week of {self.week}"


class StoreMonth(models.Model):
    """StoreWeek summed per month: the monthly view reads a quarter of the rows."""

    merchant_id = models.BigIntegerField()
    tool = models.CharField(max_length=64)
    model = models.CharField(max_length=64)
    month = models.DateField()
    runs = models.BigIntegerField()
    failed_runs = models.BigIntegerField()
    tokens = models.BigIntegerField()
    revenue_usd = models.DecimalField(max_digits=18, decimal_places=8)
    provider_cost_usd = models.DecimalField(max_digits=18, decimal_places=8)

    class Meta:
        indexes = [models.Index(fields=["month"], name="store_month_month")]

    def __str__(self) -> str:
        return f"{self.tool} for store {self.merchant_id}, {self.month:%Y-%m}"


class BotWeek(models.Model):
    """Every store's bot conversations by the week (and month) they started, by outcome, as of the rebuild
    (the outcome rule: analytics.selectors.conversation_outcomes)."""

    week = models.DateField()
    month = models.DateField()
    resolved = models.BigIntegerField()
    pending = models.BigIntegerField()
    handed_over = models.BigIntegerField()
    open = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["week"], name="bot_week_week")]

    def __str__(self) -> str:
        return f"bot outcomes, week of {self.week}"


class EconomicsRefresh(models.Model):
    """When the fact table was last rebuilt, and how long it took."""

    finished_at = models.DateTimeField()
    seconds = models.FloatField()
    runs = models.BigIntegerField()

    class Meta:
        ordering = ["-finished_at"]

    def __str__(self) -> str:
        return f"refresh at {self.finished_at:%Y-%m-%d %H:%M} ({self.runs} runs)"
