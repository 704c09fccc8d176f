"""Pydantic's validation errors as sentences a merchant or an API client can act on.

Pydantic says "String should match pattern '^[a-z]{2}(-[A-Za-z]{2,4})?$'"; a merchant needs "Use a
language code such as en, zh-CN or pt-BR." Each error becomes the field's label and a plain sentence that
says what to change. Like the rest of `agents.tools`, this imports nothing from Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

# Labels where a field's name does not read well once its underscores become spaces.
LABELS = {"seo": "SEO", "cta": "Call to action", "call_to_action": "Call to action"}
# Fields whose pattern a merchant cannot guess from the name.
PATTERN_HINTS = {"language": "Use a language code such as en, zh-CN or pt-BR."}


def field_label(path: str) -> str:
    """`features.3` → `Features, item 4`; `product_name` → `Product name`."""
    if not path:
        return "Input"
    parts = path.split(".")
    words = []
    for index, part in enumerate(parts):
        if part.isdigit():
            words.append(f"item {int(part) + 1}")
        else:
            label = LABELS.get(part) or part.replace("_", " ").replace("-", " ")
            words.append(label[:1].upper() + label[1:] if index == 0 else label)
    return ", ".join(words)


def _choices(expected: str) -> str:
    # Pydantic lists literals as "'a', 'b' or 'c'": the same words without the quotes.
    return expected.replace("'", "")


def plain_message(error: Mapping[str, Any], field: str) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) as a sentence for a person."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    name = field.split(".")[0]
    if not error.get("loc"):
        # A model-level rule (say, "give a product name or a brief") wrote its own sentence for people.
        return _sentence(str(error.get("msg", "")))
    if kind == "missing":
        return "This is required."
    if kind == "extra_forbidden":
        return "This tool has no such field; remove it."
    if kind == "string_too_short":
        minimum = int(ctx.get("min_length", 1))
        return "This cannot be empty." if minimum <= 1 else f"Use at least {minimum} characters."
    if kind == "string_too_long":
        return f"Use at most {ctx.get('max_length')} characters."
    if kind == "too_short":
        return f"Give at least {ctx.get('min_length')} items."
    if kind == "too_long":
        return f"Give at most {ctx.get('max_length')} items."
    if kind == "string_pattern_mismatch":
        return PATTERN_HINTS.get(name, "This contains characters that are not allowed here.")
    if kind in {"literal_error", "enum"}:
        return f"Use one of: {_choices(str(ctx.get('expected', '')))}."
    if kind == "string_type":
        return "Use text here."
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return "Use a whole number."
    if kind in {"float_type", "float_parsing"}:
        return "Use a number."
    if kind == "bool_type" or kind == "bool_parsing":
        return "Use true or false."
    if kind == "list_type":
        return "Give a list here."
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "Give an object of names and values here."
    if kind in {"greater_than_equal", "greater_than"}:
        return (
            f"Use {ctx.get('ge', ctx.get('gt'))} or more."
            if "ge" in ctx
            else f"Use more than {ctx.get('gt')}."
        )
    if kind in {"less_than_equal", "less_than"}:
        return f"Use {ctx.get('le')} or less." if "le" in ctx else f"Use less than {ctx.get('lt')}."
    return _sentence(str(error.get("msg", "")).removeprefix("Value error, "))


def _sentence(message: str) -> str:
    message = message.strip()
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else f"{message}."


def plain_errors(exc: ValidationError) -> list[dict[str, str]]:
    """`{"field": "features.3", "label": "Features, item 4", "message": "Use at most 300 characters."}`.

    A model-level check names its field through the error's context (`{"field": ...}`), since pydantic
    gives model validators an empty location.
    """
    errors = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or str((error.get("ctx") or {}).get("field", ""))
        errors.append({"field": field, "label": field_label(field), "message": plain_message(error, field)})
    return errors
