"""The ledger: accounts and immutable transfers, modelled on TigerBeetle's two-phase transfers.

Only `wallets.services` writes these rows. Counters live on merchant wallets only; system accounts
(issuance, promotions, support, consumption) have none, so no single row is hot for every merchant.
"""

import math
import uuid
from decimal import Decimal, localcontext

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from merchants.actors import ActorKind
from merchants.models import Merchant


class LedgerImmutable(Exception):
    """Raised when code tries to change or delete a transfer; PostgreSQL enforces the same with a trigger."""


class Account(models.Model):
    class Kind(models.TextChoices):
        WALLET = "wallet", "Merchant wallet"
        ISSUANCE = "issuance", "Issuance (bought tokens)"
        PROMOTIONS = "promotions", "Promotions"
        SUPPORT = "support", "Support adjustments"
        CONSUMPTION = "consumption", "Consumption (AI use)"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    code = models.CharField(
        max_length=64, unique=True, help_text="'wallet:<merchant id>' or the system kind."
    )
    merchant = models.OneToOneField(
        Merchant, on_delete=models.PROTECT, null=True, blank=True, related_name="wallet"
    )
    credits_posted = models.BigIntegerField(default=0)
    debits_posted = models.BigIntegerField(default=0)
    debits_pending = models.BigIntegerField(default=0)
    # Set only by a Stripe clawback that takes a wallet below zero; flagged for support, never by a hold.
    in_debt = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(credits_posted__gte=0) & Q(debits_posted__gte=0) & Q(debits_pending__gte=0),
                name="account_counters_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(in_debt=True) | Q(credits_posted__gte=F("debits_posted") + F("debits_pending")),
                name="account_available_non_negative",
            ),
            models.CheckConstraint(
                condition=(Q(kind="wallet") & Q(merchant__isnull=False))
                | (~Q(kind="wallet") & Q(merchant__isnull=True)),
                name="account_wallet_has_merchant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant} wallet" if self.merchant_id else self.get_kind_display()

    @property
    def balance(self) -> int:
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        return self.credits_posted - self.debits_posted - self.debits_pending


class TransferQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise LedgerImmutable("Transfers are immutable; correct a mistake with a new transfer.")

    def delete(self):
        raise LedgerImmutable("Transfers are immutable; correct a mistake with a new transfer.")


class Transfer(models.Model):
    class Kind(models.TextChoices):
        TOPUP = "topup", "Top-up"
        PROMOTION = "promotion", "Promotion"
        ADJUSTMENT = "adjustment", "Support adjustment"
        HOLD = "hold", "Hold"
        SETTLE = "settle", "Charge"
        VOID = "void", "Hold released"
        EXPIRE = "expire", "Hold expired"
        REFUND = "refund", "Refund"
        CLAWBACK = "clawback", "Payment clawback"

    ActorKind = ActorKind

    # Kinds that move posted balances; a HOLD only reserves, VOID and EXPIRE only release.
    POSTED_KINDS = frozenset({"topup", "promotion", "adjustment", "settle", "refund", "clawback"})
    RESOLVING_KINDS = frozenset({"settle", "void", "expire"})

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    debit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    credit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    # The merchant wallet this transfer touches: the statement is one index range scan.
    wallet = models.ForeignKey(Account, on_delete=models.PROTECT, null=True, related_name="transfers")
    amount = models.BigIntegerField()
    pending = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="resolution",
        help_text="The hold this transfer posts, voids or expires; unique, so a hold resolves once.",
    )
    idempotency_key = models.CharField(max_length=255, unique=True)
    timeout_at = models.DateTimeField(null=True, blank=True)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    balance_after = models.BigIntegerField(null=True, blank=True)
    held_after = models.BigIntegerField(null=True, blank=True)
    memo = models.CharField(max_length=500, blank=True)
    reference = models.CharField(max_length=255, blank=True, help_text="Ticket, Stripe object or run id.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = TransferQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="transfer_amount_positive"),
            models.CheckConstraint(
                condition=~Q(debit_account=F("credit_account")), name="transfer_accounts_differ"
            ),
            models.CheckConstraint(
                condition=Q(kind="hold", timeout_at__isnull=False) | ~Q(kind="hold"),
                name="transfer_hold_has_timeout",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["settle", "void", "expire"], pending__isnull=False)
                | (~Q(kind__in=["settle", "void", "expire"]) & Q(pending__isnull=True)),
                name="transfer_resolution_has_pending",
            ),
        ]
        indexes = [
            models.Index(fields=["wallet", "-id"], name="transfer_wallet_newest"),
            models.Index(fields=["timeout_at"], name="transfer_hold_timeout", condition=Q(kind="hold")),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} ({self.idempotency_key})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerImmutable("Transfers are immutable; correct a mistake with a new transfer.")
        # A new instance given an existing pk would otherwise be saved as an UPDATE of that row.
        kwargs.update(force_insert=True, force_update=False, update_fields=None)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerImmutable("Transfers are immutable; correct a mistake with a new transfer.")

    @property
    def is_posted(self) -> bool:
        return self.kind in self.POSTED_KINDS

    @property
    def actor_shown(self) -> str:
        """Who moved the tokens, as a merchant may read it: staff are "Tokenhub support" (older rows carried
        the staff member's email in actor_label)."""
        if self.actor_kind == ActorKind.STAFF:
            from merchants.actors import STAFF_LABEL

            return STAFF_LABEL
        return self.actor_label or self.get_actor_kind_display()

    @property
    def signed_amount(self) -> int:
        """The change to the wallet's posted balance: what a merchant's statement shows."""
        if not self.is_posted or self.wallet_id is None:
            return 0
        return self.amount if self.credit_account_id == self.wallet_id else -self.amount


class Price(models.Model):
    """Wallet tokens per model token, effective from a moment; a run records the row it used."""

    model = models.CharField(max_length=64)
    input_weight = models.DecimalField(max_digits=12, decimal_places=6)
    output_weight = models.DecimalField(max_digits=12, decimal_places=6)
    effective_from = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "effective_from"], name="price_model_effective_unique"),
            models.CheckConstraint(
                condition=Q(input_weight__gt=0) & Q(output_weight__gt=0), name="price_weights_positive"
            ),
        ]
        ordering = ["model", "-effective_from"]

    def __str__(self) -> str:
        return f"{self.model}: {self.input_weight}/{self.output_weight} from {self.effective_from:%Y-%m-%d}"

    def cost(self, *, input_tokens: int, output_tokens: int) -> int:
        """ceil(in * w_in + out * w_out), in exact decimals: a fraction of a token is charged as one."""
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError("Token counts cannot be negative.")
        # The default 28-digit context would round (possibly down) a product of a huge count and a
        # 6-decimal weight; with enough digits every product and sum here is exact.
        with localcontext(prec=80):
            # str(): a weight typed in as a float (0.1) means 0.1, not its binary approximation.
            weight_in, weight_out = Decimal(str(self.input_weight)), Decimal(str(self.output_weight))
            exact = Decimal(input_tokens) * weight_in + Decimal(output_tokens) * weight_out
            return math.ceil(exact)


class TopupPack(models.Model):
    name = models.CharField(max_length=80)
    tokens = models.PositiveBigIntegerField()
    price_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    active = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "price_cents"]
        constraints = [models.CheckConstraint(condition=Q(tokens__gt=0), name="topup_pack_tokens_positive")]

    def __str__(self) -> str:
        return f"{self.name}: {self.tokens:,} tokens for {self.price_cents / 100:.2f} {self.currency.upper()}"


class AdjustmentRequest(models.Model):
    """A support adjustment above the approval threshold waits here for a second staff member."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved and posted"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired undecided"

    wallet = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="adjustment_requests")
    amount = models.BigIntegerField(help_text="Tokens; negative debits the wallet.")
    reason = models.TextField()
    ticket_reference = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    transfer = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="adjustment_request_nonzero"),
            # Four eyes, kept by the database too: nobody decides their own request.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="adjustment_request_second_person",
            ),
            # Approved means posted: the transfer exists exactly when the status says so.
            models.CheckConstraint(
                condition=Q(status="approved", transfer__isnull=False, decided_by__isnull=False)
                | Q(status="rejected", transfer__isnull=True, decided_by__isnull=False)
                | Q(status="pending", transfer__isnull=True, decided_by__isnull=True)
                | Q(status="expired", transfer__isnull=True, decided_by__isnull=True),
                name="adjustment_request_status_consistent",
            ),
        ]
        ordering = ["-created_at"]
        permissions = [("approve_adjustmentrequest", "Can approve a large balance adjustment")]

    def __str__(self) -> str:
        return f"{self.amount:+,} for {self.wallet} ({self.get_status_display()})"


class TopupPayment(models.Model):
    """One Stripe Checkout Session for one pack. Tokens come from this row, never from event metadata."""

    class Status(models.TextChoices):
        CREATED = "created", "Payment pending"
        PAID = "paid", "Paid"
        REFUNDED = "refunded", "Refunded"
        DISPUTED = "disputed", "Disputed"
        EXPIRED = "expired", "Checkout expired"
        FAILED = "failed", "Payment failed"

    # Statuses reached only through fulfilment: each has exactly one top-up transfer (invariant 6).
    FULFILLED = ("paid", "refunded", "disputed")

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="topup_payments")
    pack = models.ForeignKey(TopupPack, on_delete=models.PROTECT, related_name="+")
    # Copied from the pack when the session is created: staff may edit the pack while the buyer pays.
    tokens = models.PositiveBigIntegerField()
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    # Our own id for Stripe: the idempotency key and client_reference_id; exists before the session does.
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Null only between inserting the row and Stripe answering; the row exists first so that a webhook
    # can never arrive for a session we have not recorded.
    checkout_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CREATED)
    transfer = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="topup_payment"
    )
    refunded_cents = models.PositiveIntegerField(default=0, help_text="Highest cumulative refund seen.")
    tokens_clawed_back = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(tokens__gt=0), name="topup_payment_tokens_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["created", "expired", "failed"], transfer__isnull=True)
                | Q(status__in=["paid", "refunded", "disputed"], transfer__isnull=False),
                name="topup_payment_fulfilled_has_transfer",
            ),
            models.CheckConstraint(
                condition=Q(tokens_clawed_back__lte=F("tokens")), name="topup_payment_clawback_bounded"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant} {self.tokens:,} tokens ({self.get_status_display()})"


class StripeEvent(models.Model):
    """A Stripe event we acted on, inserted in the same transaction as its effect: a replay finds it."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
