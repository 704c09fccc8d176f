"""The OpenAPI parts every endpoint shares: the Bearer scheme and the error body on each error status."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from tokenhub.api.exceptions import GLUE_STATUS


class BearerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "merchants.api.authentication.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "thk_<prefix>.<secret>",
            "description": "An API key from the dashboard's API keys page or `manage.py create_api_key`.",
        }


# The codes a client can meet: the glue's own, and those the services' errors carry.
ERROR_CODES = sorted(
    {
        *GLUE_STATUS,
        "unknown_tool",
        "insufficient_tokens",
        "budget_exceeded",
        "idempotency_conflict",
        "run_not_cancelable",
        "conversation_closed",
        "tool_unavailable",
    }
)

Error = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.ChoiceField(choices=ERROR_CODES),
                "message": serializers.CharField(),
                "details": serializers.DictField(
                    child=serializers.JSONField(), help_text="Per-code facts, e.g. required and available."
                ),
            },
        )
    },
)

_DESCRIPTIONS = {
    400: "invalid_input (a bad field, parameter or body; not JSON) or unknown_tool",
    401: "unauthenticated: no key, or a key that is not valid or was revoked",
    402: "insufficient_tokens (details: required, available) or budget_exceeded (the key's monthly budget)",
    403: "forbidden: a signed-in user who is not a member of a store, or a session call without CSRF token",
    404: "not_found, also for another merchant's objects",
    409: "idempotency_conflict, run_not_cancelable, or conversation_closed",
    413: "payload_too_large: the body is over the size limit (64 KiB by default)",
    429: "rate_limited: too many requests for this key; retry after Retry-After seconds",
}
_EXAMPLES = {
    402: {
        "code": "insufficient_tokens",
        "message": "This needs 2,048 tokens; 100 are available.",
        "details": {"required": 2048, "available": 100},
    },
    429: {
        "code": "rate_limited",
        "message": "Too many requests; retry in 12 s.",
        "details": {"retry_after": 12},
    },
}
RETRY_AFTER = OpenApiParameter(
    "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429], description="Seconds to wait."
)


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error responses of an endpoint: 401, 403 and 429 always, plus `statuses`."""
    responses = {}
    for status in sorted({401, 403, 429, *statuses}):
        example = _EXAMPLES.get(
            status, {"code": _DESCRIPTIONS[status].split()[0].rstrip(":,"), "message": "…", "details": {}}
        )
        responses[status] = OpenApiResponse(
            Error,
            description=_DESCRIPTIONS[status],
            examples=[OpenApiExample(f"{status}", value={"error": example}, status_codes=[status])],
        )
    return responses
