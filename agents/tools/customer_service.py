"""The customer-service bot: answers from the store's knowledge base, hands over when it cannot."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agents.tools.base import MerchantProfile, Tool, voice_or_default

_PARAGRAPHS = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class KnowledgeSection:
    label: str  # "kb-1": what the bot cites in `sources`
    text: str


def knowledge_sections(knowledge_base: str) -> list[KnowledgeSection]:
    """The knowledge base split into blank-line-separated sections, labelled kb-1, kb-2, ...

    The labels are what `sources` cites, so support staff can see which facts a reply used.
    """
    paragraphs = [p.strip() for p in _PARAGRAPHS.split(knowledge_base or "") if p.strip()]
    return [KnowledgeSection(f"kb-{i}", text) for i, text in enumerate(paragraphs, start=1)]


def _knowledge_text(knowledge_base: str, retrieved: tuple[tuple[str, str], ...] | None = None) -> str:
    if retrieved is not None:
        if not retrieved:
            return "(No article of the store's knowledge base matches this message.)"
        return "\n\n".join(f"[{label}] {text}" for label, text in retrieved)
    sections = knowledge_sections(knowledge_base)
    if not sections:
        return "(The store has not written a knowledge base yet.)"
    return "\n\n".join(f"[{s.label}] {s.text}" for s in sections)


class CustomerServiceInput(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    conversation: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    message: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class CustomerServiceOutput(BaseModel):
    reply: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    needs_human: bool
    sources: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list, max_length=20
    )


def _variables(data: CustomerServiceInput, profile: MerchantProfile) -> dict[str, str]:
    return {
        "store_name": profile.store_name,
        "brand_voice": voice_or_default(profile),
        "language": profile.default_language or "en",
        "knowledge_base": _knowledge_text(profile.knowledge_base, profile.knowledge),
        "message": data.message,
    }


TOOL = Tool(
    slug="customer-service",
    name="Customer-service bot",
    description=(
        "Answers a customer's message from the store's knowledge base, citing the sections it used, "
        "and hands the conversation to a person when it cannot help."
    ),
    input_model=CustomerServiceInput,
    output_model=CustomerServiceOutput,
    model="qwen-flash",
    max_tokens=600,
    prompt_stem="customer_service",
    variables=_variables,  # type: ignore[arg-type]
    uses_history=True,
)
