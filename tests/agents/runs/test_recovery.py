"""The runs sweeper: lost runs end, lost messages are sent again, and it never races a worker into a
second charge."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents import llm
from agents.models import Run
from agents.runs.create import run_create
from agents.runs.execute import run_claim, run_execute
from agents.runs.recovery import runs_recover as runs_sweep
from agents.runs.settle import run_cancel, run_succeed
from tests.plugins.workers import SYSTEM, funded, ledger_of, listing, run_in_threads, wallet
from wallets.reconcile import reconcile_ledger
from wallets.services import holds_expire

pytestmark = pytest.mark.django_db

TOKENS = 1_000_000
ANSWER = llm.Completion(
    text="{}", input_tokens=300, output_tokens=100, model="qwen-plus", finish_reason="stop"
)


def create(merchant):
    return run_create(merchant=merchant, tool="listing-writer", input=listing(), actor=SYSTEM)


def test_a_run_running_past_its_deadline_is_failed_as_timed_out_and_charged_nothing():
    merchant = funded(TOKENS)
    run = run_claim(run_id=create(merchant).pk)

    assert runs_sweep(now=run.deadline_at - timedelta(seconds=1))["timed_out"] == 0
    assert runs_sweep(now=run.deadline_at + timedelta(seconds=1))["timed_out"] == 1

    run.refresh_from_db()
    assert (run.status, run.error_code, run.cost) == ("failed", "timed_out", 0)
    assert ledger_of(run).keys() == {"hold", "void"}
    assert wallet(merchant).available == TOKENS
    assert reconcile_ledger() == []


def test_a_worker_finishing_after_the_sweeper_timed_its_run_out_charges_nothing():
    merchant = funded(TOKENS)
    run = run_claim(run_id=create(merchant).pk)
    runs_sweep(now=run.deadline_at + timedelta(seconds=1))

    assert run_succeed(run=run, claim=run.attempts, completion=ANSWER, output={"title": "late"}) is None

    run.refresh_from_db()
    assert (run.status, run.output) == ("failed", None)
    assert "settle" not in ledger_of(run)
    assert reconcile_ledger() == []


def test_a_sweep_after_a_run_succeeded_changes_nothing():
    merchant = funded(TOKENS)
    run = run_claim(run_id=create(merchant).pk)
    run_succeed(run=run, claim=run.attempts, completion=ANSWER, output={"title": "on time"})

    assert runs_sweep(now=run.deadline_at + timedelta(hours=1))["timed_out"] == 0
    assert Run.objects.get(pk=run.pk).status == "succeeded"
    assert len(ledger_of(run)["settle"]) == 1


def test_a_hold_the_ledger_expired_fails_the_run_at_settlement_without_a_charge():
    merchant = funded(TOKENS)
    run = run_claim(run_id=create(merchant).pk)
    assert holds_expire(now=run.hold.timeout_at + timedelta(seconds=1)) == 1

    settled = run_succeed(run=run, claim=run.attempts, completion=ANSWER, output={"title": "too late"})

    assert (settled.status, settled.error_code, settled.cost) == ("failed", "timed_out", 0)
    assert settled.settlement.kind == "expire"
    assert wallet(merchant).available == TOKENS
    assert reconcile_ledger() == []


def test_a_queued_run_whose_message_was_lost_is_enqueued_again_every_requeue_interval(
    settings, django_capture_on_commit_callbacks
):
    assert timedelta(seconds=30) == settings.RUN_REQUEUE_AFTER  # the shipped default
    merchant = funded(TOKENS)
    run = create(merchant)
    now = timezone.now()

    assert runs_sweep(now=now + timedelta(seconds=20))["requeued"] == 0
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        assert runs_sweep(now=now + timedelta(seconds=31))["requeued"] == 1
    assert len(enqueued) == 1
    assert runs_sweep(now=now + timedelta(seconds=40))["requeued"] == 0  # its clock restarted
    assert runs_sweep(now=now + timedelta(seconds=62))["requeued"] == 1
    run.refresh_from_db()
    assert (run.status, run.requeues) == ("queued", 2)


def test_a_run_no_worker_starts_within_the_queue_timeout_fails_as_not_started(settings):
    merchant = funded(TOKENS)
    run = create(merchant)

    counts = runs_sweep(now=run.created_at + settings.RUN_QUEUE_TIMEOUT + timedelta(seconds=1))

    assert counts["not_started"] == 1
    run.refresh_from_db()
    assert (run.status, run.error_code, run.cost) == ("failed", "not_started", 0)
    assert ledger_of(run).keys() == {"hold", "void"}
    assert reconcile_ledger() == []


def test_a_run_whose_worker_stopped_renewing_its_lease_is_run_again_under_a_new_claim(llm_endpoint):
    merchant = funded(TOKENS)
    run = create(merchant)
    stale = run_claim(run_id=run.pk)

    counts = runs_sweep(now=stale.lease_expires_at + timedelta(seconds=1))

    assert counts["recovered"] == 1
    taken = Run.objects.get(pk=run.pk)
    assert (taken.status, taken.waiting, taken.recoveries) == ("queued", "worker_lost", 1)
    assert run_execute(run_id=run.pk).status == "succeeded"
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("succeeded", 2)
    assert len(ledger_of(run)["settle"]) == 1
    assert reconcile_ledger() == []


def test_a_run_that_keeps_losing_its_worker_fails_after_the_recoveries_allowed(settings):
    merchant = funded(TOKENS)
    run = create(merchant)
    for _ in range(settings.RUN_MAX_RECOVERIES):
        claimed = run_claim(run_id=run.pk)
        assert runs_sweep(now=claimed.lease_expires_at + timedelta(seconds=1))["recovered"] == 1
    last = run_claim(run_id=run.pk)

    assert runs_sweep(now=last.lease_expires_at + timedelta(seconds=1))["worker_lost"] == 1

    run.refresh_from_db()
    assert (run.status, run.error_code, run.cost) == ("failed", "worker_lost", 0)
    assert f"interrupted {settings.RUN_MAX_RECOVERIES + 1} times" in run.error_message
    assert ledger_of(run).keys() == {"hold", "void"}
    assert wallet(merchant).available == TOKENS
    assert reconcile_ledger() == []


def test_a_run_waiting_for_a_worker_can_be_canceled_and_its_hold_released():
    merchant = funded(TOKENS)
    run = create(merchant)
    claimed = run_claim(run_id=run.pk)
    Run.objects.filter(pk=run.pk).update(lease_expires_at=claimed.lease_expires_at - timedelta(minutes=5))

    canceled = run_cancel(run=run, actor=SYSTEM)

    assert canceled.status == "canceled"
    assert wallet(merchant).available == TOKENS
    assert reconcile_ledger() == []


def test_a_run_claimed_too_close_to_its_hold_timeout_is_timed_out_instead_of_started(settings):
    merchant = funded(TOKENS)
    settings.HOLD_TIMEOUT = timedelta(seconds=30)  # shorter than the settling margin the claim keeps
    run = create(merchant)

    assert run_claim(run_id=run.pk) is None

    run.refresh_from_db()
    assert (run.status, run.error_code, run.attempts) == ("failed", "timed_out", 0)
    assert wallet(merchant).available == TOKENS


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_settling_and_the_sweeper_at_the_same_instant_never_both_win():
    merchant = funded(TOKENS)
    runs = [run_claim(run_id=create(merchant).pk) for _ in range(12)]
    later = max(r.deadline_at for r in runs) + timedelta(seconds=1)

    def race(index: int):
        run = runs[index // 2]
        if index % 2:
            return runs_sweep(now=later)
        return run_succeed(run=run, claim=run.attempts, completion=ANSWER, output={"title": "race"})

    run_in_threads(len(runs) * 2, race, connections=8)

    for run in runs:
        run.refresh_from_db()
        ledger = ledger_of(run)
        assert sum(len(ledger.get(kind, [])) for kind in ("settle", "void")) == 1
        assert (run.status == "succeeded") == ("settle" in ledger)
    assert wallet(merchant).debits_pending == 0
    assert reconcile_ledger() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancel_and_a_claim_at_the_same_instant_never_both_win(broker):
    merchant = funded(TOKENS)
    runs = [create(merchant) for _ in range(12)]

    def race(index: int):
        run = runs[index // 2]
        if index % 2:
            return run_claim(run_id=run.pk)
        return run_cancel(run=run, actor=SYSTEM)

    results = run_in_threads(len(runs) * 2, race, connections=8)

    for index, run in enumerate(runs):
        run.refresh_from_db()
        canceled, claimed = results[2 * index], results[2 * index + 1]
        assert (run.status == "canceled") == isinstance(canceled, Run)
        assert (run.status == "running") == isinstance(claimed, Run)
        assert ("void" in ledger_of(run)) == (run.status == "canceled")
    assert reconcile_ledger() == []


def test_executing_a_canceled_run_calls_no_model(llm_endpoint):
    merchant = funded(TOKENS)
    run = create(merchant)
    run_cancel(run=run, actor=SYSTEM)
    assert run_execute(run_id=run.pk).status == "skipped"
    assert llm_endpoint.stats()["requests"] == 0
