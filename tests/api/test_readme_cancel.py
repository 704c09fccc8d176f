"""The README's cancel example, step by step against a real worker and the simulator: a run that waits for
a retry is queued, and a queued run can be canceled, its hold released."""

import time

import pytest

from wallets.reconcile import reconcile_ledger

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

NAME = "Cancel-me apron"


def test_the_readme_cancel_example_cancels_a_run_waiting_for_its_retry(api, llm_endpoint, celery_worker):
    # README: curl -X POST http://127.0.0.1:8765/_sim/faults -d '{"faults": ["429", ...], "match": NAME}'
    llm_endpoint.fault(["429"] * 5, match=NAME)
    created = api.post(
        "/api/v1/runs",
        {"tool": "marketing-copy", "input": {"product_name": NAME, "channel": "email"}},
        format="json",
    )
    assert created.status_code == 202
    run_id = created.json()["id"]

    # README: until curl ... | grep -q '"reason":"retrying"'; do sleep 0.2; done
    deadline = time.monotonic() + 20
    while b'"reason":"retrying"' not in (body := api.get(f"/api/v1/runs/{run_id}").content):
        assert time.monotonic() < deadline, body
        time.sleep(0.2)

    canceled = api.post(f"/api/v1/runs/{run_id}/cancel")

    assert canceled.status_code == 200, canceled.content
    assert (canceled.json()["status"], canceled.json()["cost"]) == ("canceled", 0)
    assert reconcile_ledger() == [], [str(v) for v in reconcile_ledger()]
