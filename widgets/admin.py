"""Widgets, visitor conversations and ratings in admin: read-only, for Support."""

from django.contrib import admin

from agents.admin import MERCHANT_SEARCH, ReadOnlyAdmin
from widgets.models import Article, Rating, VisitorConversation, Widget


@admin.register(Widget)
class WidgetAdmin(ReadOnlyAdmin):
    list_display = ["id", "merchant", "name", "public_key", "daily_token_budget", "created_at", "revoked_at"]
    search_fields = ["=public_key", *MERCHANT_SEARCH]
    list_select_related = ["merchant"]


@admin.register(VisitorConversation)
class VisitorConversationAdmin(ReadOnlyAdmin):
    list_display = ["conversation", "widget", "origin", "created_at"]
    search_fields = ["=conversation__id", "=widget__public_key"]
    list_select_related = ["widget", "conversation"]
    exclude = ["token_hash"]  # proves a visitor's identity: nobody needs to read it


@admin.register(Rating)
class RatingAdmin(ReadOnlyAdmin):
    list_display = ["message", "helpful", "created_at"]
    list_filter = ["helpful"]


@admin.register(Article)
class ArticleAdmin(ReadOnlyAdmin):
    list_display = ["id", "merchant", "title", "url", "updated_at"]
    search_fields = ["title", *MERCHANT_SEARCH]
    list_select_related = ["merchant"]
