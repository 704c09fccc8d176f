"""The customer-service bot's endpoints of /api/v1/: conversations and their messages. Thin, like runs."""

from django.urls import path
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from agents.api.runs import RunOutput, idempotency_key_of
from agents.conversations import selectors, services
from agents.models import Conversation, Message
from agents.runs.budgets import run_create_for_key
from merchants.api.views import MerchantApiView
from tokenhub.api.pagination import NewestFirstPagination
from tokenhub.api.schema import RETRY_AFTER, errors

MESSAGE_MAX = 2000  # the customer-service tool's limit on a customer message


class StrictCharField(serializers.CharField):
    """A JSON string only: DRF would turn a number or a boolean into its text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class _NoUnknownFields(serializers.Serializer):
    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


class ConversationCreateInput(_NoUnknownFields):
    customer_ref = StrictCharField(
        max_length=120, required=False, allow_blank=True, help_text="Your own id for the customer."
    )
    message = StrictCharField(
        min_length=1, max_length=MESSAGE_MAX, required=False, help_text="The customer's first message."
    )


class MessageCreateInput(_NoUnknownFields):
    message = StrictCharField(min_length=1, max_length=MESSAGE_MAX, help_text="The customer's message.")


class MessageOutput(serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=Message.Role.choices)
    sources = serializers.ListField(child=serializers.CharField(), help_text="Knowledge-base sections used.")
    flagged = serializers.BooleanField(help_text="Rejected by moderation: not replayed to the bot.")

    class Meta:
        model = Message
        fields = ["id", "role", "content", "sources", "flagged", "created_at"]


@extend_schema_field(RunOutput(allow_null=True))
class PendingRunField(serializers.Field):
    def to_representation(self, value):
        return RunOutput(value).data if value is not None else None


class ConversationOutput(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices)
    messages = serializers.SerializerMethodField()
    run = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id",
            "status",
            "customer_ref",
            "created_at",
            "updated_at",
            "handed_over_at",
            "messages",
            "run",
        ]

    @extend_schema_field(MessageOutput(many=True))
    def get_messages(self, conversation: Conversation):
        return MessageOutput(selectors.messages_of(conversation=conversation), many=True).data

    @extend_schema_field(RunOutput(allow_null=True))
    def get_run(self, conversation: Conversation):
        run = selectors.conversation_pending_run(conversation=conversation)
        return RunOutput(run).data if run is not None else None


class ConversationSummaryOutput(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices)

    class Meta:
        model = Conversation
        fields = ["id", "status", "customer_ref", "created_at", "updated_at", "handed_over_at"]


class ConversationFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)


class MessagePostedOutput(serializers.Serializer):
    message = MessageOutput()
    run = PendingRunField(
        help_text="The run answering the message; null while the conversation waits for a person."
    )


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
    OpenApiParameter.HEADER,
    description="Makes retries safe: the same key and message answer the same message and run.",
)


def _run_creator(request):
    def create(**fields):
        fields.pop("api_key_id", None)
        return run_create_for_key(api_key=request.api_key, **fields)

    return create


def _conversation_or_404(request, conversation_id) -> Conversation:
    conversation = selectors.conversation_of(merchant=request.merchant, conversation_id=conversation_id)
    if conversation is None:
        raise NotFound()
    return conversation


class ConversationCollectionApi(MerchantApiView, generics.ListAPIView):
    serializer_class = ConversationSummaryOutput
    pagination_class = NewestFirstPagination

    @extend_schema(
        operation_id="conversations_list",
        summary="The store's conversations, newest first; without their messages",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=[value for value, _label in Conversation.Status.choices],
                description="Only conversations in this status (needs_human: the inbox).",
            ),
            RETRY_AFTER,
        ],
        responses={200: ConversationSummaryOutput(many=True), **errors(400)},
        tags=["conversations"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = ConversationFilters(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.conversations_of(merchant=self.request.merchant, **filters.validated_data)

    @extend_schema(
        operation_id="conversations_create",
        summary="Start a conversation with the customer-service bot, optionally with its first message",
        description=(
            "Answers 201 with the conversation. With a `message`, a run answering it is created and held "
            "at once (`run`); poll GET /api/v1/conversations/{id} for the reply. With an "
            "`Idempotency-Key`, the same key and body answer 201 with the first conversation (nothing more "
            "is held); the same key with another body answers 409 `idempotency_conflict`."
        ),
        request=ConversationCreateInput,
        parameters=[IDEMPOTENCY_HEADER, RETRY_AFTER],
        responses={201: ConversationOutput, **errors(400, 402, 409, 413)},
        examples=[
            OpenApiExample(
                "First message",
                request_only=True,
                value={"customer_ref": "cust-42", "message": "Do you ship to Canada?"},
            )
        ],
        tags=["conversations"],
    )
    def post(self, request):
        data = ConversationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        conversation, _message, _run = services.conversation_start(
            merchant=request.merchant,
            actor=request.actor,
            customer_ref=data.validated_data.get("customer_ref"),
            message=data.validated_data.get("message"),
            idempotency_key=idempotency_key_of(request),
            created_by=None if request.api_key else request.user,
            run_creator=_run_creator(request),
        )
        return Response(ConversationOutput(conversation).data, status=201)


class ConversationDetailApi(MerchantApiView):
    @extend_schema(
        operation_id="conversations_retrieve",
        summary="One conversation: its status, messages and the run answering the latest message",
        parameters=[RETRY_AFTER],
        responses={200: ConversationOutput, **errors(404)},
        tags=["conversations"],
    )
    def get(self, request, conversation_id):
        return Response(ConversationOutput(_conversation_or_404(request, conversation_id)).data)


class ConversationMessagesApi(MerchantApiView):
    @extend_schema(
        operation_id="conversations_messages_create",
        summary="Send the customer's next message; the bot's answer is a held run",
        description=(
            "Answers 202 with the stored message and the run answering it. While the conversation waits "
            "for a person (`needs_human`), the message is stored for staff and `run` is null: nothing is "
            "held or charged. A closed conversation answers 409 `conversation_closed`."
        ),
        request=MessageCreateInput,
        parameters=[IDEMPOTENCY_HEADER, RETRY_AFTER],
        responses={202: MessagePostedOutput, **errors(400, 402, 404, 409, 413)},
        tags=["conversations"],
    )
    def post(self, request, conversation_id):
        conversation = _conversation_or_404(request, conversation_id)
        data = MessageCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        message, run = services.message_post(
            conversation=conversation,
            content=data.validated_data["message"],
            actor=request.actor,
            idempotency_key=idempotency_key_of(request),
            created_by=None if request.api_key else request.user,
            run_creator=_run_creator(request),
        )
        return Response(MessagePostedOutput({"message": message, "run": run}).data, status=202)


urlpatterns = [
    path("api/v1/conversations", ConversationCollectionApi.as_view(), name="api-conversations"),
    path(
        "api/v1/conversations/<uuid:conversation_id>",
        ConversationDetailApi.as_view(),
        name="api-conversation",
    ),
    path(
        "api/v1/conversations/<uuid:conversation_id>/messages",
        ConversationMessagesApi.as_view(),
        name="api-conversation-messages",
    ),
]
