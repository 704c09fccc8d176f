"""The tools and runs endpoints of /api/v1/. Thin: validate, call a service or selector, render."""

import re
from datetime import datetime
from typing import Any

from django.urls import path
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from agents import selectors
from agents.models import Run
from agents.runs.budgets import run_create_for_key
from agents.runs.settle import run_cancel
from agents.tools import registry
from merchants.api.views import MerchantApiView
from tokenhub.api.pagination import NewestFirstPagination
from tokenhub.api.schema import RETRY_AFTER, errors
from wallets.selectors import current_prices, funding_of

TOOL_SLUGS = registry.slugs()
STATUSES = [status for status, _label in Run.Status.choices]
JSON_OBJECT = serializers.DictField(child=serializers.JSONField())


# --- Tools -----------------------------------------------------------------------------------------
class PricesOutput(serializers.Serializer):
    input_weight = serializers.FloatField(help_text="Wallet tokens per model input token.")
    output_weight = serializers.FloatField(help_text="Wallet tokens per model output token.")


class ToolOutput(serializers.Serializer):
    slug = serializers.ChoiceField(choices=TOOL_SLUGS)
    name = serializers.CharField()
    description = serializers.CharField()
    input_schema = serializers.DictField(child=serializers.JSONField(), help_text="JSON Schema of `input`.")
    model = serializers.CharField()
    max_output_tokens = serializers.IntegerField(source="max_tokens")
    prices = PricesOutput(allow_null=True, help_text="Null while the model has no price (it cannot run).")


class ToolListApi(MerchantApiView):
    @extend_schema(
        operation_id="tools_list",
        summary="The tools a run can use, with their input schemas and prices",
        parameters=[RETRY_AFTER],
        responses={200: ToolOutput(many=True), **errors()},
        tags=["tools"],
    )
    def get(self, request):
        prices = current_prices()
        tools = [
            {
                "slug": tool.slug,
                "name": tool.name,
                "description": tool.description,
                "input_schema": tool.input_schema(),
                "model": tool.model,
                "max_tokens": tool.max_tokens,
                "prices": prices.get(tool.model),
            }
            for tool in registry.all()
        ]
        return Response(ToolOutput(tools, many=True).data)


# --- Runs ------------------------------------------------------------------------------------------
@extend_schema_field(
    {"type": "string", "enum": TOOL_SLUGS, "description": "A tool's slug (GET /api/v1/tools)."}
)
class ToolSlugField(serializers.CharField):
    """A string, checked by the service: an unknown slug is `unknown_tool`, not a generic invalid field."""


class RunCreateInput(serializers.Serializer):
    tool = ToolSlugField(max_length=64)
    input = serializers.DictField(child=serializers.JSONField(), help_text="Fits the tool's `input_schema`.")

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def idempotency_key_of(request) -> str | None:
    """The optional Idempotency-Key header; 1 to 255 visible ASCII characters (Stripe's limit)."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise serializers.ValidationError({"Idempotency-Key": ["Use 1 to 255 visible ASCII characters."]})
    return key


class RunFilters(serializers.Serializer):
    tool = serializers.ChoiceField(choices=TOOL_SLUGS, required=False)
    status = serializers.ChoiceField(choices=STATUSES, required=False)


class UsageOutput(serializers.Serializer):
    input_tokens = serializers.IntegerField(allow_null=True)
    output_tokens = serializers.IntegerField(allow_null=True)


class RunErrorOutput(serializers.Serializer):
    code = serializers.CharField(source="error_code")
    message = serializers.CharField(source="error_text")


class RunWaitingOutput(serializers.Serializer):
    reason = serializers.ChoiceField(choices=["retrying", "worker_lost", "handed_back"], source="waiting")
    message = serializers.CharField(source="waiting_message")


class FundingPartOutput(serializers.Serializer):
    source = serializers.ChoiceField(choices=["sponsored", "promotional", "paid"])  # type: ignore[assignment]
    held = serializers.IntegerField(help_text="Tokens this source reserved for the run.")
    charged = serializers.IntegerField(
        help_text="Tokens this source was charged; 0 until the run is charged."
    )
    sponsor = serializers.CharField(
        help_text="The sponsoring store's name, for a sponsored part; else empty."
    )


class RunOutput(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=Run.Status.choices)
    input = JSON_OBJECT
    output = serializers.DictField(child=serializers.JSONField(), allow_null=True)
    usage = UsageOutput(source="*")
    held = serializers.IntegerField(help_text="Tokens reserved for the run: the most it can cost.")
    cost = serializers.IntegerField(allow_null=True, help_text="Tokens charged; null until the run ends.")
    error = serializers.SerializerMethodField()
    waiting = serializers.SerializerMethodField(
        help_text="While a started run waits in the queue again: why (a retry, a lost or restarted worker)."
    )
    funding = serializers.SerializerMethodField(
        help_text="Who pays, part by part in the order the run draws on them: a sponsorship, then "
        "promotional credits, then the store's paid tokens."
    )

    class Meta:
        model = Run
        fields = [
            "id",
            "tool",
            "status",
            "input",
            "output",
            "usage",
            "held",
            "cost",
            "error",
            "waiting",
            "funding",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def to_representation(self, instance: Run) -> dict[str, Any]:
        # The declared fields above are the schema, and `declared_representation` renders through them
        # (tests/api/test_run_output.py holds the two equal for runs in every state). Every run answered
        # goes through here, and DRF builds and deep-copies ~30 field objects per serializer: a run is
        # rendered directly instead.
        run = instance
        return {
            "id": str(run.id),
            "tool": run.tool,
            "status": str(run.status),
            "input": _json_object(run.input),
            "output": None if run.output is None else _json_object(run.output),
            "usage": {"input_tokens": run.input_tokens, "output_tokens": run.output_tokens},
            "held": run.held,
            "cost": run.cost,
            "error": self.get_error(run),
            "waiting": self.get_waiting(run),
            "funding": self.get_funding(run),
            "created_at": _date(run.created_at),
            "started_at": _date(run.started_at),
            "finished_at": _date(run.finished_at),
        }

    def declared_representation(self, instance: Run) -> dict[str, Any]:
        """The run as DRF renders the declared fields (what `to_representation` must equal)."""
        return dict(super().to_representation(instance))

    @extend_schema_field(FundingPartOutput(many=True))
    def get_funding(self, run: Run):
        return [
            {"source": part.source, "held": part.held, "charged": part.charged, "sponsor": part.sponsor}
            for part in funding_of(first_hold=run.hold, total=run.held)
        ]

    @extend_schema_field(RunErrorOutput(allow_null=True))
    def get_error(self, run: Run):
        return {"code": run.error_code, "message": run.error_text} if run.error_code else None

    @extend_schema_field(RunWaitingOutput(allow_null=True))
    def get_waiting(self, run: Run):
        return {"reason": run.waiting, "message": run.waiting_message} if run.waiting_message else None


_DATETIME = serializers.DateTimeField()  # ISO 8601 in the active time zone, as every API date is rendered


def _date(value: datetime | None) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


def _json_object(value: dict) -> dict[str, Any]:
    return {str(key): item for key, item in value.items()}


RUN_EXAMPLE = {
    "id": "6f1c2a9e-8d7b-4c1e-9a53-2b7d0e4f5a61",
    "tool": "listing-writer",
    "status": "queued",
    "input": {"product_name": "Linen apron", "marketplace": "shopify"},
    "output": None,
    "usage": {"input_tokens": None, "output_tokens": None},
    "held": 5190,
    "cost": None,
    "error": None,
    "waiting": None,
    "funding": [{"source": "paid", "held": 5190, "charged": 0, "sponsor": ""}],
    "created_at": "2026-11-22T12:00:00Z",
    "started_at": None,
    "finished_at": None,
}


class RunCollectionApi(MerchantApiView, generics.ListAPIView):
    serializer_class = RunOutput
    pagination_class = NewestFirstPagination

    @extend_schema(
        operation_id="runs_list",
        summary="The merchant's runs, newest first",
        parameters=[
            OpenApiParameter("tool", str, enum=TOOL_SLUGS, description="Only runs of this tool."),
            OpenApiParameter("status", str, enum=STATUSES, description="Only runs in this status."),
            RETRY_AFTER,
        ],
        responses={200: RunOutput(many=True), **errors(400)},
        tags=["runs"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = RunFilters(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.runs_of(merchant=self.request.merchant, **filters.validated_data)

    @extend_schema(
        operation_id="runs_create",
        summary="Start a run: validated, priced and paid for (held) now, done by a worker",
        description=(
            "Answers 202 with the queued run; poll GET /api/v1/runs/{id}. With an `Idempotency-Key`, "
            "sending the same key and body again answers 202 with the same run (nothing more is held); "
            "the same key with another body answers 409 `idempotency_conflict`."
        ),
        request=RunCreateInput,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
                OpenApiParameter.HEADER,
                description="Makes retries safe: the same key and body answer the same run.",
            ),
            RETRY_AFTER,
        ],
        responses={202: RunOutput, **errors(400, 402, 409, 413)},
        examples=[
            OpenApiExample(
                "A listing",
                request_only=True,
                value={
                    "tool": "listing-writer",
                    "input": {"product_name": "Linen apron", "marketplace": "shopify"},
                },
            ),
            OpenApiExample("Queued", response_only=True, status_codes=["202"], value=RUN_EXAMPLE),
        ],
        tags=["runs"],
    )
    def post(self, request):
        data = RunCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        run = run_create_for_key(
            api_key=request.api_key,
            merchant=request.merchant,
            tool=data.validated_data["tool"],
            input=data.validated_data["input"],
            actor=request.actor,
            idempotency_key=idempotency_key_of(request),
            created_by=None if request.api_key else request.user,
        )
        return Response(RunOutput(run).data, status=202)


def _run_or_404(request, run_id) -> Run:
    run = selectors.run_of(merchant=request.merchant, run_id=run_id)
    if run is None:
        raise NotFound()
    return run


class RunDetailApi(MerchantApiView):
    @extend_schema(
        operation_id="runs_retrieve",
        summary="One run: status, output, usage and cost",
        parameters=[RETRY_AFTER],
        responses={200: RunOutput, **errors(404)},
        examples=[OpenApiExample("Queued", value=RUN_EXAMPLE)],
        tags=["runs"],
    )
    def get(self, request, run_id):
        return Response(RunOutput(_run_or_404(request, run_id)).data)


class RunCancelApi(MerchantApiView):
    @extend_schema(
        operation_id="runs_cancel",
        summary="Cancel a queued run and release its hold",
        request=None,
        parameters=[RETRY_AFTER],
        responses={200: RunOutput, **errors(404, 409, 413)},
        tags=["runs"],
    )
    def post(self, request, run_id):
        run = run_cancel(run=_run_or_404(request, run_id), actor=request.actor)
        return Response(RunOutput(run).data)


urlpatterns = [
    path("api/v1/tools", ToolListApi.as_view(), name="api-tools"),
    path("api/v1/runs", RunCollectionApi.as_view(), name="api-runs"),
    path("api/v1/runs/<uuid:run_id>", RunDetailApi.as_view(), name="api-run"),
    path("api/v1/runs/<uuid:run_id>/cancel", RunCancelApi.as_view(), name="api-run-cancel"),
]
