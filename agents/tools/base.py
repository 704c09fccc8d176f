"""What every tool is made of: typed input and output, a prompt from a file, and strict parsing.

Tools import nothing from Django: a run hands them a `MerchantProfile` built from the merchant's row, so
the simulator, the benchmarks and the tests can use them without a database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from pydantic import BaseModel, ValidationError

from agents.errors import InvalidToolInput, UnknownTool  # noqa: F401 - part of the tools API
from agents.llm.errors import InvalidModelOutput
from agents.tools.messages import plain_errors

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
DEFAULT_LANGUAGE = "en"
# ChatML roles a stored conversation may replay; anything else (system, tool) must never come from history.
HISTORY_ROLES = {"user", "assistant"}
_LANGCHAIN_ROLES = {"system": "system", "human": "user", "ai": "assistant"}
# Models sometimes wrap JSON in a Markdown fence even in json_object mode; the fence is not the answer.
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(?P<body>.*)\n\s*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class MerchantProfile:
    """The store facts a prompt needs, copied from `merchants.Merchant`."""

    store_name: str
    brand_voice: str = ""
    default_language: str = DEFAULT_LANGUAGE
    knowledge_base: str = ""
    # (label, text) pairs a product retrieved for this one call, in place of the whole knowledge base;
    # None: no retrieval, the tool reads `knowledge_base`.
    knowledge: tuple[tuple[str, str], ...] | None = None


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as `{"field": "features.3", "message": ...}`.

    A model-level check names its field through the error's context (`{"field": ...}`), since pydantic
    gives model validators an empty location.
    """
    errors = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or str((error.get("ctx") or {}).get("field", ""))
        errors.append({"field": field, "message": error["msg"]})
    return errors


def load_prompt(name: str) -> str:
    # The file's final newline is an editor's habit, not part of the message.
    return (PROMPTS_DIR / name).read_text(encoding="utf-8").rstrip()


def build_prompt(stem: str, *, history: bool = False) -> ChatPromptTemplate:
    """`<stem>.system.txt` and `<stem>.user.txt` as a chat prompt (f-string templates: literal braces doubled)."""
    parts: list[Any] = [("system", load_prompt(f"{stem}.system.txt"))]
    if history:
        parts.append(MessagesPlaceholder("history", optional=True))
    parts.append(("human", load_prompt(f"{stem}.user.txt")))
    return ChatPromptTemplate.from_messages(parts)


def strip_code_fence(text: str) -> str:
    match = _FENCE.match(text)
    return match.group("body") if match else text


def input_json(data: BaseModel) -> str:
    """The tool input as the user message carries it: readable JSON, unset fields left out."""
    return json.dumps(data.model_dump(mode="json", exclude_none=True), ensure_ascii=False, indent=2)


@dataclass(frozen=True)
class Tool:
    """One AI tool. `variables` turns a validated input and the store profile into the prompt's fields."""

    slug: str
    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    model: str
    max_tokens: int
    prompt_stem: str
    variables: Callable[[BaseModel, MerchantProfile], dict[str, str]]
    uses_history: bool = False

    @cached_property
    def prompt(self) -> ChatPromptTemplate:
        return build_prompt(self.prompt_stem, history=self.uses_history)

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema()

    def validate_input(self, data: BaseModel | Mapping[str, Any]) -> BaseModel:
        """The input as the tool's model; raises InvalidToolInput naming each bad field."""
        if isinstance(data, self.input_model):
            return data
        if isinstance(data, BaseModel):
            data = data.model_dump()
        if not isinstance(data, Mapping):
            raise InvalidToolInput(
                [{"field": "", "label": "Input", "message": "Send the input as a JSON object."}]
            )
        try:
            return self.input_model.model_validate(data)
        except ValidationError as exc:
            raise InvalidToolInput(plain_errors(exc)) from None

    def build_messages(
        self,
        input: BaseModel | Mapping[str, Any],
        merchant_profile: MerchantProfile,
        history: Sequence[Mapping[str, str]] = (),
    ) -> list[dict[str, str]]:
        """The chat messages for one call, as `{"role", "content"}` dicts (system, [history], user).

        `history` is the earlier turns of a conversation, oldest first, roles "user"/"assistant" only:
        a stored message can never smuggle in a system instruction.
        """
        data = self.validate_input(input)
        variables: dict[str, Any] = dict(self.variables(data, merchant_profile))
        if self.uses_history:
            for turn in history:
                if turn.get("role") not in HISTORY_ROLES:
                    raise ValueError(f"History roles must be user or assistant, got {turn.get('role')!r}.")
            variables["history"] = [{"role": t["role"], "content": t["content"]} for t in history]
        elif history:
            raise ValueError(f"The {self.slug} tool does not take a conversation history.")
        return [
            {"role": _LANGCHAIN_ROLES[m.type], "content": str(m.content)}
            for m in self.prompt.format_messages(**variables)
        ]

    def parse_output(self, text: str, input: BaseModel | Mapping[str, Any]) -> BaseModel:
        """The model's answer as the tool's output model, checked against the input's rules.

        Raises InvalidModelOutput on malformed JSON or any mismatch: an answer is used whole or not at all.
        """
        data = self.validate_input(input)
        try:
            return self.output_model.model_validate_json(strip_code_fence(text), context={"input": data})
        except ValidationError as exc:
            errors = field_errors(exc)
            if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False)):
                raise InvalidModelOutput(detail="malformed JSON", errors=errors) from None
            raise InvalidModelOutput(detail="schema mismatch", errors=errors) from None


def resolve_language(requested: str | None, profile: MerchantProfile) -> str:
    return requested or profile.default_language or DEFAULT_LANGUAGE


def voice_or_default(profile: MerchantProfile) -> str:
    return profile.brand_voice.strip() or "Friendly, clear and trustworthy."
