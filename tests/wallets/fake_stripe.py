"""A tiny local stand-in for api.stripe.com, and helpers that sign webhook deliveries as Stripe does.

No test touches the network: the real stripe SDK talks to this server (settings.STRIPE_API_BASE), and
webhooks go through the real signature verification with payloads signed here with the test secret.
"""

import hashlib
import hmac
import itertools
import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from django.conf import settings
from django.test import override_settings
from django.urls import reverse

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_test_{next(_ids)}_{int(time.time() * 1000)}"


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class FakeStripe:
    base: str = ""
    requests: list[Recorded] = field(default_factory=list)
    fail_with: int | None = None  # answer every request with this status, to test Stripe refusing
    # Off-session PaymentIntents: "succeeded", "processing", or "declined" (a 402 card_error, as Stripe
    # answers a declined off-session confirmation).
    intent_outcome: str = "succeeded"
    card_brand: str = "visa"
    card_last4: str = "4242"
    customers: dict[str, dict] = field(default_factory=dict)
    setup_intents: dict[str, dict] = field(default_factory=dict)
    payment_methods: dict[str, dict] = field(default_factory=dict)
    payment_intents: dict[str, dict] = field(default_factory=dict)
    setup_sessions: dict[str, dict] = field(default_factory=dict)
    _by_key: dict[str, dict] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def once(self, idempotency_key: str | None, make) -> tuple[int, dict]:
        """Stripe answers a repeated idempotency key with the first response (status and body)."""
        with self._lock:
            if idempotency_key and idempotency_key in self._by_key:
                return self._by_key[idempotency_key]["status"], self._by_key[idempotency_key]["body"]
            status, body = make()
            if idempotency_key:
                self._by_key[idempotency_key] = {"status": status, "body": body}
            return status, body

    def customer_for(self, form: dict[str, str]) -> tuple[int, dict]:
        customer = {
            "id": new_id("cus"),
            "object": "customer",
            "email": form.get("email"),
            "name": form.get("name"),
        }
        self.customers[customer["id"]] = customer
        return 200, customer

    def setup_session_for(self, form: dict[str, str]) -> tuple[int, dict]:
        """A setup-mode session, and the SetupIntent and card the buyer will have saved when it completes."""
        session = self.session_for(form, None)
        method = {
            "id": new_id("pm"),
            "object": "payment_method",
            "type": "card",
            "customer": form.get("customer"),
            "card": {"brand": self.card_brand, "last4": self.card_last4, "exp_month": 12, "exp_year": 2030},
        }
        intent = {
            "id": new_id("seti"),
            "object": "setup_intent",
            "customer": form.get("customer"),
            "payment_method": method["id"],
            "status": "succeeded",
            "usage": "off_session",
        }
        self.payment_methods[method["id"]] = method
        self.setup_intents[intent["id"]] = intent
        session.update(customer=form.get("customer"), setup_intent=intent["id"], amount_total=None)
        self.setup_sessions[session["id"]] = session
        return 200, session

    def payment_intent_for(self, form: dict[str, str]) -> tuple[int, dict]:
        metadata = {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")}
        intent = {
            "id": new_id("pi"),
            "object": "payment_intent",
            "amount": int(form.get("amount", 0)),
            "currency": form.get("currency"),
            "customer": form.get("customer"),
            "payment_method": form.get("payment_method"),
            "off_session": form.get("off_session") == "true",
            "metadata": metadata,
            "status": "processing" if self.intent_outcome == "processing" else "succeeded",
            "last_payment_error": None,
        }
        self.payment_intents[intent["id"]] = intent
        if self.intent_outcome == "declined":
            intent["status"] = "requires_payment_method"
            error = {
                "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.", "payment_intent": intent,
            }  # fmt: skip
            intent["last_payment_error"] = {k: v for k, v in error.items() if k != "payment_intent"}
            return 402, {"error": error}
        return 200, intent

    def session_for(self, form: dict[str, str], idempotency_key: str | None) -> dict:
        # Stripe answers a repeated idempotency key with the first response, not a second session.
        if idempotency_key and idempotency_key in self._by_key:
            return self._by_key[idempotency_key]
        session_id = new_id("cs")
        metadata = {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")}
        session = {
            "id": session_id,
            "object": "checkout.session",
            # Stripe's real checkout host, which the CSP's form-action allows; browser tests route it.
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "mode": form.get("mode"),
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": int(form.get("line_items[0][price_data][unit_amount]", 0)),
            "currency": form.get("line_items[0][price_data][currency]"),
            "client_reference_id": form.get("client_reference_id"),
            "metadata": metadata,
            "payment_intent": None,
        }
        if idempotency_key:
            self._by_key[idempotency_key] = session
        return session


def _handler(fake: FakeStripe):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = dict(parse_qsl(body, keep_blank_values=True))
            fake.requests.append(Recorded(self.path, dict(self.headers.items()), form))
            if fake.fail_with:
                error = {"error": {"type": "api_error", "message": "fake Stripe refuses"}}
                return self._answer(fake.fail_with, error)
            key = self.headers.get("Idempotency-Key")
            if self.path == "/v1/customers":
                return self._answer(*fake.once(key, lambda: fake.customer_for(form)))
            if self.path == "/v1/payment_intents":
                return self._answer(*fake.once(key, lambda: fake.payment_intent_for(form)))
            if self.path == "/v1/checkout/sessions" and form.get("mode") == "setup":
                return self._answer(*fake.once(key, lambda: fake.setup_session_for(form)))
            if self.path != "/v1/checkout/sessions":
                return self._not_found()
            return self._answer(200, fake.session_for(form, key))

        def do_GET(self):
            path, _, query = self.path.partition("?")
            fake.requests.append(Recorded(path, dict(self.headers.items()), dict(parse_qsl(query))))
            kind, _, object_id = path.removeprefix("/v1/").partition("/")
            if kind == "setup_intents" and object_id in fake.setup_intents:
                intent = dict(fake.setup_intents[object_id])
                if "payment_method" in dict(parse_qsl(query)).values():
                    intent["payment_method"] = fake.payment_methods[intent["payment_method"]]
                return self._answer(200, intent)
            if kind == "payment_methods" and object_id in fake.payment_methods:
                return self._answer(200, fake.payment_methods[object_id])
            return self._not_found()

        def _not_found(self) -> None:
            self._answer(404, {"error": {"type": "invalid_request_error", "message": "no route"}})

        def _answer(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler


@contextmanager
def fake_stripe_server():
    """Run the fake on a free port and point STRIPE_API_BASE at it for the duration."""
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with override_settings(STRIPE_API_BASE=fake.base):
            yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def sign(body: bytes, *, timestamp: int | None = None, secret: str | None = None) -> str:
    """The Stripe-Signature header for `body`: HMAC-SHA256 of "{t}.{body}" with the webhook secret."""
    t = int(time.time()) if timestamp is None else timestamp
    key = (settings.STRIPE_WEBHOOK_SECRET if secret is None else secret).encode()
    v1 = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={v1}"


def event(kind: str, obj: dict, *, event_id: str | None = None) -> dict:
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "type": kind,
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def deliver(client, payload: dict, *, signature: str | None = None, timestamp: int | None = None):
    """POST the event's raw JSON to the webhook as Stripe would, signed unless `signature` says otherwise."""
    body = json.dumps(payload).encode()
    headers = {
        "HTTP_STRIPE_SIGNATURE": signature if signature is not None else sign(body, timestamp=timestamp)
    }
    return client.post(reverse("stripe-webhook"), data=body, content_type="application/json", **headers)


def session_object(payment, *, payment_status: str = "paid", payment_intent: str | None = None) -> dict:
    """The Checkout Session Stripe would send for our TopupPayment row."""
    return {
        "id": payment.checkout_session_id,
        "object": "checkout.session",
        "payment_status": payment_status,
        "status": "complete",
        "amount_total": payment.amount_cents,
        "currency": payment.currency,
        "client_reference_id": str(payment.reference),
        "metadata": {
            "merchant_id": str(payment.merchant_id),
            "pack_id": str(payment.pack_id),
            "tokens": str(payment.tokens),
        },
        "payment_intent": payment_intent or f"pi_for_{payment.checkout_session_id}",
    }


def charge_object(payment, *, amount_refunded: int, charge_id: str | None = None) -> dict:
    return {
        "id": charge_id or f"ch_for_{payment.checkout_session_id}",
        "object": "charge",
        "amount": payment.amount_cents,
        "amount_refunded": amount_refunded,
        "refunded": amount_refunded >= payment.amount_cents,
        "currency": payment.currency,
        "payment_intent": f"pi_for_{payment.checkout_session_id}",
    }


def dispute_object(payment, *, dispute_id: str | None = None) -> dict:
    return {
        "id": dispute_id or new_id("dp"),
        "object": "dispute",
        "amount": payment.amount_cents,
        "charge": f"ch_for_{payment.checkout_session_id}",
        "payment_intent": f"pi_for_{payment.checkout_session_id}",
        "status": "needs_response",
    }


def intent_event(kind: str, intent: dict, **changes) -> dict:
    """A payment_intent.* event for a PaymentIntent the fake created (its metadata, amount and currency)."""
    obj = {**intent, **changes}
    if kind == "payment_intent.succeeded":
        obj.update(status="succeeded", amount_received=obj["amount"])
    if kind == "payment_intent.payment_failed":
        obj.update(
            status="requires_payment_method",
            last_payment_error={"code": "card_declined", "message": "Your card was declined."},
        )
    return event(kind, obj)


def setup_session_completed(fake: FakeStripe, session_id: str) -> dict:
    """checkout.session.completed for a setup-mode session the fake created."""
    return event("checkout.session.completed", {**fake.setup_sessions[session_id], "status": "complete"})
