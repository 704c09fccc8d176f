"""Runs of AI tools and the batches bulk uploads create.

A run points at its hold and at the transfer that settled it (a charge, or a release); the ledger never
points back. Only the run engine (`agents.runs`) writes runs, and every status change is a conditional
UPDATE, so a worker, a duplicate delivery, recovery and a cancel can never both win. The run's state
table and what each field means for recovery are in docs/architecture.md.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from agents.runs.messages import error_text
from merchants.models import Merchant


class Batch(models.Model):
    """One bulk upload: many runs of one tool, checked against the wallet as one total up front."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: batch_merchant_newest starts with this column.
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="batches", db_index=False)
    tool = models.CharField(max_length=64)
    filename = models.CharField(max_length=255, blank=True)
    row_count = models.PositiveIntegerField()
    total_held = models.BigIntegerField(help_text="Sum of the runs' holds when the batch was created.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["merchant", "-created_at"], name="batch_merchant_newest")]

    def __str__(self) -> str:
        return f"{self.tool} batch of {self.row_count} ({self.created_at:%Y-%m-%d %H:%M})"


class Run(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELED = "canceled", _("Canceled")

    class Waiting(models.TextChoices):
        """Why a queued run is waiting again after it had started (empty: it has not started yet)."""

        NONE = "", "Not started"
        RETRYING = "retrying", "Retrying"
        WORKER_LOST = "worker_lost", "Waiting for a worker"
        HANDED_BACK = "handed_back", "Waiting for a worker"

    TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELED})

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: run_merchant_newest starts with this column.
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="runs", db_index=False)
    tool = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    input = models.JSONField()
    output = models.JSONField(null=True, blank=True)
    model = models.CharField(
        max_length=64, help_text="The tool's model; on success, the model the answer names."
    )
    price = models.ForeignKey(
        "wallets.Price", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    held = models.BigIntegerField(help_text="Tokens reserved: the most this run can cost.")
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost = models.BigIntegerField(null=True, blank=True, help_text="Tokens charged; never more than held.")
    uncharged = models.BigIntegerField(
        default=0,
        help_text="Usage cost above the hold that was not charged (the charge is capped at the hold).",
    )
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL: no key, not unique
    request_hash = models.CharField(max_length=64, blank=True)
    hold = models.OneToOneField("wallets.Transfer", on_delete=models.PROTECT, related_name="+")
    settlement = models.OneToOneField(
        "wallets.Transfer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The transfer that resolved the hold: a charge, or a release when nothing is owed.",
    )
    attempts = models.PositiveIntegerField(
        default=0, help_text="Claims taken: each model call, retry and recovery takes the next number."
    )
    retries = models.PositiveSmallIntegerField(
        default=0, help_text="Calls retried because the provider was busy (at most QWEN_MAX_RETRIES)."
    )
    recoveries = models.PositiveSmallIntegerField(
        default=0, help_text="Times taken back from a worker that stopped renewing its lease."
    )
    requeues = models.PositiveSmallIntegerField(
        default=0, help_text="Times re-enqueued after a lost message."
    )
    waiting = models.CharField(max_length=16, choices=Waiting.choices, default="", blank=True)
    retry_cause = models.CharField(max_length=64, blank=True, help_text="The last busy answer's code.")
    enqueued_at = models.DateTimeField(default=timezone.now)
    not_before = models.DateTimeField(null=True, blank=True, help_text="A retry is not claimed before this.")
    lease_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="While running: the worker renews this; lapsed, the run is taken back.",
    )
    deadline_at = models.DateTimeField(null=True, blank=True)
    cached_input_tokens = models.PositiveIntegerField(null=True, blank=True)
    usage_note = models.CharField(max_length=300, blank=True)
    # What the provider billed us for this run: every model call summed (a repaired answer's first call and
    # the calls of runs that then failed included; reasoning tokens are output), priced by ProviderPrice.
    provider_input_tokens = models.PositiveIntegerField(default=0)
    provider_cached_tokens = models.PositiveIntegerField(
        default=0, help_text="Of the provider input tokens, those served from its context cache."
    )
    provider_output_tokens = models.PositiveIntegerField(default=0)
    provider_cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal(0))
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # A plain id, not a foreign key: runs outlive revoked keys and agents does not depend on their model.
    api_key_id = models.BigIntegerField(null=True, blank=True)
    # No index of its own: run_batch_row starts with this column.
    batch = models.ForeignKey(
        Batch, on_delete=models.PROTECT, null=True, blank=True, related_name="runs", db_index=False
    )
    batch_row = models.PositiveIntegerField(null=True, blank=True, help_text="Line number in the CSV.")

    class Meta:
        ordering = ["-created_at"]
        permissions = [("refund_run", "Can refund a run's charge")]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_merchant_idempotency_key_unique",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed", "canceled"]),
                name="run_status_valid",
            ),
            models.CheckConstraint(condition=Q(held__gt=0), name="run_held_positive"),
            # The charge is capped at the hold: a run can never cost more than it reserved.
            models.CheckConstraint(
                condition=Q(cost__isnull=True) | (Q(cost__gte=0) & Q(cost__lte=F("held"))),
                name="run_cost_within_hold",
            ),
            # A finished run has resolved its hold; an unfinished one has not.
            models.CheckConstraint(
                condition=(Q(status__in=["queued", "running"]) & Q(settlement__isnull=True))
                | (Q(status__in=["succeeded", "failed", "canceled"]) & Q(settlement__isnull=False)),
                name="run_settled_iff_finished",
            ),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | (Q(cost__isnull=False) & Q(output__isnull=False)),
                name="run_succeeded_has_cost_and_output",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["failed", "canceled"]) | Q(cost__isnull=True) | Q(cost=0),
                name="run_unsuccessful_costs_nothing",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "-created_at"], name="run_merchant_newest"),
            models.Index(fields=["merchant", "tool", "-created_at"], name="run_merchant_tool_newest"),
            models.Index(fields=["deadline_at"], name="run_running_deadline", condition=Q(status="running")),
            models.Index(
                fields=["lease_expires_at"], name="run_running_lease", condition=Q(status="running")
            ),
            models.Index(fields=["enqueued_at"], name="run_queued_enqueued", condition=Q(status="queued")),
            models.Index(fields=["batch", "batch_row"], name="run_batch_row"),
        ]

    def __str__(self) -> str:
        return f"{self.tool} run {self.id} ({self.status})"

    @property
    def label(self) -> str:
        """What a merchant recognises the run by: the product or the brief it was about."""
        data = self.input if isinstance(self.input, dict) else {}
        return str(data.get("product_name") or data.get("brief") or data.get("message") or self.tool)

    @property
    def is_finished(self) -> bool:
        return self.status in self.TERMINAL

    WAITING_MESSAGES = {
        "retrying": _("The AI provider was busy, so this run will be tried again in a few seconds."),
        "worker_lost": _(
            "The worker writing this run stopped; it is waiting for another worker to finish it."
        ),
        "handed_back": _("The worker writing this run was restarted; it is waiting for another worker."),
    }

    @property
    def error_text(self) -> str:
        """The failure's message in the reader's language ("" when the run did not fail)."""
        return error_text(self.error_message)

    @property
    def waiting_message(self) -> str:
        """What a merchant reads while a started run waits in the queue again ("" otherwise)."""
        if self.status != self.Status.QUEUED or self.waiting not in self.WAITING_MESSAGES:
            return ""
        return str(self.WAITING_MESSAGES[self.waiting])  # in the reader's language


class Conversation(models.Model):
    """A customer's chat with the store's customer-service bot; handed to staff when the bot cannot help."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        NEEDS_HUMAN = "needs_human", _("Needs a human")
        CLOSED = "closed", _("Closed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: conversation_merchant_status starts with this column.
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="conversations", db_index=False
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    customer_ref = models.CharField(
        max_length=120, blank=True, help_text="The merchant's own id for the customer (optional)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    handed_over_at = models.DateTimeField(null=True, blank=True)
    # POST /api/v1/conversations' Idempotency-Key: a retried start answers the first conversation.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL: no key

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["open", "needs_human", "closed"]), name="conversation_status_valid"
            ),
            models.UniqueConstraint(
                fields=["merchant", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="conversation_merchant_idempotency_key_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "status", "-updated_at"], name="conversation_merchant_status"),
        ]

    def __str__(self) -> str:
        return f"conversation {self.id} ({self.status})"


class Message(models.Model):
    """One turn of a conversation. A flagged message (moderation) is kept but never replayed to the model."""

    class Role(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        ASSISTANT = "assistant", _("Assistant")
        STAFF = "staff", _("Staff")

    MAX_LENGTH = 4000

    # No index of its own: message_conversation_time starts with this column.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(max_length=MAX_LENGTH)
    run = models.ForeignKey(
        Run,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="messages",
        help_text="The run that answered this customer message, or that produced this assistant reply.",
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    flagged = models.BooleanField(default=False, help_text="Flagged by moderation: left out of the history.")
    sources = models.JSONField(default=list, blank=True)
    # The client's Idempotency-Key for a customer message: a retry answers the first message, whatever
    # happened to the conversation since (handed over, closed).
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL: no key
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["customer", "assistant", "staff"]), name="message_role_valid"
            ),
            # One assistant reply per run: a duplicate settlement hook can never post a reply twice.
            models.UniqueConstraint(
                fields=["run", "role"], condition=Q(run__isnull=False), name="message_run_role_unique"
            ),
            models.UniqueConstraint(
                fields=["conversation", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="message_conversation_idempotency_key_unique",
            ),
        ]
        indexes = [models.Index(fields=["conversation", "created_at"], name="message_conversation_time")]

    def __str__(self) -> str:
        return f"{self.role} message in {self.conversation_id}"


class ProviderPrice(models.Model):
    """What the model provider charges us, in USD per million tokens, effective from a moment.

    It lives here, below the analytics app, because a run prices its provider usage when its calls end.
    A new price is a new row; the row in force at a call is the latest `effective_from` not after it.
    """

    model = models.CharField(max_length=64, help_text="The model name the tools ask for, e.g. qwen-plus.")
    input_usd_per_million = models.DecimalField(max_digits=12, decimal_places=6)
    cached_input_usd_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, help_text="Input tokens the provider served from its context cache."
    )
    output_usd_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, help_text="Reasoning tokens are billed as output."
    )
    effective_from = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "effective_from"], name="provider_price_model_effective_unique"
            ),
            models.CheckConstraint(
                condition=Q(input_usd_per_million__gte=0)
                & Q(cached_input_usd_per_million__gte=0)
                & Q(output_usd_per_million__gte=0),
                name="provider_price_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.model}: ${self.input_usd_per_million}/${self.output_usd_per_million} per 1M "
            f"from {self.effective_from:%Y-%m-%d}"
        )

    def cost_usd(self, *, input_tokens: int, cached_tokens: int, output_tokens: int) -> Decimal:
        """USD for one call: uncached input, cached input and output at their own prices."""
        cached = min(cached_tokens, input_tokens)
        total = (
            Decimal(input_tokens - cached) * self.input_usd_per_million
            + Decimal(cached) * self.cached_input_usd_per_million
            + Decimal(output_tokens) * self.output_usd_per_million
        )
        return (total / Decimal(1_000_000)).quantize(Decimal("0.00000001"))
