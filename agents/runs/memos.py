"""The memo a run's ledger rows carry: the statement shows it to the merchant, so it names the tool as
the dashboard does and the run by its short reference (the same `#1a2b3c4d` the runs list shows)."""

from __future__ import annotations

import uuid

from agents.tools import registry


def run_memo(tool: str, run_id: uuid.UUID | str, what: str = "") -> str:
    """`Listing writer run #1a2b3c4d`, then `what` (": 412 tokens read, 530 written", " failed")."""
    try:
        name = registry.get(tool).name
    except registry.UnknownTool:
        name = tool
    return f"{name} run #{str(run_id)[:8]}{what}"


def usage_memo(input_tokens: int, output_tokens: int) -> str:
    return f": {input_tokens:,} tokens read, {output_tokens:,} written"
