"""Payment errors. Each is a LedgerError, so callers that already handle ledger errors handle these."""

from wallets.exceptions import LedgerError


class PaymentError(LedgerError):
    code = "payment_error"


class InvalidWebhook(PaymentError):
    """Missing or bad signature, a timestamp outside the tolerance, or a body that is not a Stripe event:
    answer 400, change nothing."""

    code = "invalid_webhook"


class PaymentNotFulfilled(PaymentError):
    """An event for a payment (or dispute) we cannot place yet: the webhook answers non-2xx so Stripe
    delivers it again later, after the event it depends on has been handled."""

    code = "payment_not_fulfilled"
