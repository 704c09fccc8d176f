"""Dashboard pages of the support bot: a test console and the inbox of conversations handed to a person."""

import json
import time

from django.conf import settings
from django.contrib import messages
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from agents import selectors
from agents.conversations import selectors as conversation_selectors
from agents.conversations import services
from agents.models import Run
from agents.runs import streams
from merchants.actors import Actor
from merchants.decorators import merchant_required
from tokenhub.errors import ApplicationError
from wallets.exceptions import InsufficientTokens
from wallets.selectors import wallet_balance


def _conversation_or_404(request, conversation_id):
    conversation = conversation_selectors.conversation_of(
        merchant=request.merchant, conversation_id=conversation_id
    )
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def _thread_context(conversation) -> dict:
    pending = conversation_selectors.conversation_pending_run(conversation=conversation)
    return {
        "conversation": conversation,
        "thread": list(conversation_selectors.messages_of(conversation=conversation)),
        "pending": pending,
        "waiting": pending is not None and not pending.is_finished,
        "stream": settings.RUN_STREAM_REPLIES,
    }


def _post_error(request, exc: Exception) -> None:
    if isinstance(exc, InsufficientTokens):
        messages.error(request, exc.message)
    else:
        messages.error(request, getattr(exc, "message", str(exc)))


@merchant_required
@require_http_methods(["GET", "POST"])
def support(request):
    if request.method == "POST":
        text = request.POST.get("message", "").strip()
        try:
            conversation, _, _ = services.conversation_start(
                merchant=request.merchant,
                actor=Actor.user(request.user),
                customer_ref=request.POST.get("customer_ref", "").strip() or "test console",
                message=text or None,
                created_by=request.user,
            )
        except (InsufficientTokens, ApplicationError) as exc:
            _post_error(request, exc)
        else:
            return redirect("support-conversation", conversation_id=conversation.id)
    context = {
        "inbox": conversation_selectors.conversations_of(merchant=request.merchant, status="needs_human")[
            :50
        ],
        "recent": conversation_selectors.conversations_of(merchant=request.merchant)[:15],
        "balance": wallet_balance(merchant=request.merchant),
    }
    return render(request, "agents/support.html", context)


@merchant_required
def support_conversation(request, conversation_id):
    conversation = _conversation_or_404(request, conversation_id)
    context = _thread_context(conversation)
    if request.htmx:
        return render(request, "agents/_conversation.html", context)
    return render(request, "agents/support_conversation.html", context)


@merchant_required
@require_http_methods(["POST"])
def support_customer_message(request, conversation_id):
    """The test console: a store member writes as the customer would; the bot's run is paid as usual."""
    conversation = _conversation_or_404(request, conversation_id)
    try:
        services.message_post(
            conversation=conversation,
            content=request.POST.get("message", ""),
            actor=Actor.user(request.user),
            created_by=request.user,
        )
    except (InsufficientTokens, ApplicationError) as exc:
        _post_error(request, exc)
    return redirect("support-conversation", conversation_id=conversation.id)


@merchant_required
@require_http_methods(["POST"])
def support_staff_reply(request, conversation_id):
    conversation = _conversation_or_404(request, conversation_id)
    then = request.POST.get("then") or None
    try:
        services.staff_reply(
            conversation=conversation, user=request.user, content=request.POST.get("content", ""), then=then
        )
    except ApplicationError as exc:
        _post_error(request, exc)
    else:
        if then == "close":
            messages.success(request, "Conversation closed.")
        elif then == "bot":
            messages.success(request, "Handed back to the bot.")
    return redirect("support-conversation", conversation_id=conversation.id)


# An SSE response holds one web thread (gthread) at most this long; the thread's polling shows the stored reply.
STREAM_SECONDS = 25


@merchant_required
def support_run_stream(request, run_id):
    """Server-sent events: the bot's reply as the worker streams it, then `done` once the run finished."""
    run = selectors.run_of(merchant=request.merchant, run_id=run_id)
    if run is None or run.tool != services.TOOL:
        raise Http404("No such run.")

    def events():
        sent, deadline = None, time.monotonic() + STREAM_SECONDS
        while time.monotonic() < deadline:
            finished = Run.objects.filter(pk=run.pk, status__in=Run.TERMINAL).exists()
            reply = streams.partial_reply(streams.stream_text(run.pk))
            if reply and reply != sent:
                sent = reply
                yield f"data: {json.dumps({'reply': reply})}\n\n"
            if finished:
                break
            time.sleep(0.25)
        yield "event: done\ndata: {}\n\n"

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
