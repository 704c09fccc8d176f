"""Tenant-scoped reads of the customer-service bot's conversations: each takes the merchant (or a
conversation already scoped to one) and never returns another tenant's rows."""

from django.db.models import QuerySet

from agents.llm import tokens
from agents.models import Conversation, Message, Run
from agents.selectors import as_uuid
from merchants.models import Merchant


def conversation_of(*, merchant: Merchant, conversation_id) -> Conversation | None:
    """The merchant's conversation, or None for a malformed id or another merchant's (both answer 404)."""
    if (pk := as_uuid(conversation_id)) is None:
        return None
    return Conversation.objects.filter(merchant=merchant, pk=pk).first()


def conversations_of(*, merchant: Merchant, status: str | None = None) -> QuerySet[Conversation]:
    conversations = Conversation.objects.filter(merchant=merchant).order_by("-updated_at", "-pk")
    if status:
        conversations = conversations.filter(status=status)
    return conversations


def messages_of(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.select_related("run", "author").order_by("created_at", "id")


def conversation_pending_run(*, conversation: Conversation) -> Run | None:
    """The run answering the latest customer message, if that message was sent to the bot."""
    latest = (
        conversation.messages.filter(role=Message.Role.CUSTOMER)
        .select_related("run")
        .order_by("-created_at", "-id")
        .first()
    )
    return latest.run if latest is not None else None


def conversation_history(
    *, merchant: Merchant, conversation_id, before, max_turns: int, token_budget: int
) -> list[dict[str, str]]:
    """The turns a bot run replays, oldest first, as ChatML `{role, content}`: the last `max_turns`
    messages of the merchant's conversation created before `before`, flagged ones left out, and only
    as many (newest kept) as fit in `token_budget` prompt tokens. Staff replies count as assistant turns.
    """
    if (pk := as_uuid(conversation_id)) is None:
        return []
    rows = (
        Message.objects.filter(conversation__merchant=merchant, conversation_id=pk, flagged=False)
        .filter(**({"created_at__lt": before} if before is not None else {}))
        .order_by("-created_at", "-id")
        .values_list("role", "content")[:max_turns]
    )
    history: list[dict[str, str]] = []
    used = 0
    for role, content in rows:
        cost = tokens.MESSAGE_OVERHEAD_TOKENS + tokens.count_tokens(content)
        if used + cost > token_budget:
            break
        used += cost
        history.append({"role": "user" if role == Message.Role.CUSTOMER else "assistant", "content": content})
    history.reverse()
    return history
