import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from tokenhub.errors import PayloadTooLarge


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class LimitedJSONParser(BaseParser):
    """JSON bodies up to settings.API_MAX_BODY_BYTES, counted as read.

    The middleware already refuses a too-large Content-Length; this counts the bytes actually streamed,
    for servers that pass a body longer than its header says.
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.", details={"limit": limit})
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(str(exc)) from exc
