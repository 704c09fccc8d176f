"""Celery tasks: an id in, one service call. Enqueued with `transaction.on_commit`.

`run_execute` is `acks_late`: a worker that dies mid-call leaves the message to be delivered again, and
the claim makes that second delivery harmless. Retries re-enter under the claim the service hands back,
so a retry never takes a second hold or makes a second charge.
"""

from celery import shared_task

from agents import execution, sweeper


@shared_task(bind=True, name="agents.tasks.run_execute", acks_late=True, ignore_result=True)
def run_execute(self, run_id: str, claim: int | None = None) -> str:
    outcome = execution.run_execute(run_id=run_id, claim=claim, retries=self.request.retries)
    if outcome.retry_in is not None:
        # Bounded by the service (QWEN_MAX_RETRIES and the run's deadline), not by Celery's counter.
        raise self.retry(
            args=(),
            kwargs={"run_id": run_id, "claim": outcome.claim},
            countdown=outcome.retry_in,
            max_retries=None,
        )
    return outcome.status


@shared_task(name="agents.tasks.runs_sweep", ignore_result=True)
def runs_sweep() -> dict[str, int]:
    return sweeper.runs_sweep()
