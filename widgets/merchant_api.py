"""The store's support outcomes in the REST API (/api/v1/support/outcomes), the analytics page's numbers."""

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from merchants.api.views import MerchantApiView
from tokenhub.api.schema import RETRY_AFTER, errors
from widgets import selectors


class OutcomeDayOutput(serializers.Serializer):
    date = serializers.DateField()
    conversations = serializers.IntegerField()
    resolved = serializers.IntegerField()
    handed_over = serializers.IntegerField()


class OutcomesOutput(serializers.Serializer):
    days = serializers.IntegerField(
        help_text="Conversations started in this many days, today included (UTC)."
    )
    since = serializers.DateField()
    resolution_window_hours = serializers.IntegerField(
        help_text="Resolved by the bot: it replied, nobody asked for a person, and no new customer message "
        "came within this many hours of its last reply."
    )
    conversations = serializers.IntegerField()
    resolved_by_bot = serializers.IntegerField()
    handed_over = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Answered by the bot, still inside the resolution window.")
    helpful = serializers.IntegerField()
    unhelpful = serializers.IntegerField()
    tokens_per_resolved = serializers.IntegerField(allow_null=True)
    daily = OutcomeDayOutput(many=True)


class DaysInput(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=90, required=False)


class OutcomesApi(MerchantApiView):
    @extend_schema(
        operation_id="support_outcomes",
        summary="Support outcomes: conversations, resolved by the bot, handed over, ratings, tokens",
        parameters=[
            OpenApiParameter(
                "days", {"type": "integer", "minimum": 1, "maximum": 90}, description="Default 30."
            ),
            RETRY_AFTER,
        ],
        responses={200: OutcomesOutput, **errors(400)},
        tags=["conversations"],
    )
    def get(self, request):
        raw = request.query_params.get("days")
        if raw is not None and not raw.isdigit():  # DRF would take `days=` as "not given"
            raise serializers.ValidationError({"days": ["A whole number from 1 to 90."]})
        data = DaysInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        outcomes = selectors.outcomes_of(merchant=request.merchant, days=data.validated_data.get("days", 30))
        body = {
            **outcomes.__dict__,
            "resolution_window_hours": int(selectors.RESOLUTION_WINDOW.total_seconds() // 3600),
        }
        return Response(OutcomesOutput(body).data)


urlpatterns = [path("api/v1/support/outcomes", OutcomesApi.as_view(), name="api-support-outcomes")]
