"""Before a run exists: validate its input against the tool, build its prompt and price its worst case.

The estimate and the worker build the prompt with the same function (`run_messages`), so the hold always
covers what is sent, history included.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.utils.translation import gettext
from pydantic import BaseModel

from agents import tool_labels
from agents.errors import InvalidRunInput, ToolUnavailable, UnknownTool
from agents.llm import tokens
from agents.runs import hooks
from agents.tools import registry
from agents.tools.base import InvalidToolInput, MerchantProfile, Tool
from merchants.models import Merchant
from wallets import selectors as wallet_selectors
from wallets.models import Price


def merchant_profile(merchant: Merchant) -> MerchantProfile:
    return MerchantProfile(
        store_name=merchant.name,
        brand_voice=merchant.brand_voice,
        default_language=merchant.default_language,
        knowledge_base=merchant.knowledge_base,
    )


def tool_of(slug: str) -> Tool:
    """The tool called `slug`; UnknownTool (400) otherwise."""
    return registry.get(slug)


def input_validate(tool: Tool, input: Any) -> BaseModel:
    """The input as the tool's model; InvalidRunInput with {field path: message} otherwise."""
    try:
        return tool.validate_input(input)
    except InvalidToolInput as exc:
        details: dict[str, str] = {}
        for error in exc.errors:
            field = error["field"] or "input"
            details[field] = f"{details[field]}; {error['message']}" if field in details else error["message"]
        raise InvalidRunInput(
            gettext("Some fields need a change. %(errors)s") % {"errors": exc.message}, details=details
        ) from None


def run_messages(
    *, tool: Tool, input: Any, merchant: Merchant, before: datetime | None = None
) -> list[dict[str, str]]:
    """The messages a run sends: the tool's prompt and whatever its product's hooks replay."""
    history: list[dict[str, str]] = []
    profile = merchant_profile(merchant)
    if (run_hooks := hooks.for_tool(tool.slug)) is not None:
        data = tool.validate_input(input)
        history = run_hooks.history(merchant=merchant, data=data, before=before)
        knowledge = run_hooks.knowledge(merchant=merchant, data=data, before=before)
        if knowledge is not None:
            profile = replace(profile, knowledge=knowledge)
    return tool.build_messages(input, profile, history=history)


def request_hash(*, tool: str, input: Any) -> str:
    """What "the same request" means for an idempotency key: the tool and the input, as sent."""
    body = json.dumps({"tool": tool, "input": input}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def stored_input(data: BaseModel) -> dict[str, Any]:
    """The validated input as stored: normalised, but only the fields the caller set."""
    return data.model_dump(mode="json", exclude_unset=True)


@dataclass(frozen=True)
class Estimate:
    tool: Tool
    data: BaseModel  # the validated input
    prompt_tokens: int
    price: Price
    held: int  # the most the run can cost: the prompt plus `max_tokens` of output at today's price


def run_estimate(*, merchant: Merchant, tool: str | Tool, input: Any) -> Estimate:
    """Validate `input` and price the worst case. Raises UnknownTool, InvalidRunInput, ToolUnavailable."""
    tool = tool if isinstance(tool, Tool) else tool_of(tool)
    data = input_validate(tool, input)
    messages = run_messages(tool=tool, input=data, merchant=merchant)
    prompt_tokens = tokens.count_prompt_tokens(messages, tool.model)
    price = wallet_selectors.price_for(model=tool.model)
    if price is None:
        raise ToolUnavailable(
            gettext("The %(tool)s is not available right now. Please try again later.")
            % {"tool": tool_labels.tool_name(tool.slug)}
        )
    held = price.cost(input_tokens=prompt_tokens, output_tokens=tool.max_tokens)
    return Estimate(tool=tool, data=data, prompt_tokens=prompt_tokens, price=price, held=max(held, 1))


__all__ = ["Estimate", "UnknownTool", "merchant_profile", "run_estimate", "run_messages", "tool_of"]
