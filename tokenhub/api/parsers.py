import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import BaseParser

from tokenhub.errors import PayloadTooLarge
from tokenhub.text import FORBIDDEN, find_forbidden

FORBIDDEN_MESSAGE = "Text may not contain NUL characters (\\u0000) or unpaired surrogates."


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _escaped(text: str) -> str:
    return text.encode("unicode_escape", "backslashreplace").decode("ascii")


def json_depth(value: Any) -> int:
    """How deeply arrays and objects nest in `value` (a scalar is 0); iterative, so any depth is safe."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


class LimitedJSONParser(BaseParser):
    """JSON bodies up to settings.API_MAX_BODY_BYTES, counted as read, nested at most API_MAX_JSON_DEPTH
    deep, holding no NUL or unpaired surrogate (tokenhub.text): the API's edge for every body.

    The middleware already refuses a too-large Content-Length; this counts the bytes actually streamed,
    for servers that pass a body longer than its header says. Python's parser gives up on very deep nesting
    with RecursionError (a 500 if let through); that and anything deeper than the setting is a 400.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.", details={"limit": limit})
        max_depth = settings.API_MAX_JSON_DEPTH
        too_deep = ParseError(f"JSON may nest arrays and objects at most {max_depth} levels deep.")
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except RecursionError:
            raise too_deep from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(str(exc)) from exc
        if json_depth(data) > max_depth:
            raise too_deep
        if (where := find_forbidden(data)) is not None:
            # The path may hold the character itself (a key): escaped, the answer can always be rendered.
            raise ValidationError(
                {_escaped(where) if FORBIDDEN.search(where) else where: [FORBIDDEN_MESSAGE]}
            )
        return data
