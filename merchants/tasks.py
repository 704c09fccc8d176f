from celery import shared_task

from merchants import emails


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(emails.EmailTemporaryFailure,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    # Bounded by EMAIL_MAX_ATTEMPTS (counted on the message): the last attempt marks it failed, not retried.
    max_retries=None,
)
def email_deliver(self, email_id: int) -> None:
    emails.email_deliver_now(email_id=email_id)


@shared_task
def emails_sweep() -> int:
    return emails.emails_sweep()
