"""The customer-service bot's conversations: customer turns become paid runs, replies come back with them.

A customer message and the run that answers it are created in one transaction through `run_create`, so
the hold, `InsufficientTokens` (nothing stored) and idempotency keys work as for any run. The bot joins
the run engine through hooks (`agents.conversations.hooks`): the run's prompt replays the conversation, and
when the run succeeds its reply is appended in the same commit as its charge (`conversation_reply_record`). A reply asking for a person
hands the conversation to staff: later customer messages wait for them and create no run (no charge).
A message the provider's moderation rejects is flagged and never replayed again.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.errors import ConversationClosed, IdempotencyConflict, InvalidRunInput
from agents.models import Conversation, Message, Run
from agents.runs.create import run_create
from merchants.actors import Actor
from merchants.emails import email_send
from merchants.models import Membership, Merchant

TOOL = "customer-service"
Status = Conversation.Status
Role = Message.Role


def _touch(conversation: Conversation, **fields: Any) -> None:
    fields["updated_at"] = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(**fields)
    for name, value in fields.items():
        setattr(conversation, name, value)


def conversation_start(
    *,
    merchant: Merchant,
    actor: Actor,
    customer_ref: str | None = None,
    message: str | None = None,
    idempotency_key: str | None = None,
    created_by=None,
    api_key_id: int | None = None,
    run_creator=None,
) -> tuple[Conversation, Message | None, Run | None]:
    """A new open conversation and, with `message`, its first customer turn (and the run answering it).

    One transaction: when the first turn cannot be paid for (InsufficientTokens), nothing is created.
    A replayed `idempotency_key` answers the first conversation (IdempotencyConflict if the customer
    reference or the first message differ); two concurrent starts with one key create one conversation.
    """
    customer_ref = (customer_ref or "")[:120]
    if idempotency_key is not None and (
        replayed := _conversation_replayed(merchant, idempotency_key, customer_ref, message)
    ):
        return replayed
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                merchant=merchant, customer_ref=customer_ref, idempotency_key=idempotency_key
            )
            if message is None:
                return conversation, None, None
            posted, run = message_post(
                conversation=conversation,
                content=message,
                actor=actor,
                created_by=created_by,
                api_key_id=api_key_id,
                run_creator=run_creator,
            )
            return conversation, posted, run
    except IntegrityError:
        # A concurrent start with the same key won the unique constraint: answer with its conversation.
        if idempotency_key is None or not (
            replayed := _conversation_replayed(merchant, idempotency_key, customer_ref, message)
        ):
            raise
        return replayed


def _conversation_replayed(
    merchant: Merchant, idempotency_key: str, customer_ref: str, message: str | None
) -> tuple[Conversation, Message | None, Run | None] | None:
    first = Conversation.objects.filter(merchant=merchant, idempotency_key=idempotency_key).first()
    if first is None:
        return None
    posted = (
        first.messages.filter(role=Role.CUSTOMER).select_related("run").order_by("created_at", "id").first()
    )
    same_message = (posted.content if posted else None) == ((message or "").strip() or None)
    if first.customer_ref != customer_ref or not same_message:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used to start a different conversation.",
            details={"idempotency_key": idempotency_key, "conversation": str(first.pk)},
        )
    return first, posted, posted.run if posted else None


def message_post(
    *,
    conversation: Conversation,
    content: str,
    actor: Actor,
    idempotency_key: str | None = None,
    created_by=None,
    api_key_id: int | None = None,
    run_creator=None,
) -> tuple[Message, Run | None]:
    """Store a customer message and, while the bot has the conversation, the run that answers it.

    Raises ConversationClosed (409), InvalidRunInput, InsufficientTokens (nothing stored),
    IdempotencyConflict. A replayed Idempotency-Key answers the first message and run. While the
    conversation waits for a human, the message is stored with no run: nothing is held or charged.
    `run_creator` (default `run_create`) lets the API apply a key's budget.
    """
    content = (content or "").strip()
    create = run_creator or run_create
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        conversation.status = locked.status
        if idempotency_key is not None and (
            first := Message.objects.filter(conversation=locked, idempotency_key=idempotency_key).first()
        ):
            # Checked under the conversation's lock, so concurrent retries see the first one's message.
            if first.content != content:
                raise IdempotencyConflict(
                    "This Idempotency-Key was already used with a different message.",
                    details={"idempotency_key": idempotency_key, "message": str(first.pk)},
                )
            return first, first.run
        if locked.status == Status.CLOSED:
            raise ConversationClosed(
                "This conversation is closed; start a new one.", details={"conversation": str(locked.pk)}
            )
        run = None
        if locked.status == Status.OPEN:
            # Validated by the tool (the message's length limits), priced with the history, held.
            run = create(
                merchant=locked.merchant,
                tool=TOOL,
                input={"conversation": str(locked.pk), "message": content},
                actor=actor,
                idempotency_key=idempotency_key,
                created_by=created_by,
                api_key_id=api_key_id,
            )
            replayed = Message.objects.filter(run=run, role=Role.CUSTOMER).first()
            if replayed is not None:
                return replayed, run
        elif not content or len(content) > 2000:
            raise InvalidRunInput(
                "message: use 1 to 2000 characters.", details={"message": "Use 1 to 2000 characters."}
            )
        message = Message.objects.create(
            conversation=locked,
            role=Role.CUSTOMER,
            content=content,
            run=run,
            idempotency_key=idempotency_key,
            created_at=timezone.now(),
        )
        _touch(conversation)
        return message, run


def conversation_reply_record(*, run: Run) -> Message | None:
    """The bot's reply as an assistant message (the run engine's success hook, inside its transaction).

    Only for a run answering a stored customer message. `needs_human` hands an open conversation over.
    """
    if run.tool != TOOL or not isinstance(run.output, dict):
        return None
    asked = Message.objects.filter(run=run, role=Role.CUSTOMER).select_related("conversation").first()
    if asked is None:
        return None
    conversation = asked.conversation
    reply, _ = Message.objects.get_or_create(
        run=run,
        role=Role.ASSISTANT,
        defaults={
            "conversation": conversation,
            "content": str(run.output.get("reply", ""))[: Message.MAX_LENGTH],
            "sources": list(run.output.get("sources") or []),
        },
    )
    now = timezone.now()
    if run.output.get("needs_human") and Conversation.objects.filter(
        pk=conversation.pk, status=Status.OPEN
    ).update(status=Status.NEEDS_HUMAN, handed_over_at=now):
        _handover_notify(conversation)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=now)
    return reply


def conversation_hand_over(*, conversation: Conversation) -> bool:
    """The customer asked for a person: an open conversation waits for staff (later messages create no
    run, so nothing is charged). True if it changed; a conversation already waiting or closed stays so."""
    with transaction.atomic():
        changed = Conversation.objects.filter(pk=conversation.pk, status=Status.OPEN).update(
            status=Status.NEEDS_HUMAN, handed_over_at=timezone.now(), updated_at=timezone.now()
        )
        if changed:
            _handover_notify(conversation)
        conversation.refresh_from_db(fields=["status", "handed_over_at", "updated_at"])
        return bool(changed)


def _handover_notify(conversation: Conversation) -> None:
    """Email the store's owners and managers that a customer waits for a person (sent after commit)."""
    managers = Membership.objects.filter(
        merchant_id=conversation.merchant_id, role__in=[Membership.Role.OWNER, Membership.Role.MANAGER]
    ).select_related("user", "merchant")
    for membership in managers:
        email_send(
            to=membership.user.email,
            template="support_handover",
            context={"store": membership.merchant.name, "conversation_id": str(conversation.pk)},
            language=getattr(membership.user, "language", None) or None,
        )


def conversation_message_flag(*, run: Run) -> int:
    """Moderation rejected the run: flag the customer message it answered, so no later turn replays it."""
    return Message.objects.filter(run=run, role=Role.CUSTOMER).update(flagged=True)


def staff_reply(
    *, conversation: Conversation, user, content: str = "", then: str | None = None
) -> Message | None:
    """A store member's reply (no run, no charge); `then`: "close", or "bot" to hand back to the bot.

    Raises ConversationClosed for a closed conversation, InvalidRunInput for an empty or long reply
    (an empty reply is allowed with `then`: only the status changes).
    """
    content = (content or "").strip()
    if then not in (None, "", "close", "bot"):
        raise InvalidRunInput("then: use close or bot.", details={"then": "Use close or bot."})
    if len(content) > Message.MAX_LENGTH or (not content and not then):
        raise InvalidRunInput(
            f"content: use 1 to {Message.MAX_LENGTH} characters.",
            details={"content": f"Use 1 to {Message.MAX_LENGTH} characters."},
        )
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.status == Status.CLOSED:
            raise ConversationClosed("This conversation is closed.", details={"conversation": str(locked.pk)})
        message = None
        if content:
            message = Message.objects.create(
                conversation=locked, role=Role.STAFF, content=content, author=user, created_at=timezone.now()
            )
        fields: dict[str, Any] = {}
        if then == "close":
            fields["status"] = Status.CLOSED
        elif then == "bot":
            fields["status"] = Status.OPEN
        _touch(conversation, **fields)
        return message
