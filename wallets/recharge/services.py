"""Auto-recharge writes: the owner's settings, saving a card, starting and failing a recharge attempt.

The decision to recharge is taken in the database, cheaply, right after a commit that lowered the wallet
(`recharge_maybe_start`, from wallets.balance_events): a RechargeAttempt row is inserted, and the partial
unique constraint on a wallet's pending attempt makes that insert succeed for one of any number of racing
runs. Only the winner enqueues the Stripe call (`recharge_charge`, a Celery task); tokens arrive later, by
the payment_intent.succeeded webhook (wallets.recharge.webhooks).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

import stripe
from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from merchants.emails import email_send
from merchants.models import Membership, Merchant
from wallets.models import Account, RechargeAttempt, RechargeCardSetup, RechargeSettings, TopupPack
from wallets.payments import client as payment_client
from wallets.payments.exceptions import PaymentError
from wallets.recharge import stripe_api
from wallets.recharge.exceptions import RechargeNotReady

log = logging.getLogger(__name__)

CHARGE_TASK = "wallets.tasks.recharge_charge"
FAILURES_BEFORE_OFF = 3
# After a failed payment the next run does not retry at once: a declined card would otherwise use up the
# three tries within seconds.
RETRY_AFTER = timedelta(hours=1)
# Stripe keeps an idempotency key for 24 hours: an attempt never sent by then is given up, not re-sent.
RESEND_WITHIN = timedelta(hours=23)
Status = RechargeAttempt.Status
COUNTED = (Status.PENDING, Status.SUCCEEDED)


def settings_of(*, wallet: Account) -> RechargeSettings:
    found = RechargeSettings.objects.filter(wallet=wallet).select_related("pack").first()
    if found is None:
        found, _created = RechargeSettings.objects.get_or_create(wallet=wallet)
    return found


def settings_save(
    *,
    merchant: Merchant,
    enabled: bool,
    threshold: int,
    pack: TopupPack | None,
    monthly_max_count: int | None,
    monthly_max_cents: int | None,
) -> RechargeSettings:
    wallet = Account.objects.get(merchant=merchant, kind=Account.Kind.WALLET)
    settings_of(wallet=wallet)
    with transaction.atomic():
        current = RechargeSettings.objects.select_for_update().get(wallet=wallet)
        if enabled and (pack is None or not current.payment_method_id):
            raise RechargeNotReady(_("Save a card and choose an amount before switching auto-recharge on."))
        if enabled and not current.enabled:
            # Switching it back on is the owner's answer to the failures that switched it off.
            current.consecutive_failures = 0
            current.disabled_reason = ""
        current.enabled = enabled
        current.threshold = threshold
        current.pack = pack
        current.monthly_max_count = monthly_max_count
        current.monthly_max_cents = monthly_max_cents
        current.save()
    return current


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_usage(*, wallet_id: int, now: datetime | None = None) -> tuple[int, int]:
    """Recharges this calendar month (UTC) that paid or may still pay: how many, and their cents."""
    totals = RechargeAttempt.objects.filter(
        wallet_id=wallet_id, status__in=COUNTED, created_at__gte=_month_start(now or timezone.now())
    ).aggregate(count=Count("id"), cents=Sum("amount_cents"))
    return totals["count"] or 0, totals["cents"] or 0


def cap_allows(rule: RechargeSettings, *, amount_cents: int, now: datetime | None = None) -> bool:
    count, cents = month_usage(wallet_id=rule.wallet_id, now=now)
    if rule.monthly_max_count is not None and count >= rule.monthly_max_count:
        return False
    return rule.monthly_max_cents is None or cents + amount_cents <= rule.monthly_max_cents


def recharge_maybe_start(*, wallet_id: int) -> RechargeAttempt | None:
    """Start one recharge if the wallet is below its threshold and none is in flight; None otherwise.

    One indexed read when auto-recharge is off (the common case), so it may run after every run's hold.
    """
    rule = RechargeSettings.objects.filter(wallet_id=wallet_id, enabled=True).select_related("pack").first()
    if rule is None or rule.pack is None or not rule.payment_method_id:
        return None
    available = Account.objects.get(pk=wallet_id).available
    if available >= rule.threshold:
        return None
    newest = RechargeAttempt.objects.filter(wallet_id=wallet_id).order_by("-created_at").first()
    if newest is not None:
        if newest.status == Status.PENDING:
            return None
        if newest.status == Status.FAILED and newest.updated_at > timezone.now() - RETRY_AFTER:
            return None
    pack = rule.pack
    if not cap_allows(rule, amount_cents=pack.price_cents):
        return None
    try:
        with transaction.atomic():
            attempt = RechargeAttempt.objects.create(
                wallet_id=wallet_id,
                tokens=pack.tokens,
                amount_cents=pack.price_cents,
                currency=pack.currency.lower(),
                available_at_start=available,
            )
    except IntegrityError:
        return None  # another run's commit started the one in-flight recharge a moment ago
    transaction.on_commit(partial(charge_enqueue, attempt_id=attempt.pk))
    return attempt


def charge_enqueue(*, attempt_id: int) -> None:
    """Hand the Stripe call to a worker; a broker that is down leaves the attempt for `recharges_resume`."""
    try:
        current_app.send_task(CHARGE_TASK, args=[attempt_id])
    except Exception:
        log.exception(
            "recharge attempt %s: could not reach the task broker; the sweep will send it", attempt_id
        )


def _decline_message(exc: stripe.StripeError) -> tuple[str, str | None]:
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error") or {}
    intent = error.get("payment_intent") or {}
    message = error.get("message") or _("The card was declined.")
    return str(message)[:500], (intent.get("id") if isinstance(intent, dict) else None)


def recharge_charge(*, attempt_id: int) -> str:
    """The Celery task's body: create the off-session PaymentIntent for a pending attempt (once: its uuid
    is the idempotency key). Credits nothing; a refusal Stripe answers at once fails the attempt."""
    attempt = RechargeAttempt.objects.filter(pk=attempt_id, status=Status.PENDING).first()
    if attempt is None:
        return "not_pending"
    rule = RechargeSettings.objects.get(wallet_id=attempt.wallet_id)
    if not rule.enabled or not rule.payment_method_id or not rule.stripe_customer_id:
        RechargeAttempt.objects.filter(pk=attempt.pk, status=Status.PENDING).update(
            status=Status.SKIPPED,
            failure_message=_("Auto-recharge was switched off before the payment was made."),
            updated_at=timezone.now(),
        )
        return "skipped"
    metadata = {"recharge_attempt": str(attempt.reference), "wallet_id": str(attempt.wallet_id)}
    try:
        intent = stripe_api.off_session_charge(
            reference=str(attempt.reference),
            amount_cents=attempt.amount_cents,
            currency=attempt.currency,
            customer_id=rule.stripe_customer_id,
            payment_method_id=rule.payment_method_id,
            metadata=metadata,
        )
    except stripe.CardError as exc:
        message, intent_id = _decline_message(exc)
        attempt_fail(attempt_id=attempt.pk, message=message, payment_intent_id=intent_id)
        return "declined"
    except stripe.StripeError as exc:
        if _undecided(exc):
            # Stripe may have made the payment (a timeout, a 5xx, the same key still in progress): failing
            # now would let the next attempt charge the card again under a new key. The attempt stays
            # pending and recharges_resume sends it again under the same key, which answers the same payment.
            log.warning(
                "Recharge attempt %s: Stripe did not answer (%s); it will be sent again.", attempt.pk, exc
            )
            return "retrying"
        log.warning("Stripe refused recharge attempt %s: %s", attempt.pk, exc)
        attempt_fail(attempt_id=attempt.pk, message=_("Stripe could not take the payment."))
        return "error"
    RechargeAttempt.objects.filter(pk=attempt.pk, payment_intent_id__isnull=True).update(
        payment_intent_id=intent.id, updated_at=timezone.now()
    )
    if intent.status in ("requires_payment_method", "requires_action", "canceled"):
        attempt_fail(
            attempt_id=attempt.pk,
            message=_("Your bank asked to confirm this payment; buy a top-up on the wallet page instead."),
            payment_intent_id=intent.id,
        )
        return "declined"
    return str(intent.status)


def _undecided(exc: stripe.StripeError) -> bool:
    """Whether Stripe's answer leaves open that the payment was made: only a definite refusal fails."""
    if isinstance(exc, stripe.APIConnectionError | stripe.IdempotencyError | stripe.RateLimitError):
        return True
    return (exc.http_status or 0) >= 500


def attempt_fail(*, attempt_id: int, message: str, payment_intent_id: str | None = None) -> bool:
    """Mark a pending attempt failed, once; the third failure in a row switches auto-recharge off and
    tells the owners. False if the attempt was no longer pending (a replay, or it already succeeded)."""
    with transaction.atomic():
        attempt = (
            RechargeAttempt.objects.select_for_update().filter(pk=attempt_id, status=Status.PENDING).first()
        )
        if attempt is None:
            return False
        attempt.status = Status.FAILED
        attempt.failure_message = message[:500]
        if payment_intent_id and not attempt.payment_intent_id:
            attempt.payment_intent_id = payment_intent_id
        attempt.save(update_fields=["status", "failure_message", "payment_intent_id", "updated_at"])
        rule = RechargeSettings.objects.select_for_update().get(wallet_id=attempt.wallet_id)
        rule.consecutive_failures += 1
        switched_off = rule.enabled and rule.consecutive_failures >= FAILURES_BEFORE_OFF
        if switched_off:
            rule.enabled = False
            rule.disabled_reason = _("Switched off after %(count)d failed payments in a row: %(reason)s") % {
                "count": rule.consecutive_failures,
                "reason": attempt.failure_message,
            }
        rule.save(update_fields=["consecutive_failures", "enabled", "disabled_reason", "updated_at"])
        if switched_off:
            _email_switched_off(attempt.wallet_id, rule)
    return True


def _email_switched_off(wallet_id: int, rule: RechargeSettings) -> None:
    merchant = Merchant.objects.get(accounts__pk=wallet_id)
    context = {
        "store": merchant.name,
        "failures": rule.consecutive_failures,
        "reason": rule.disabled_reason,
        "url": f"{settings.SITE_URL}{reverse('wallet')}",
    }
    owners = Membership.objects.filter(merchant=merchant, role=Membership.Role.OWNER).exclude(user__email="")
    for to in owners.values_list("user__email", flat=True):
        email_send(to=to, template="recharge_disabled", context=context)


def recharges_resume(*, now: datetime | None = None, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Beat: send again the attempts whose task never ran (the broker was down), and give up the ones too
    old to resend under their idempotency key. Sending again is safe: Stripe answers the same key with the
    same PaymentIntent."""
    now = now or timezone.now()
    waiting = RechargeAttempt.objects.filter(
        status=Status.PENDING, payment_intent_id__isnull=True, created_at__lt=now - older_than
    )
    resent = 0
    for attempt_id in waiting.filter(created_at__gte=now - RESEND_WITHIN).values_list("pk", flat=True)[:100]:
        charge_enqueue(attempt_id=attempt_id)
        resent += 1
    for attempt_id in waiting.filter(created_at__lt=now - RESEND_WITHIN).values_list("pk", flat=True)[:100]:
        attempt_fail(attempt_id=attempt_id, message=_("The payment could not be sent to Stripe in time."))
    return resent


def card_setup_start(*, merchant: Merchant, user, success_url: str, cancel_url: str) -> RechargeCardSetup:
    """A Stripe Checkout Session in setup mode for saving the card auto-recharge charges. Our row exists
    (committed) before Stripe is called, so its webhook always finds it. Call outside a transaction."""
    if not payment_client.enabled():
        raise PaymentError(_("Card payments are not set up on this server."))
    wallet = Account.objects.get(merchant=merchant, kind=Account.Kind.WALLET)
    rule = settings_of(wallet=wallet)
    setup: RechargeCardSetup | None = None
    try:
        if not rule.stripe_customer_id:
            customer_id = stripe_api.customer_create(
                wallet_id=wallet.pk, email=getattr(user, "email", "") or "", name=merchant.name
            )
            RechargeSettings.objects.filter(pk=wallet.pk, stripe_customer_id="").update(
                stripe_customer_id=customer_id
            )
            rule.refresh_from_db()
        setup = RechargeCardSetup.objects.create(wallet=wallet, created_by=user)
        currency = rule.pack.currency.lower() if rule.pack else "usd"
        session_id, url = stripe_api.setup_session_create(
            customer_id=rule.stripe_customer_id,
            reference=str(setup.reference),
            currency=currency,
            success_url=success_url,
            cancel_url=cancel_url,
            wallet_id=wallet.pk,
        )
    except stripe.StripeError as exc:
        log.warning("Stripe refused a card setup for wallet %s: %s", wallet.pk, exc)
        if setup is not None:  # only ours: another owner's setup may be on its way to Stripe
            RechargeCardSetup.objects.filter(pk=setup.pk).delete()
        raise PaymentError(_("Stripe could not open the card form; nothing was saved.")) from exc
    setup.checkout_session_id, setup.checkout_url = session_id, url
    setup.save(update_fields=["checkout_session_id", "checkout_url"])
    return setup


def card_remove(*, merchant: Merchant) -> RechargeSettings:
    """Forget the saved card here (auto-recharge goes off with it); Stripe keeps it on the customer."""
    wallet = Account.objects.get(merchant=merchant, kind=Account.Kind.WALLET)
    settings_of(wallet=wallet)
    with transaction.atomic():
        rule = RechargeSettings.objects.select_for_update().get(wallet=wallet)
        rule.enabled = False
        rule.payment_method_id = rule.card_brand = rule.card_last4 = ""
        rule.save()
    return rule
