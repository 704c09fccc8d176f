from celery import shared_task

from analytics.services import economics_refresh


@shared_task(name="analytics.economics_refresh", ignore_result=True)
def economics_refresh_task() -> None:
    economics_refresh()
