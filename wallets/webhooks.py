"""POST /webhooks/stripe/: Stripe's deliveries. Thin: verify, hand to wallets.payments, answer.

Stripe retries any non-2xx answer (for up to three days in live mode), so the status code is the decision
"retry this later" or not.
"""

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from wallets.payments import webhooks as payment_webhooks
from wallets.payments.exceptions import InvalidWebhook, PaymentNotFulfilled

log = logging.getLogger(__name__)


@csrf_exempt  # Stripe cannot send our CSRF token; the signature authenticates the request instead
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    try:
        # request.body is the raw bytes: the signature covers them exactly as sent.
        event = payment_webhooks.event_verify(
            payload=request.body, signature=request.headers.get("Stripe-Signature")
        )
    except InvalidWebhook as exc:
        log.warning("Rejected a Stripe webhook: %s", exc)
        return JsonResponse({"error": "invalid signature or payload"}, status=400)
    try:
        outcome = payment_webhooks.event_handle(event=event)
    except PaymentNotFulfilled as exc:
        # A refund or dispute that arrived before the session's completion was handled (events are not
        # ordered). Answering 200 would drop it for good and leave the tokens with the merchant; a non-2xx
        # makes Stripe deliver it again later, after the top-up exists, and then the clawback lands. Nothing
        # was recorded, so the retry is processed in full.
        log.info(
            "Stripe %s %s arrived before its payment was fulfilled: %s", event.get("type"), event["id"], exc
        )
        return JsonResponse({"error": "payment not fulfilled yet; retry later"}, status=409)
    log.info("Stripe %s %s: %s", event.get("type"), event["id"], outcome)
    return JsonResponse({"received": True, "outcome": outcome})
