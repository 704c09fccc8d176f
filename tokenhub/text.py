"""One rule for characters no stored text may hold: NUL and lone UTF-16 surrogates.

PostgreSQL refuses both in text and jsonb ("unsupported Unicode escape sequence", "invalid byte sequence"),
so a value that carries one would fail at INSERT, long after it was accepted. Input edges refuse them with
a clear error (`find_forbidden`); text from the model is cleaned (`clean_text`), because a merchant cannot
fix what the provider sent.
"""

from __future__ import annotations

import re
from typing import Any

FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    return FORBIDDEN.sub("", text) if FORBIDDEN.search(text) else text


def find_forbidden(value: Any, path: str = "") -> str | None:
    """The path of the first string (key or value) in `value` holding a forbidden character, else None."""
    if isinstance(value, str):
        return path or "value" if FORBIDDEN.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and FORBIDDEN.search(key):
                return where
            if (found := find_forbidden(item, where)) is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if (found := find_forbidden(item, f"{path}.{index}" if path else str(index))) is not None:
                return found
    return None
