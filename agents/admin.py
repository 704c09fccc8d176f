"""Runs and batches in admin: read-only for everyone; Support views them, staff with `refund_run` refund."""

from typing import cast

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from agents.models import Batch, Conversation, Message, ProviderPrice, Run
from agents.runs.memos import run_memo
from agents.runs.settle import run_refund
from merchants.actors import Actor
from tokenhub.errors import ApplicationError
from wallets.exceptions import LedgerError
from wallets.models import Transfer

MERCHANT_SEARCH = ["merchant__slug", "merchant__name"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "merchant",
        "tool",
        "status",
        "held",
        "cost",
        "error_code",
        "attempts",
        "created_at",
    ]
    list_filter = ["status", "tool", "error_code"]
    search_fields = ["=id", "=idempotency_key", *MERCHANT_SEARCH]
    list_select_related = ["merchant"]
    date_hierarchy = "created_at"
    actions = ["refund_runs"]
    fieldsets = [
        (None, {"fields": ["id", "merchant", "tool", "status", "batch", "batch_row"]}),
        ("Money", {"fields": ["price", "held", "cost", "uncharged", "hold", "settlement"]}),
        ("Work", {"fields": ["model", "input_tokens", "output_tokens", "attempts", "requeues", "error_code",
                             "error_message", "created_at", "enqueued_at", "started_at", "deadline_at",
                             "finished_at"]}),
        ("Request", {"fields": ["input", "output", "idempotency_key", "request_hash", "created_by",
                                "api_key_id"]}),
    ]  # fmt: skip

    @admin.action(description=_("Refund the selected runs' charges"), permissions=["refund"])
    def refund_runs(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        actor = Actor.staff(request.user)
        refunded = already = 0
        for run in queryset.select_related("merchant"):
            if Transfer.objects.filter(idempotency_key=f"run:{run.pk}:refund").exists():
                already += 1  # a refund is given once; replaying it would move nothing anyway
                continue
            try:
                run_refund(run=run, actor=actor, memo=f"Refund of {run_memo(run.tool, run.pk)}")
                refunded += 1
            except (ApplicationError, LedgerError) as exc:
                self.message_user(request, f"Run {run.pk}: {exc}", messages.WARNING)
        if refunded:
            self.message_user(
                request,
                ngettext("Refunded %(n)s run.", "Refunded %(n)s runs.", refunded) % {"n": refunded},
                messages.SUCCESS,
            )
        if already:
            self.message_user(
                request,
                ngettext(
                    "%(n)s run was already refunded; nothing more was given.",
                    "%(n)s runs were already refunded; nothing more was given.",
                    already,
                )
                % {"n": already},
                messages.WARNING,
            )

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.is_staff and request.user.has_perm("agents.refund_run")


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "merchant", "tool", "row_count", "total_held", "created_at"]
    search_fields = ["=id", *MERCHANT_SEARCH]
    list_select_related = ["merchant"]


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "role", "content", "flagged", "run", "run_cost"]
    readonly_fields = cast(list[str], fields)  # flat names, no field groups
    ordering = ["created_at", "id"]

    @admin.display(description=_("tokens charged"))
    def run_cost(self, message: Message) -> str:
        # On the customer's message: what answering it cost (held while the run is unfinished).
        if message.run is None or message.role != Message.Role.CUSTOMER:
            return "–"  # noqa: RUF001
        run = message.run
        return f"{run.cost:,}" if run.cost is not None else f"{run.status} (held {run.held:,})"

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    """Support reads a bot conversation with the runs (and so the tokens) each answer cost."""

    list_display = ["id", "merchant", "status", "customer_ref", "updated_at", "handed_over_at"]
    list_filter = ["status"]
    search_fields = ["=id", "customer_ref", *MERCHANT_SEARCH]
    list_select_related = ["merchant"]
    date_hierarchy = "updated_at"
    inlines = [MessageInline]
    fields = ["id", "merchant", "status", "customer_ref", "created_at", "updated_at", "handed_over_at"]


@admin.register(ProviderPrice)
class ProviderPriceAdmin(admin.ModelAdmin):
    """What the provider charges, edited like token prices: a new price is a new row, history stays."""

    list_display = [
        "model",
        "input_usd_per_million",
        "cached_input_usd_per_million",
        "output_usd_per_million",
        "effective_from",
        "in_effect",
        "note",
    ]
    list_filter = ["model"]

    @admin.display(boolean=True, description=_("in effect or past"))
    def in_effect(self, price: ProviderPrice) -> bool:
        return price.effective_from <= timezone.now()

    def has_change_permission(self, request: HttpRequest, obj: ProviderPrice | None = None) -> bool:
        if obj is not None and obj.effective_from <= timezone.now():
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: ProviderPrice | None = None) -> bool:
        if obj is not None and obj.effective_from <= timezone.now():
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
