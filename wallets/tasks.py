from celery import shared_task

from wallets import adjustments, services
from wallets.recharge import services as recharge


@shared_task(ignore_result=True)
def holds_expire() -> int:
    return services.holds_expire()


@shared_task(ignore_result=True)
def adjustment_requests_expire() -> int:
    return adjustments.adjustment_requests_expire()


@shared_task(ignore_result=True)
def promos_expire() -> int:
    return services.promos_expire()


@shared_task(ignore_result=True, acks_late=True)
def recharge_charge(attempt_id: int) -> str:
    return recharge.recharge_charge(attempt_id=attempt_id)


@shared_task(ignore_result=True)
def recharges_resume() -> int:
    return recharge.recharges_resume()
