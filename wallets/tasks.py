from celery import shared_task

from wallets import adjustments, services


@shared_task(ignore_result=True)
def holds_expire() -> int:
    return services.holds_expire()


@shared_task(ignore_result=True)
def adjustment_requests_expire() -> int:
    return adjustments.adjustment_requests_expire()
