"""Every write of the agents app, in one import: runs (create, cancel, execute, sweep) and bulk batches."""

from agents.bulk import bulk_create, bulk_results_csv, bulk_rows
from agents.execution import run_claim, run_execute, run_fail, run_succeed, run_time_out
from agents.runs import (
    Estimate,
    merchant_profile,
    run_cancel,
    run_create,
    run_estimate,
    run_finish_unpaid,
    run_refund,
)
from agents.sweeper import runs_sweep

__all__ = [
    "Estimate",
    "bulk_create",
    "bulk_results_csv",
    "bulk_rows",
    "merchant_profile",
    "run_cancel",
    "run_claim",
    "run_create",
    "run_estimate",
    "run_execute",
    "run_fail",
    "run_finish_unpaid",
    "run_refund",
    "run_succeed",
    "run_time_out",
    "runs_sweep",
]
