"""Dashboard pages of Support → Chat widget, Knowledge articles and Outcomes; and the widget's script."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from merchants.decorators import merchant_required
from tokenhub.errors import ApplicationError, InvalidInput
from widgets import selectors, services
from widgets.forms import ArticleForm, ArticleUploadForm, WidgetForm

SCRIPT = Path(settings.BASE_DIR) / "static" / "widgets" / "widget.js"
CONFIG_MARK = "/*TOKENHUB_WIDGET_CONFIG*/null"
UPLOAD_MAX_BYTES = 2 * 1024 * 1024


@cache
def _script_source() -> str:
    return SCRIPT.read_text(encoding="utf-8")


def script_tag(request, widget) -> str:
    return f'<script src="{request.build_absolute_uri(f"/widget/{widget.public_key}.js")}" async></script>'


@require_GET
def widget_script(request, public_key: str) -> HttpResponse:
    """The widget's script with its configuration: public, cached briefly so a change shows within minutes."""
    widget = selectors.widget_by_public_key(public_key)
    if widget is None:
        response = HttpResponse("/* This chat widget is not available. */\n", status=404)
    else:
        config = {
            "key": widget.public_key,
            "api": request.build_absolute_uri("/").rstrip("/"),
            "title": widget.merchant.name,
            "color": widget.color,
            "language": widget.language,
            "greeting": widget.greeting,
        }
        # </script> cannot appear in JSON output of json.dumps with these escapes: the config is inert.
        blob = json.dumps(config, ensure_ascii=True).replace("<", "\\u003c")
        response = HttpResponse(_script_source().replace(CONFIG_MARK, blob))
        response["Cache-Control"] = "public, max-age=300"
    response["Content-Type"] = "text/javascript; charset=utf-8"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _error(request, exc: ApplicationError) -> None:
    messages.error(request, exc.message)


@merchant_required(manage=True)
@require_http_methods(["GET", "POST"])
def widgets_page(request):
    merchant = request.merchant
    form = WidgetForm(request.POST or None, initial={"language": merchant.default_language})
    if request.method == "POST" and form.is_valid():
        try:
            widget = services.widget_create(merchant=merchant, **form.settings())
        except ApplicationError as exc:
            _error(request, exc)
        else:
            messages.success(request, _("Widget created. Paste its tag into your website."))
            return redirect("support-widget", widget_id=widget.pk)
    context = {
        "form": form,
        "widgets": [
            {"widget": w, "tag": script_tag(request, w), "today": selectors.widget_tokens_today(widget=w)}
            for w in selectors.widgets_of(merchant=merchant)
        ],
    }
    return render(request, "widgets/widgets.html", context)


@merchant_required(manage=True)
@require_http_methods(["GET", "POST"])
def widget_page(request, widget_id):
    widget = selectors.widget_of(merchant=request.merchant, widget_id=widget_id)
    if widget is None:
        raise Http404("No such widget.")
    initial = {
        "name": widget.name,
        "origins": "\n".join(widget.allowed_origins),
        "color": widget.color,
        "language": widget.language,
        "greeting": widget.greeting,
        "daily_token_budget": widget.daily_token_budget,
        "conversation_token_cap": widget.conversation_token_cap,
    }
    form = WidgetForm(request.POST or None, initial=initial)
    if request.method == "POST" and widget.is_active and form.is_valid():
        try:
            services.widget_update(widget=widget, **form.settings())
        except ApplicationError as exc:
            _error(request, exc)
        else:
            messages.success(request, _("Widget saved."))
            return redirect("support-widget", widget_id=widget.pk)
    context = {
        "widget": widget,
        "form": form,
        "tag": script_tag(request, widget),
        "today": selectors.widget_tokens_today(widget=widget),
    }
    return render(request, "widgets/widget.html", context)


@merchant_required(manage=True)
@require_POST
def widget_revoke(request, widget_id):
    widget = selectors.widget_of(merchant=request.merchant, widget_id=widget_id)
    if widget is None:
        raise Http404("No such widget.")
    services.widget_revoke(widget=widget)
    messages.success(request, _("Widget revoked: pages that embed it no longer show the chat."))
    return redirect("support-widgets")


@merchant_required
@require_http_methods(["GET", "POST"])
def articles_page(request):
    merchant = request.merchant
    form = ArticleForm(request.POST if request.POST.get("action") == "add" else None)
    upload = ArticleUploadForm(
        request.POST if request.POST.get("action") == "upload" else None,
        request.FILES if request.POST.get("action") == "upload" else None,
    )
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "add" and form.is_valid():
                services.article_save(merchant=merchant, **form.cleaned_data)
                messages.success(request, _("Article added."))
                return redirect("support-articles")
            if action == "upload" and upload.is_valid():
                created = _import_upload(merchant, upload.cleaned_data["file"])
                messages.success(request, _("%(n)s articles imported.") % {"n": len(created)})
                return redirect("support-articles")
            if action == "profile":
                created = services.articles_import_knowledge_base(merchant=merchant)
                messages.success(request, _("%(n)s articles imported.") % {"n": len(created)})
                return redirect("support-articles")
            if action == "delete" and (
                article := selectors.article_of(merchant=merchant, article_id=request.POST.get("article"))
            ):
                services.article_delete(article=article)
                messages.success(request, _("Article deleted."))
                return redirect("support-articles")
        except ApplicationError as exc:
            _error(request, exc)
    context = {
        "form": form,
        "upload": upload,
        "articles": selectors.articles_of(merchant=merchant),
        "has_profile_knowledge": bool(merchant.knowledge_base.strip()),
    }
    return render(request, "widgets/articles.html", context)


def _import_upload(merchant, file) -> list:
    if file.size > UPLOAD_MAX_BYTES:
        raise InvalidInput(_("The file is larger than 2 MB."), details={"file": file.name})
    try:
        text = file.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(_("Save the file as UTF-8 text."), details={"file": file.name}) from None
    if file.name.lower().endswith(".csv"):
        return services.articles_import_csv(merchant=merchant, text=text)
    return services.articles_import_markdown(merchant=merchant, text=text, default_title=Path(file.name).stem)


CHART_HEIGHT = 120
CHART_BAR = 14


def chart_bars(daily: list[dict]) -> dict:
    """Bar geometry for the outcomes chart (SVG attributes, no inline styles: the site's CSP)."""
    top = max([d["conversations"] for d in daily] + [1])
    bars = []
    for i, day in enumerate(daily):
        total = round(day["conversations"] / top * CHART_HEIGHT)
        resolved = round(day["resolved"] / top * CHART_HEIGHT)
        handed = round(day["handed_over"] / top * CHART_HEIGHT)
        x = i * (CHART_BAR + 4)
        bars.append(
            {
                "x": x,
                "total_y": CHART_HEIGHT - total,
                "total_h": total,
                "resolved_y": CHART_HEIGHT - resolved,
                "resolved_h": resolved,
                "handed_y": CHART_HEIGHT - resolved - handed,
                "handed_h": handed,
                "day": day,
                "label": i % 7 == 0,
            }
        )
    return {
        "bars": bars,
        "width": len(daily) * (CHART_BAR + 4),
        "height": CHART_HEIGHT,
        "bar": CHART_BAR,
        "top": top,
    }


@merchant_required
def outcomes_page(request):
    outcomes = selectors.outcomes_of(merchant=request.merchant)
    context = {
        "outcomes": outcomes,
        "chart": chart_bars(outcomes.daily),
        "window_hours": int(selectors.RESOLUTION_WINDOW.total_seconds() // 3600),
    }
    return render(request, "widgets/outcomes.html", context)
