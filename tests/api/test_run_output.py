"""A run as the API answers it: rendered directly, and equal to what its declared (schema) fields render.

RunOutput renders a run without building DRF's field objects (it is on every create and poll); these tests
hold that rendering to the declared fields, for runs in every state the API can answer.
"""

import zoneinfo
from datetime import timedelta

import pytest
from django.utils import timezone

from agents import selectors
from agents.api.runs import FundingPartOutput, RunErrorOutput, RunOutput, RunWaitingOutput
from agents.models import Run
from agents.runs.create import run_create
from agents.runs.execute import run_claim, run_execute
from agents.runs.settle import run_cancel, run_fail
from tests.plugins.workers import SYSTEM, funded
from wallets.selectors import funding_of
from wallets.services import promo_grant
from wallets.sponsorships import sponsorship_create

from .conftest import LISTING

pytestmark = pytest.mark.django_db


def assert_rendered_as_declared(run: Run) -> dict:
    serializer = RunOutput(run)
    rendered = serializer.data
    assert rendered == serializer.declared_representation(run)
    assert list(rendered) == RunOutput.Meta.fields
    # The nested parts, against their own declared serializers.
    assert rendered["error"] == (RunErrorOutput(run).data if run.error_code else None)
    assert rendered["waiting"] == (RunWaitingOutput(run).data if run.waiting_message else None)
    parts = funding_of(first_hold=run.hold, total=run.held)
    assert rendered["funding"] == FundingPartOutput(parts, many=True).data
    return rendered


def reloaded(run: Run) -> Run:
    found = selectors.run_of(merchant=run.merchant, run_id=run.pk)
    assert found is not None
    return found


def test_a_new_run_answers_as_its_declared_fields_render_it(api_for):
    store = funded(1_000_000)
    body = api_for(store).post("/api/v1/runs", LISTING, format="json").json()

    run = Run.objects.get(pk=body["id"])
    assert body == assert_rendered_as_declared(reloaded(run))
    assert body["status"] == "queued" and body["output"] is None and body["cost"] is None


def test_a_succeeded_run_renders_its_output_usage_and_charge_as_declared(llm_endpoint, api_for):
    store = funded(1_000_000)
    body = api_for(store).post("/api/v1/runs", LISTING, format="json").json()
    run_execute(run_id=body["id"])

    polled = api_for(store).get(f"/api/v1/runs/{body['id']}").json()

    run = reloaded(Run.objects.get(pk=body["id"]))
    assert polled == assert_rendered_as_declared(run)
    assert polled["status"] == "succeeded" and polled["output"]["title"]
    assert polled["usage"]["input_tokens"] > 0 and polled["cost"] > 0
    assert polled["funding"][0]["charged"] == polled["cost"]


def test_failed_canceled_and_waiting_runs_render_as_declared():
    store = funded(1_000_000)

    failed = run_create(merchant=store, tool=LISTING["tool"], input=LISTING["input"], actor=SYSTEM)
    claimed = run_claim(run_id=failed.pk)
    assert claimed is not None
    run_fail(run=claimed, claim=claimed.attempts, code="rejected", message="The model refused this request.")
    rendered = assert_rendered_as_declared(reloaded(failed))
    assert rendered["error"] == {"code": "rejected", "message": "The model refused this request."}

    canceled = run_create(merchant=store, tool=LISTING["tool"], input=LISTING["input"], actor=SYSTEM)
    run_cancel(run=canceled, actor=SYSTEM)
    assert assert_rendered_as_declared(reloaded(canceled))["status"] == "canceled"

    waiting = run_create(merchant=store, tool=LISTING["tool"], input=LISTING["input"], actor=SYSTEM)
    Run.objects.filter(pk=waiting.pk).update(waiting="worker_lost", started_at=timezone.now(), attempts=1)
    rendered = assert_rendered_as_declared(reloaded(waiting))
    assert rendered["waiting"]["reason"] == "worker_lost" and rendered["waiting"]["message"]


def test_a_run_paid_by_a_sponsor_promotional_tokens_and_the_wallet_renders_every_part_as_declared():
    store = funded(1_000_000, name="Reseller")
    promo_grant(
        merchant=store,
        amount=300,
        expires_at=timezone.now() + timedelta(days=30),
        key="welcome",
        actor=SYSTEM,
    )
    sponsorship_create(
        sponsor=funded(1_000_000, name="Brand"), beneficiary=store, monthly_limit=500, accepted=True
    )

    run = run_create(merchant=store, tool=LISTING["tool"], input=LISTING["input"], actor=SYSTEM)

    rendered = assert_rendered_as_declared(reloaded(run))
    assert [part["source"] for part in rendered["funding"]] == ["sponsored", "promotional", "paid"]
    assert rendered["funding"][0]["sponsor"] == "Brand"
    assert assert_rendered_as_declared(run) == rendered  # as created, before any reload


def test_dates_render_in_the_active_time_zone_as_declared():
    store = funded(1_000_000)

    run = run_create(merchant=store, tool=LISTING["tool"], input=LISTING["input"], actor=SYSTEM)

    with timezone.override(zoneinfo.ZoneInfo("Asia/Shanghai")):
        rendered = assert_rendered_as_declared(reloaded(run))
    assert rendered["created_at"].endswith("+08:00")
