"""An API key's optional monthly token budget, enforced when a run is created with the key.

A run counts against the month it was created in (UTC) by what it can still cost: its cost once settled,
its hold while queued or running, nothing once failed or canceled. Counting holds (not only charges) is
what makes the check safe: concurrent creations cannot each see the budget's last tokens as free.
"""

from django.db import transaction
from django.db.models import Case, F, Sum, When
from django.utils import timezone
from django.utils.translation import gettext

from agents.errors import BudgetExceeded
from agents.models import Run
from agents.runs.create import run_create
from agents.runs.failures import READ_ALONG
from merchants.models import ApiKey


def month_start():
    return timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def key_month_usage(*, api_key: ApiKey) -> int:
    usage = (
        Run.objects.filter(
            merchant_id=api_key.merchant_id, api_key_id=api_key.pk, created_at__gte=month_start()
        )
        .aggregate(
            used=Sum(
                Case(
                    When(status__in=[Run.Status.QUEUED, Run.Status.RUNNING], then=F("held")),
                    When(status=Run.Status.SUCCEEDED, then=F("cost")),
                    default=0,
                )
            )
        )
        .get("used")
    )
    return usage or 0


def run_create_for_key(*, api_key: ApiKey | None, **create) -> Run:
    """`run_create`, refused with BudgetExceeded (402) past the key's monthly budget.

    The run and its hold are created first, then the month's usage (the new hold included) is compared
    with the budget; over it, the transaction rolls back and nothing was created or held. The key's row
    is locked for that transaction, so two requests with one key check one after the other.
    """
    if api_key is not None:
        create["failures_read"] = api_key.reads_along.get(READ_ALONG)
    if api_key is None or api_key.monthly_token_budget is None:
        return run_create(api_key_id=api_key.pk if api_key else None, **create)
    with transaction.atomic():
        ApiKey.objects.select_for_update().filter(pk=api_key.pk).values_list("pk").first()
        key = create.get("idempotency_key")
        replay = (
            key is not None and Run.objects.filter(merchant=create["merchant"], idempotency_key=key).exists()
        )
        run = run_create(api_key_id=api_key.pk, **create)
        if not replay:
            used = key_month_usage(api_key=api_key)
            if used > api_key.monthly_token_budget:
                budget = api_key.monthly_token_budget
                raise BudgetExceeded(
                    gettext(
                        "This run needs up to %(required)s tokens; the key has %(left)s of its %(budget)s "
                        "monthly budget left."
                    )
                    % {
                        "required": f"{run.held:,}",
                        "left": f"{max(budget - used + run.held, 0):,}",
                        "budget": f"{budget:,}",
                    },
                    details={"budget": budget, "used": used - run.held, "required": run.held},
                )
    return run
