from celery import shared_task

from wallets import services


@shared_task(ignore_result=True)
def holds_expire() -> int:
    return services.holds_expire()
