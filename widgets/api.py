"""The visitor API the widget's script calls (/widget/v1/): public, authenticated by the widget's public
key (`X-Widget-Key`) and the page's `Origin`, then per conversation by its visitor token (`Authorization:
Bearer <token>`). Errors use the API's one body. CORS headers are added by `widgets.middleware`.
"""

from __future__ import annotations

from django.urls import path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.api.runs import idempotency_key_of
from agents.conversations import selectors as conversation_selectors
from agents.models import Conversation, Message
from tokenhub.errors import NotFound
from widgets import selectors, services
from widgets.errors import OriginNotAllowed, VisitorUnauthenticated, WidgetKeyInvalid
from widgets.models import VisitorConversation, Widget

ORIGIN_META = "tokenhub.widget_origin"  # set once the origin is verified; the CORS middleware reads it


def client_address(request) -> str:
    # Behind the project's nginx the client is the first X-Forwarded-For hop; only a rate-limit key.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return (forwarded.split(",")[0].strip() or request.META.get("REMOTE_ADDR", ""))[:64]


def widget_of_request(request: Request) -> Widget:
    """The active widget named by X-Widget-Key, used from one of its allowed origins."""
    widget = selectors.widget_by_public_key(request.headers.get("X-Widget-Key", ""))
    if widget is None:
        raise WidgetKeyInvalid()
    origin = request.headers.get("Origin", "")
    if origin not in widget.allowed_origins:
        raise OriginNotAllowed(details={"origin": origin[:200]})
    getattr(request, "_request", request).META[ORIGIN_META] = origin
    return widget


def bearer_token(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise VisitorUnauthenticated()
    return token.strip()


def visitor_of_request(request: Request, conversation_id) -> VisitorConversation:
    widget = widget_of_request(request)
    token = bearer_token(request)
    visitor = selectors.visitor_conversation_of(widget=widget, conversation_id=conversation_id, token=token)
    if visitor is None:
        raise NotFound(details={"conversation": str(conversation_id)[:64]})
    return visitor


def message_json(message: Message, citations: list[dict[str, str]]) -> dict:
    rating = getattr(message, "rating", None) if message.role == Message.Role.ASSISTANT else None
    return {
        "id": message.pk,
        "role": message.role,
        "content": message.content,
        "created_at": message.created_at.isoformat(),
        "citations": citations,
        "rating": None if rating is None else rating.helpful,
    }


def conversation_json(visitor: VisitorConversation, *, after: int | None = None) -> dict:
    conversation = visitor.conversation
    conversation.refresh_from_db(fields=["status", "handed_over_at", "updated_at"])
    messages = conversation_selectors.messages_of(conversation=conversation).select_related("rating")
    if after is not None:
        messages = messages.filter(pk__gt=after)
    pending = conversation_selectors.conversation_pending_run(conversation=conversation)
    return {
        "id": str(conversation.pk),
        "status": conversation.status,
        "human": conversation.status == Conversation.Status.NEEDS_HUMAN,
        "staff_joined": conversation.messages.filter(role=Message.Role.STAFF).exists(),
        "messages": [
            message_json(m, selectors.citations_of(merchant=conversation.merchant, labels=m.sources))
            for m in messages
        ],
        "run": None
        if pending is None
        else {"id": str(pending.pk), "status": pending.status, "finished": pending.is_finished},
    }


class VisitorApi(APIView):
    # Public endpoints: our own checks replace DRF's authentication, permissions and throttles.
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    schema = None  # not part of the merchant API's OpenAPI document


class MessageInput(serializers.Serializer):
    message = serializers.CharField(max_length=services.MESSAGE_MAX_CHARS, trim_whitespace=True)

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


class RatingInput(serializers.Serializer):
    helpful = serializers.BooleanField()


class ConversationsApi(VisitorApi):
    def post(self, request):
        widget = widget_of_request(request)
        visitor, token = services.visitor_start(
            widget=widget, origin=request.headers.get("Origin", ""), client=client_address(request)
        )
        return Response({**conversation_json(visitor), "visitor_token": token}, status=201)


class ConversationApi(VisitorApi):
    def get(self, request, conversation_id):
        return Response(conversation_json(visitor_of_request(request, conversation_id)))


class MessagesApi(VisitorApi):
    def post(self, request, conversation_id):
        visitor = visitor_of_request(request, conversation_id)
        data = MessageInput(data=request.data)
        data.is_valid(raise_exception=True)
        message, run = services.visitor_message(
            visitor=visitor,
            content=data.validated_data["message"],
            idempotency_key=idempotency_key_of(request),
        )
        return Response(
            {
                "message": message_json(message, []),
                "run": None if run is None else {"id": str(run.pk), "status": run.status, "finished": False},
            },
            status=202,
        )


class HumanApi(VisitorApi):
    def post(self, request, conversation_id):
        visitor = visitor_of_request(request, conversation_id)
        services.visitor_hand_over(visitor=visitor)
        return Response(conversation_json(visitor))


class RatingApi(VisitorApi):
    def post(self, request, message_id):
        widget = widget_of_request(request)
        token = bearer_token(request)
        message = Message.objects.filter(pk=message_id).only("conversation_id").first()
        visitor = selectors.visitor_conversation_of(
            widget=widget, conversation_id=message.conversation_id if message else None, token=token
        )
        if visitor is None:
            raise NotFound(details={"message": message_id})
        data = RatingInput(data=request.data)
        data.is_valid(raise_exception=True)
        rating = services.rating_set(
            visitor=visitor, message_id=message_id, helpful=data.validated_data["helpful"]
        )
        return Response({"message": rating.message_id, "helpful": rating.helpful})


urlpatterns = [
    path("widget/v1/conversations", ConversationsApi.as_view(), name="widget-api-conversations"),
    path(
        "widget/v1/conversations/<uuid:conversation_id>",
        ConversationApi.as_view(),
        name="widget-api-conversation",
    ),
    path(
        "widget/v1/conversations/<uuid:conversation_id>/messages",
        MessagesApi.as_view(),
        name="widget-api-messages",
    ),
    path("widget/v1/conversations/<uuid:conversation_id>/human", HumanApi.as_view(), name="widget-api-human"),
    path("widget/v1/messages/<int:message_id>/rating", RatingApi.as_view(), name="widget-api-rating"),
]
