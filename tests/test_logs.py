"""Every process logs the same way: a real worker writes JSON lines carrying the run and merchant."""

import json

import pytest

from agents.runs.create import run_create
from tests.plugins.workers import SYSTEM, funded, listing, product_name, wait_finished

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def test_a_workers_lines_about_a_run_are_json_with_the_run_and_its_merchant(llm_endpoint, worker_process):
    merchant = funded(5_000_000)
    name = product_name()
    llm_endpoint.fault(["malformed", "malformed"], match=name)  # the run fails, and says so at INFO
    worker = worker_process(QWEN_BASE_URL=llm_endpoint.base_url, LOG_FORMAT="json", LOG_LEVEL="INFO")
    run = run_create(merchant=merchant, tool="listing-writer", input=listing(name), actor=SYSTEM)

    (run,) = wait_finished(run)

    lines = [json.loads(line) for line in worker.log.read_text().splitlines() if line.startswith("{")]
    about_the_run = [line for line in lines if line.get("run_id") == str(run.pk)]
    assert run.status == "failed"
    assert about_the_run, worker.log.read_text()[-2000:]
    assert {line["merchant_id"] for line in about_the_run} == {str(merchant.pk)}
    assert {"time", "level", "logger", "message"} <= set(about_the_run[0])
