"""The widget's live view of one conversation, as server-sent events: the bot's reply as the worker
streams it (read through `agents.runs.streams`, like the dashboard), new messages (the stored reply, a
staff member's answer) and status changes (a person has joined). A response lasts while there is something
to wait for (a reply being written, or a person while the conversation waits for one), at most
STREAM_SECONDS; the script then reconnects with `after=<last message id>` if it still waits, so a reload or
a dropped connection loses nothing and an idle chat holds no web thread.

The script reads it with fetch() (EventSource cannot send the Authorization header).
"""

from __future__ import annotations

import json
import time

from django.http import HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from agents.models import Conversation, Message, Run
from agents.runs import streams
from tokenhub.api.exceptions import error_json_response
from tokenhub.errors import ApplicationError
from widgets import selectors
from widgets.api import bearer_token, message_json, widget_of_request

# Like the dashboard's stream: one web thread at most this long, then the script reconnects.
STREAM_SECONDS = 25
TICK_SECONDS = 0.3


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@require_GET
def conversation_events(request: HttpRequest, conversation_id) -> HttpResponseBase:
    try:
        widget = widget_of_request(request)  # type: ignore[arg-type]
        visitor = selectors.visitor_conversation_of(
            widget=widget,
            conversation_id=conversation_id,
            token=bearer_token(request),  # type: ignore[arg-type]
        )
        if visitor is None:
            return error_json_response("not_found", "Not found.")
    except ApplicationError as exc:
        return error_json_response(exc.code, exc.message, exc.details, status=exc.status)
    try:
        after = int(request.GET.get("after") or 0)
    except ValueError:
        after = 0
    conversation, merchant = visitor.conversation, widget.merchant

    def events():
        cursor, status, sent = after, None, None
        deadline = time.monotonic() + STREAM_SECONDS
        while time.monotonic() < deadline:
            current = Conversation.objects.filter(pk=conversation.pk).values_list("status", flat=True).first()
            if current != status:
                status = current
                yield _event("status", {"status": status, "human": status == Conversation.Status.NEEDS_HUMAN})
            for message in Message.objects.filter(conversation=conversation, pk__gt=cursor).order_by("pk"):
                cursor = message.pk
                yield _event(
                    "message",
                    message_json(message, selectors.citations_of(merchant=merchant, labels=message.sources)),
                )
            pending = (
                Run.objects.filter(messages__conversation=conversation, messages__role=Message.Role.CUSTOMER)
                .exclude(status__in=Run.TERMINAL)
                .order_by("-created_at")
                .values_list("pk", flat=True)
                .first()
            )
            if pending is not None:
                reply = streams.partial_reply(streams.stream_text(pending))
                if reply and reply != sent:
                    sent = reply
                    yield _event("reply", {"run": str(pending), "reply": reply})
            elif status != Conversation.Status.NEEDS_HUMAN:
                break  # nothing to wait for: the bot answered (or was never asked), nobody is awaited
            time.sleep(TICK_SECONDS)
        yield _event("end", {"after": cursor})

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
