"""Dashboard pages of the support bot: a test console and the inbox of conversations handed to a person."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from agents.conversations import selectors as conversation_selectors
from agents.conversations import services
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
        raise Http404(gettext("There is no such conversation in this store."))
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
            messages.success(request, gettext("Conversation closed."))
        elif then == "bot":
            messages.success(request, gettext("Handed back to the bot."))
    return redirect("support-conversation", conversation_id=conversation.id)
