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
from django.utils.translation import gettext_lazy as _

from merchants.actors import ActorKind
from merchants.models import Merchant


class LedgerImmutable(Exception):
    """Raised when code tries to change or delete a transfer; PostgreSQL enforces the same with a trigger."""


class Account(models.Model):
    class Kind(models.TextChoices):
        WALLET = "wallet", _("Merchant wallet")
        PROMO = "promo", _("Promotional credits")
        ISSUANCE = "issuance", _("Issuance (bought tokens)")
        PROMOTIONS = "promotions", _("Promotions")
        SUPPORT = "support", _("Support adjustments")
        CONSUMPTION = "consumption", _("Consumption (AI use)")

    # A merchant owns its wallet (paid and granted tokens) and any number of promotional credit blocks,
    # each with its own counters and expiry; every other account is a system account.
    MERCHANT_KINDS = ("wallet", "promo")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    code = models.CharField(
        max_length=160, unique=True, help_text="'wallet:<merchant id>', 'promo:<cause>' or the system kind."
    )
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, null=True, blank=True, related_name="accounts"
    )
    # Promotional credit blocks only: after this moment the block lends nothing to new holds, and the
    # sweeper moves what is left back to the promotions account with a transfer.
    expires_at = models.DateTimeField(null=True, blank=True)
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
                condition=(Q(kind__in=["wallet", "promo"]) & Q(merchant__isnull=False))
                | (~Q(kind__in=["wallet", "promo"]) & Q(merchant__isnull=True)),
                name="account_merchant_kinds_have_merchant",
            ),
            models.CheckConstraint(
                condition=Q(kind="promo", expires_at__isnull=False)
                | (~Q(kind="promo") & Q(expires_at__isnull=True)),
                name="account_promo_expires",
            ),
            # One wallet per merchant; promotional blocks are as many as were granted.
            models.UniqueConstraint(
                fields=["merchant"], condition=Q(kind="wallet"), name="account_one_wallet"
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="account_promo_expiry", condition=Q(kind="promo")),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.PROMO:
            return f"{self.merchant} promotional credits until {self.expires_at:%Y-%m-%d}"
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
        TOPUP = "topup", _("Top-up")
        PROMOTION = "promotion", _("Promotion")
        ADJUSTMENT = "adjustment", _("Support adjustment")
        HOLD = "hold", _("Hold")
        SETTLE = "settle", _("Charge")
        VOID = "void", _("Hold released")
        EXPIRE = "expire", _("Hold expired")
        REFUND = "refund", _("Refund")
        CLAWBACK = "clawback", _("Payment clawback")
        PROMO_EXPIRE = "promo_expire", _("Promotional credits expired")

    ActorKind = ActorKind

    # Kinds that move posted balances; a HOLD only reserves, VOID and EXPIRE only release.
    POSTED_KINDS = frozenset(
        {"topup", "promotion", "adjustment", "settle", "refund", "clawback", "promo_expire"}
    )
    RESOLVING_KINDS = frozenset({"settle", "void", "expire"})

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    debit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    credit_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    # The merchant account this transfer touches (a wallet or a promotional block): its counters move.
    # No index of its own: transfer_wallet_newest starts with this column.
    wallet = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, related_name="transfers", db_index=False
    )
    # A sponsored run's hold and resolution: the sponsor's wallet pays (`wallet`), the store that ran the
    # tool is the beneficiary, and the month of the sponsorship whose limit the tokens count against.
    # No index of its own: transfer_beneficiary_newest starts with this column.
    beneficiary = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sponsored_transfers",
        db_index=False,
    )
    sponsorship_month = models.ForeignKey(
        "SponsorshipMonth", on_delete=models.PROTECT, null=True, blank=True, related_name="transfers"
    )
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
    # Not a column: wallets.funding sets it on the holds it creates, so `source` needs no query for them.
    known_source: str | None = None

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
            models.CheckConstraint(
                condition=Q(beneficiary__isnull=True, sponsorship_month__isnull=True)
                | Q(
                    beneficiary__isnull=False,
                    sponsorship_month__isnull=False,
                    kind__in=["hold", "settle", "void", "expire"],
                ),
                name="transfer_sponsored_has_month",
            ),
        ]
        indexes = [
            models.Index(fields=["wallet", "-id"], name="transfer_wallet_newest"),
            models.Index(fields=["beneficiary", "-id"], name="transfer_beneficiary_newest"),
            models.Index(fields=["timeout_at"], name="transfer_hold_timeout", condition=Q(kind="hold")),
            # A run's hold parts, found by the run id they carry.
            models.Index(fields=["reference"], name="transfer_hold_reference", condition=Q(kind="hold")),
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
    def source(self) -> str:
        """Which funding source this transfer moved: "sponsored", "promotional" or "paid" (wallets.funding).
        Reads `wallet.kind`: select_related("wallet") in lists; a hold just made by wallets.funding knows it."""
        if (known := getattr(self, "known_source", None)) is not None:
            return known
        if self.sponsorship_month_id is not None:
            return "sponsored"
        if self.wallet is not None and self.wallet.kind == Account.Kind.PROMO:
            return "promotional"
        return "paid"

    @property
    def signed_amount(self) -> int:
        """The change to the wallet's posted balance: what a merchant's statement shows."""
        if not self.is_posted or self.wallet_id is None:
            return 0
        return self.amount if self.credit_account_id == self.wallet_id else -self.amount


class Sponsorship(models.Model):
    """A sponsor store pays for a beneficiary store's runs, up to a monthly limit ("A consumes, B pays").

    The sponsor invites; the beneficiary accepts; either side's page shows it. The limit is counted per
    calendar month (UTC) in a SponsorshipMonth row that the database keeps at or under the limit.
    """

    class Status(models.TextChoices):
        INVITED = "invited", _("Waiting for the store to accept")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        ENDED = "ended", _("Ended")
        DECLINED = "declined", _("Declined")

    LIVE = ("invited", "active", "paused")

    sponsor = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="sponsorships_given")
    # No index of its own: sponsorship_beneficiary starts with this column.
    beneficiary = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="sponsorships_received", db_index=False
    )
    monthly_limit = models.PositiveBigIntegerField(help_text="Tokens per calendar month (UTC).")
    # Tool slugs this sponsorship pays for; empty means every tool.
    tools = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INVITED)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(monthly_limit__gt=0), name="sponsorship_limit_positive"),
            models.CheckConstraint(condition=~Q(sponsor=F("beneficiary")), name="sponsorship_not_self"),
            models.UniqueConstraint(
                fields=["sponsor", "beneficiary"],
                condition=Q(status__in=["invited", "active", "paused"]),
                name="sponsorship_one_live_per_pair",
            ),
        ]
        indexes = [
            models.Index(fields=["beneficiary", "status"], name="sponsorship_beneficiary"),
        ]

    def __str__(self) -> str:
        return f"{self.sponsor} sponsors {self.beneficiary} ({self.monthly_limit:,}/month)"

    def covers(self, tool: str) -> bool:
        return not self.tools or tool in self.tools


class SponsorshipMonth(models.Model):
    """What a sponsorship has reserved and spent in one month. The CHECK makes the limit a hard one:
    a hold that would pass it is refused by the same conditional UPDATE that reserves it."""

    # No index of its own: sponsorship_month_unique starts with this column.
    sponsorship = models.ForeignKey(
        Sponsorship, on_delete=models.PROTECT, related_name="months", db_index=False
    )
    month = models.DateField(help_text="The first day of the month (UTC).")
    limit_tokens = models.BigIntegerField()
    held = models.BigIntegerField(default=0)
    spent = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-month"]
        constraints = [
            models.UniqueConstraint(fields=["sponsorship", "month"], name="sponsorship_month_unique"),
            models.CheckConstraint(
                condition=Q(held__gte=0) & Q(spent__gte=0) & Q(limit_tokens__gte=F("held") + F("spent")),
                name="sponsorship_month_within_limit",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sponsorship} {self.month:%Y-%m}: {self.spent:,} spent, {self.held:,} held"

    @property
    def remaining(self) -> int:
        return self.limit_tokens - self.held - self.spent


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
        PENDING = "pending", _("Waiting for approval")
        APPROVED = "approved", _("Approved and posted")
        REJECTED = "rejected", _("Rejected")
        EXPIRED = "expired", _("Expired undecided")

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
        CREATED = "created", _("Payment pending")
        PAID = "paid", _("Paid")
        REFUNDED = "refunded", _("Refunded")
        DISPUTED = "disputed", _("Disputed")
        EXPIRED = "expired", _("Checkout expired")
        FAILED = "failed", _("Payment failed")

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


# --- Auto-recharge and balance alerts (issue 12) ------------------------------------------------------
# Rows of wallets/recharge/ and wallets/alerts.py. None of them moves tokens: a recharge is credited by
# `topup_credit` from its RechargeAttempt, once, when Stripe's payment_intent.succeeded webhook arrives.


def _default_alert_percents() -> list[int]:
    return [20, 5]


class RechargeSettings(models.Model):
    """A wallet's auto-recharge rule and the saved card it charges off-session."""

    wallet = models.OneToOneField(
        Account, on_delete=models.PROTECT, primary_key=True, related_name="recharge_settings"
    )
    enabled = models.BooleanField(default=False)
    threshold = models.PositiveBigIntegerField(
        default=0, help_text="Recharge when available tokens fall below this."
    )
    pack = models.ForeignKey(
        TopupPack, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="What one recharge buys: the pack's tokens at the pack's price.",
    )  # fmt: skip
    monthly_max_count = models.PositiveIntegerField(null=True, blank=True)
    monthly_max_cents = models.PositiveIntegerField(null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    payment_method_id = models.CharField(max_length=255, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    consecutive_failures = models.PositiveSmallIntegerField(default=0)
    # Why auto-recharge was switched off by us (three failed payments), shown on the wallet page.
    disabled_reason = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "recharge settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(enabled=False) | (Q(pack__isnull=False) & ~Q(payment_method_id="")),
                name="recharge_enabled_needs_pack_and_card",
            ),
        ]

    def __str__(self) -> str:
        return f"Auto-recharge for {self.wallet} ({'on' if self.enabled else 'off'})"


class RechargeCardSetup(models.Model):
    """One Stripe Checkout Session in setup mode: the owner saving a card for auto-recharge."""

    wallet = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    checkout_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Card setup for {self.wallet} ({'saved' if self.completed_at else 'open'})"


class RechargeAttempt(models.Model):
    """One off-session PaymentIntent. At most one per wallet is in flight (the partial unique constraint),
    so however many runs cross the threshold at once, one payment is made."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Payment pending")
        SUCCEEDED = "succeeded", _("Paid")
        FAILED = "failed", _("Payment failed")
        SKIPPED = "skipped", _("Not charged")

    IN_FLIGHT = ("pending",)

    # No index of its own: recharge_attempt_newest starts with this column.
    wallet = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="recharge_attempts", db_index=False
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Copied from the pack when the attempt starts: staff may edit the pack meanwhile.
    tokens = models.PositiveBigIntegerField()
    amount_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3)
    # Our id for Stripe: the idempotency key and the PaymentIntent's metadata.
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    transfer = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, null=True, blank=True, related_name="recharge_attempt"
    )
    failure_message = models.CharField(max_length=500, blank=True)
    available_at_start = models.BigIntegerField(null=True, blank=True)
    # Refunds and disputes of a paid recharge, as for TopupPayment: totals, so events commute.
    refunded_cents = models.PositiveIntegerField(default=0, help_text="Highest cumulative refund seen.")
    tokens_clawed_back = models.PositiveBigIntegerField(default=0)
    disputed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["wallet"], condition=Q(status="pending"), name="recharge_attempt_one_in_flight"
            ),
            models.CheckConstraint(condition=Q(tokens__gt=0), name="recharge_attempt_tokens_positive"),
            models.CheckConstraint(
                condition=Q(tokens_clawed_back__lte=F("tokens")), name="recharge_attempt_clawback_bounded"
            ),
            models.CheckConstraint(
                condition=Q(status="succeeded", transfer__isnull=False)
                | (~Q(status="succeeded") & Q(transfer__isnull=True)),
                name="recharge_attempt_succeeded_has_transfer",
            ),
        ]
        indexes = [models.Index(fields=["wallet", "-created_at"], name="recharge_attempt_newest")]

    def __str__(self) -> str:
        return f"Recharge {self.tokens:,} tokens for {self.wallet} ({self.get_status_display()})"

    @property
    def price_display(self) -> str:
        return f"{self.amount_cents / 100:,.2f} {self.currency.upper()}"


class BalanceAlert(models.Model):
    """A wallet's alert thresholds and how far below them it has gone (the state for "once per crossing").

    `level` counts the thresholds the available balance is below, highest first; it only rises by a
    conditional UPDATE (`WHERE level < new`), so of many runs crossing a threshold at once one sends the
    email. It falls back (re-arming) only after new credits arrived (`credits_seen`), so a run's hold
    being released does not make the same alert fire again.
    """

    wallet = models.OneToOneField(
        Account, on_delete=models.PROTECT, primary_key=True, related_name="balance_alert"
    )
    # Emails only: the dashboard banner shows whenever the balance is below a threshold.
    email_enabled = models.BooleanField(default=True)
    percents = models.JSONField(
        default=_default_alert_percents, help_text="Percentages of the last top-up, highest first."
    )
    alert_at_zero = models.BooleanField(default=True)
    level = models.PositiveSmallIntegerField(default=0)
    credits_seen = models.BigIntegerField(default=0)
    alerted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Balance alerts for {self.wallet}"


class SponsorshipAlertState(models.Model):
    """How far into a sponsorship's monthly limit we have alerted the sponsor (80 %, 100 %), per month.

    Keyed by the sponsorship's id without a foreign key: the alert logic does not depend on that model.
    """

    sponsorship_id = models.BigIntegerField()
    month = models.DateField(help_text="The first day of the month the limit is for.")
    level = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sponsorship_id", "month"], name="sponsorship_alert_once_a_month")
        ]

    def __str__(self) -> str:
        return f"Sponsorship {self.sponsorship_id} alerts for {self.month:%Y-%m}"


# --- End of auto-recharge and balance alerts ------------------------------------------------------------
