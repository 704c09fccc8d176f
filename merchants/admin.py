"""People and stores in admin, for Support: find a store, see its figures, follow links to everything it owns.

Other apps add to a merchant's page with `merchant_admin_extend` (figures on top, links), so this module
imports none of them; every admin model with a foreign key to Merchant gets a link on its own.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from merchants.exceptions import NotAllowed
from merchants.lockout import account_locked, account_unlock
from merchants.models import ApiKey, Invitation, Membership, Merchant, OutboundEmail, User
from merchants.signals import UNLOCK_PERMISSION

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

# At 1280 px the app list beside every page took a quarter of the width and cut the last columns of the
# ledger lists (amount, balance, actor, deciders); the breadcrumbs and the index page still lead everywhere.
admin.site.enable_nav_sidebar = False

Figure = tuple[str, str]  # (label, value)
Link = tuple[str, str]  # (label, url)
_figures: list[Callable[[Merchant], list[Figure]]] = []
_links: list[Callable[[Merchant], list[Link]]] = []


def merchant_admin_extend(
    *,
    figures: Callable[[Merchant], list[Figure]] | None = None,
    links: Callable[[Merchant], list[Link]] | None = None,
) -> None:
    """Add figures (shown on top of a merchant's admin page) and links to it, from another app's admin."""
    if figures is not None:
        _figures.append(figures)
    if links is not None:
        _links.append(links)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class _MemberCount(TypedDict):
    """What MerchantAdmin.get_queryset annotates onto each merchant."""

    member_count: int


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "members", "default_language", "created_at"]
    search_fields = ["name", "slug", "memberships__user__email"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]
    readonly_fields = ["figures", "related"]

    class Media:
        css = {"all": ["merchants/admin.css"]}

    fieldsets = (
        ("At a glance", {"fields": ("figures", "related")}),
        (None, {"fields": ("name", "slug", "default_language", "brand_voice", "knowledge_base")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Merchant]:
        return super().get_queryset(request).annotate(member_count=Count("memberships", distinct=True))

    @admin.display(description=_("members"), ordering="member_count")
    def members(self, merchant: "WithAnnotations[Merchant, _MemberCount]") -> int:
        return merchant.member_count

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # adding: nothing to glance at yet
            return (
                (None, {"fields": ("name", "slug", "default_language", "brand_voice", "knowledge_base")}),
            )
        return super().get_fieldsets(request, obj)

    @admin.display(description=_("figures"))
    def figures(self, merchant: Merchant) -> str:
        rows = [figure for source in _figures for figure in source(merchant)]
        if not rows:
            return "—"
        return format_html(
            '<div class="th-figures">{}</div>',
            format_html_join(
                "",
                '<div><div class="th-figure-label">{}</div><div class="th-figure-value">{}</div></div>',
                rows,
            ),
        )

    @admin.display(description=_("open"))
    def related(self, merchant: Merchant) -> str:
        links = [link for source in _links for link in source(merchant)] + _foreign_key_links(merchant)
        joined = format_html_join(" · ", '<a href="{}">{}</a>', ((url, label) for label, url in links))
        return format_html('<span class="th-links">{}</span>', joined) if joined else "—"


def _foreign_key_links(merchant: Merchant) -> list[Link]:
    """A link to the admin list of every registered model that belongs to a merchant, filtered to this one."""
    links = []
    for model in admin.site._registry:
        if model is Merchant:
            continue
        for field in model._meta.get_fields():
            if isinstance(field, models.ForeignKey) and field.related_model is Merchant and field.concrete:
                opts = model._meta
                try:
                    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
                except NoReverseMatch:
                    break
                label = str(opts.verbose_name_plural).capitalize()
                links.append((label, f"{url}?{field.name}__id__exact={merchant.pk}"))
                break
    return sorted(links)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "merchant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "merchant__slug", "merchant__name"]
    list_select_related = ["user", "merchant"]
    autocomplete_fields = ["user", "merchant"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "is_staff", "is_active", "email_verified_at", "date_joined"]
    search_fields = ["email"]
    fieldsets = (
        (None, {"fields": ("email", "password", "email_verified_at", "login_status")}),
        ("Name", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ["login_status"]
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    actions = ["unlock_selected"]

    @admin.display(description=_("log-in"))
    def login_status(self, user: User) -> str:
        if user.pk is None:
            return "—"
        if account_locked(user=user):
            return "Paused after wrong passwords (use the “Unlock log-in” action on the list of users)"
        return "Not paused"

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(UNLOCK_PERMISSION)

    @admin.action(description=_("Unlock log-in (clear wrong-password pauses)"), permissions=["unlock"])
    def unlock_selected(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            cleared = account_unlock(user=user)
            self.message_user(
                request,
                gettext("%(email)s: log-in unlocked (%(cleared)s records cleared).")
                % {"email": user.email, "cleared": cleared},
                messages.SUCCESS,
            )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made by merchants and shown once; staff look, may revoke, and may raise a key's rate limit
    (rate_limit_per_minute is the one editable field). A revoked key stays revoked."""

    list_display = [
        "name",
        "prefix",
        "merchant",
        "rate_limit_per_minute",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "name", "merchant__slug", "merchant__name"]
    list_select_related = ["merchant"]
    readonly_fields = [
        "merchant", "name", "prefix", "hashed_key", "created_by", "created_at", "last_used_at", "revoked_at",
    ]  # fmt: skip
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Revoke selected keys"), permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        from merchants.api_keys import api_key_revoke

        for key in queryset.select_related("merchant"):
            api_key_revoke(merchant=key.merchant, key_id=key.pk)
        self.message_user(
            request, gettext("Revoked the selected keys; they stop working now."), messages.SUCCESS
        )

    def save_model(self, request, obj, form, change):
        try:
            super().save_model(request, obj, form, change)
        except (
            NotAllowed
        ) as exc:  # pragma: no cover - revoked_at is read-only here; the model is the backstop
            self.message_user(request, str(exc), messages.ERROR)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ["email", "merchant", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role"]
    search_fields = ["email", "merchant__slug", "merchant__name"]
    list_select_related = ["merchant"]
    exclude = ["token_hash"]


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ReadOnlyAdmin):
    """What was mailed, to whom, and whether the mail server took it. Bodies are not kept once sent."""

    list_display = ["created_at", "to", "template", "status", "attempts", "sent_at", "error"]
    list_filter = ["status", "template"]
    search_fields = ["=to"]
    exclude = ["body_text", "body_html"]
    show_full_result_count = False

    @admin.display(description=_("last error"))
    def error(self, message: OutboundEmail) -> str:
        return (message.last_error[:80] + "…") if len(message.last_error) > 80 else message.last_error
