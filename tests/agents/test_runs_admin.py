"""Runs in admin and in reconciliation: Support looks, staff with the permission refund, the ledger
check names a run charged without succeeding."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from agents import llm
from agents.exceptions import RunNotRefundable
from agents.execution import run_claim, run_succeed
from agents.runs import run_cancel, run_create, run_refund
from tests.agents.worker import SYSTEM, funded, listing, wallet
from tests.factories import UserFactory
from wallets.bootstrap import SUPPORT_GROUP
from wallets.models import Transfer
from wallets.reconcile import reconcile_ledger
from wallets.services import hold_post

pytestmark = pytest.mark.django_db

TOKENS = 1_000_000
ANSWER = llm.Completion(
    text="{}", input_tokens=300, output_tokens=100, model="qwen-plus", finish_reason="stop"
)


def succeeded_run(merchant):
    run = run_claim(
        run_id=run_create(merchant=merchant, tool="listing-writer", input=listing(), actor=SYSTEM).pk
    )
    return run_succeed(run=run, claim=run.attempts, completion=ANSWER, output={"title": "done"})


def staff(*, group: str | None = None, permissions: tuple[str, ...] = ()):
    user = UserFactory(is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def test_a_refund_gives_back_the_charge_once():
    merchant = funded(TOKENS)
    run = succeeded_run(merchant)

    first = run_refund(run=run, actor=SYSTEM)
    again = run_refund(run=run, actor=SYSTEM)

    assert first.pk == again.pk and first.amount == run.cost
    assert first.idempotency_key == f"run:{run.pk}:refund"
    assert wallet(merchant).balance == TOKENS
    assert reconcile_ledger() == []


def test_only_a_charged_run_can_be_refunded_and_never_above_its_cost():
    merchant = funded(TOKENS)
    canceled = run_cancel(run=run_create(merchant=merchant, tool="listing-writer", input=listing(), actor=SYSTEM),
                          actor=SYSTEM)  # fmt: skip
    with pytest.raises(RunNotRefundable):
        run_refund(run=canceled, actor=SYSTEM)
    run = succeeded_run(merchant)
    with pytest.raises(RunNotRefundable):
        run_refund(run=run, actor=SYSTEM, amount=run.cost + 1)


def test_support_can_view_runs_but_not_refund_them(client):
    run = succeeded_run(funded(TOKENS))
    client.force_login(staff(group=SUPPORT_GROUP))

    page = client.get(reverse("admin:agents_run_changelist"))
    assert page.status_code == 200 and str(run.pk) in page.content.decode()
    assert "refund_runs" not in page.content.decode()
    assert client.get(reverse("admin:agents_run_change", args=[run.pk])).status_code == 200
    client.post(
        reverse("admin:agents_run_changelist"), {"action": "refund_runs", "_selected_action": [run.pk]}
    )
    assert not Transfer.objects.filter(kind="refund").exists()


def test_staff_with_the_refund_permission_refund_a_run_from_admin(client):
    merchant = funded(TOKENS)
    run = succeeded_run(merchant)
    user = staff(group=SUPPORT_GROUP, permissions=("refund_run",))
    client.force_login(user)

    client.post(
        reverse("admin:agents_run_changelist"), {"action": "refund_runs", "_selected_action": [run.pk]}
    )

    refund = Transfer.objects.get(kind="refund")
    assert (refund.amount, refund.actor_kind, refund.actor_user_id) == (run.cost, "staff", user.pk)
    assert wallet(merchant).balance == TOKENS


def test_reconciliation_names_a_run_charged_without_succeeding():
    merchant = funded(TOKENS)
    run = run_claim(
        run_id=run_create(merchant=merchant, tool="listing-writer", input=listing(), actor=SYSTEM).pk
    )
    hold_post(hold=run.hold, amount=10, key="rogue:charge", actor=SYSTEM)  # not through the run's settlement

    violations = [v for v in reconcile_ledger() if v.invariant == 5]

    assert [(v.code, v.ids) for v in violations] == [("charged_without_success", (str(run.pk),))]
