"""Runs in admin and in reconciliation: Support looks, staff with the permission refund, the ledger
check names a run charged without succeeding."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from agents import llm
from agents.errors import RunNotRefundable
from agents.runs.create import run_create
from agents.runs.execute import run_claim
from agents.runs.settle import run_cancel, run_refund, run_succeed
from tests.factories import UserFactory
from tests.plugins.workers import SYSTEM, funded, listing, wallet
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


def test_support_refunds_a_run_once_from_admin_and_a_second_refund_gives_nothing(client):
    merchant = funded(TOKENS)
    run = succeeded_run(merchant)
    client.force_login(staff(group=SUPPORT_GROUP))
    refund = {"action": "refund_runs", "_selected_action": [run.pk]}

    client.post(reverse("admin:agents_run_changelist"), refund)
    again = client.post(reverse("admin:agents_run_changelist"), refund, follow=True)

    assert Transfer.objects.filter(kind="refund").count() == 1
    assert "already refunded" in again.content.decode()
    assert wallet(merchant).balance == TOKENS
    assert reconcile_ledger() == []


def test_support_reads_a_bot_conversation_with_the_runs_it_cost(client):
    from agents.models import Conversation, Message

    merchant = funded(TOKENS)
    run = succeeded_run(merchant)
    conversation = Conversation.objects.create(merchant=merchant)
    Message.objects.create(conversation=conversation, role="customer", content="Where is my parcel?", run=run)
    client.force_login(staff(group=SUPPORT_GROUP))

    page = client.get(reverse("admin:agents_conversation_change", args=[conversation.pk]))

    assert page.status_code == 200
    assert "Where is my parcel?" in page.content.decode() and str(run.pk) in page.content.decode()
    assert client.post(reverse("admin:agents_conversation_delete", args=[conversation.pk])).status_code == 403


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
