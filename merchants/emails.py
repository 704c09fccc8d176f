"""Email: render a message from its templates, record it, and hand it to a Celery task to send.

Every app sends through `email_send`. A message is written to OutboundEmail in the caller's transaction and
enqueued when it commits, so a rolled-back request sends nothing and no request waits for the mail server.
The task (merchants.tasks.email_deliver) retries what can succeed later and records what cannot.

Templates live in templates/emails/: `<name>_subject.txt`, `<name>.txt` and `<name>.html`, every string
marked for translation. They get `site_url` besides the caller's context.
"""

import logging
import smtplib
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from merchants.models import OutboundEmail, User

DELIVER_TASK = "merchants.tasks.email_deliver"

log = logging.getLogger(__name__)

# A 5xx from the server (the address or the message was refused for good) and a malformed address cannot
# succeed later: the message fails at once. Everything else (4xx, a dropped connection, a timeout) retries.
PERMANENT = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


class EmailTemporaryFailure(Exception):
    """The mail server could not take the message now; the task tries again later."""


def email_send(
    *, to: str, template: str, context: dict | None = None, language: str | None = None
) -> OutboundEmail:
    """Render `template` for `to` and queue it. Returns the recorded message (status `queued`)."""
    context = {"site_url": settings.SITE_URL, **(context or {})}
    # The recipient's own dashboard language when they chose one; else the language of the request (or
    # task) that sends it.
    language = language or _recipient_language(to)
    with translation.override(language or translation.get_language() or settings.LANGUAGE_CODE):
        subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
        text = render_to_string(f"emails/{template}.txt", context)
        html = render_to_string(f"emails/{template}.html", context)
    message = OutboundEmail.objects.create(
        to=to, template=template, subject=subject[:200], body_text=text, body_html=html
    )
    email_id = message.pk
    _after_commit(lambda: email_enqueue(email_id=email_id))
    return message


def _recipient_language(to: str) -> str:
    return User.objects.filter(email__iexact=to).values_list("language", flat=True).first() or ""


def _after_commit(func) -> None:
    transaction.on_commit(func)


def email_enqueue(*, email_id: int) -> None:
    """Hand the message to the worker; a broker that is down leaves it queued for the sweep, never an error."""
    # Named, not imported: the task module calls this one, and the project keeps no import cycle.
    try:
        current_app.send_task(DELIVER_TASK, args=[email_id])
    except Exception:  # the broker is unreachable: the request that sent it must not fail for that
        log.exception("email %s: could not reach the task broker; the sweep will send it", email_id)


def email_deliver_now(*, email_id: int) -> OutboundEmail | None:
    """One attempt at sending. Raises EmailTemporaryFailure when it should be tried again.

    After EMAIL_MAX_ATTEMPTS attempts a temporary failure is final too: the message is marked failed.
    """
    with transaction.atomic():
        message = OutboundEmail.objects.select_for_update().filter(pk=email_id).first()
        if message is None or message.status != OutboundEmail.Status.QUEUED:
            return message  # sent or failed already: a second delivery of the task sends nothing
        message.attempts += 1
        message.save(update_fields=["attempts"])
    final_attempt = message.attempts >= settings.EMAIL_MAX_ATTEMPTS
    mail = EmailMultiAlternatives(
        subject=message.subject,
        body=message.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
    )
    if message.body_html:
        mail.attach_alternative(message.body_html, "text/html")
    try:
        mail.send(fail_silently=False)
    except PERMANENT as exc:
        return _finish(message, status=OutboundEmail.Status.FAILED, error=_describe(exc))
    except Exception as exc:  # SMTP 4xx, connection refused or dropped, timeout: may work later
        if final_attempt:
            return _finish(message, status=OutboundEmail.Status.FAILED, error=_describe(exc))
        OutboundEmail.objects.filter(pk=message.pk).update(last_error=_describe(exc)[:2000])
        log.warning("email %s to %s: %s; trying again", message.pk, message.to, _describe(exc))
        raise EmailTemporaryFailure(_describe(exc)) from exc
    return _finish(message, status=OutboundEmail.Status.SENT, error="")


def _finish(message: OutboundEmail, *, status: str, error: str) -> OutboundEmail:
    if status == OutboundEmail.Status.FAILED:
        log.error("email %s (%s) to %s failed for good: %s", message.pk, message.template, message.to, error)
    message.status = status
    message.last_error = error[:2000]
    message.sent_at = timezone.now() if status == OutboundEmail.Status.SENT else None
    # The links in the body are for the recipient only: keep the record, drop the body.
    message.body_text = message.body_html = ""
    message.save(update_fields=["status", "last_error", "sent_at", "body_text", "body_html"])
    return message


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def emails_sweep(*, older_than_seconds: int = 300) -> int:
    """Enqueue again the messages never tried after a while (the broker was down when they were sent).

    A message tried at least once is the task's to retry (acks_late brings it back if a worker dies), so
    the sweep never sends a message twice at once.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = OutboundEmail.objects.filter(
        status=OutboundEmail.Status.QUEUED, attempts=0, created_at__lt=cutoff
    ).values_list("pk", flat=True)[:500]
    ids = list(stale)
    for email_id in ids:
        email_enqueue(email_id=email_id)
    return len(ids)
