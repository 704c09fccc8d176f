"""Dashboard pages for the tools: a form, a run that updates itself while it works, the result."""

import json
import time

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from agents import bulk, conversations, selectors, services, streams
from agents.exceptions import AgentsError
from agents.forms import TOOL_FORMS, BulkUploadForm
from agents.models import Run
from agents.tools import registry
from merchants.decorators import merchant_required
from wallets.actors import Actor
from wallets.exceptions import InsufficientTokens
from wallets.selectors import wallet_balance


def _tool_or_404(slug: str):
    if slug not in TOOL_FORMS:
        raise Http404("No such tool.")
    return registry.get(slug)


def _no_tokens_message(exc: InsufficientTokens) -> str:
    return f"This run needs up to {exc.required:,} tokens and your wallet has {exc.available:,} available."


@merchant_required
@require_http_methods(["GET", "POST"])
def tool_page(request, slug: str):
    tool = _tool_or_404(slug)
    form = TOOL_FORMS[slug](request.POST or None)
    run = None
    if request.method == "POST" and form.is_valid():
        try:
            run = services.run_create(
                merchant=request.merchant,
                tool=slug,
                input=form.to_input(),
                actor=Actor.user(request.user),
                created_by=request.user,
            )
        except InsufficientTokens as exc:
            form.add_error(None, _no_tokens_message(exc))
        except AgentsError as exc:
            for field, message in exc.details.items():
                name = str(field).split(".")[0]
                form.add_error(name if name in form.fields else None, f"{field}: {message}")
            if not exc.details:
                form.add_error(None, exc.message)
        else:
            if not request.htmx:
                return redirect("run-detail", run_id=run.id)
    recent = selectors.runs_of(merchant=request.merchant, tool=slug)[:8]
    context = {
        "tool": tool,
        "form": form,
        "run": run,
        "recent": recent,
        "balance": wallet_balance(merchant=request.merchant),
    }
    template = "agents/_tool_panel.html" if request.htmx else "agents/tool.html"
    return render(request, template, context)


@merchant_required
def run_detail(request, run_id):
    run = selectors.run_of(merchant=request.merchant, run_id=run_id)
    if run is None:
        raise Http404("No such run.")
    template = "agents/_run.html" if request.htmx else "agents/run.html"
    response = render(request, template, {"run": run})
    if request.htmx and run.is_finished:
        # Stop the poller and refresh the balance shown elsewhere on the page.
        response["HX-Trigger"] = "run-finished"
    return response


@merchant_required
def runs_list(request):
    status = request.GET.get("status") or None
    tool = request.GET.get("tool") or None
    runs = selectors.runs_of(merchant=request.merchant, tool=tool, status=status)[:100]
    return render(request, "agents/runs.html", {"runs": runs, "tools": registry.all()})


@merchant_required
@require_http_methods(["POST"])
def run_cancel(request, run_id):
    run = selectors.run_of(merchant=request.merchant, run_id=run_id)
    if run is None:
        raise Http404("No such run.")
    try:
        services.run_cancel(run=run, actor=Actor.user(request.user))
        messages.success(request, "Run canceled; its tokens are released.")
    except AgentsError as exc:
        messages.error(request, exc.message)
    return redirect("run-detail", run_id=run.id)


@merchant_required
@require_http_methods(["GET", "POST"])
def bulk_listings(request):
    form = BulkUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > bulk.MAX_BYTES:
            form.add_error("file", f"The file is larger than {bulk.MAX_BYTES // 1024 // 1024} MB.")
            return render(request, "agents/bulk.html", {"form": form, "batches": []}, status=413)
        try:
            batch = services.bulk_create(
                merchant=request.merchant,
                content=upload.read(),
                actor=Actor.user(request.user),
                filename=upload.name,
                created_by=request.user,
            )
        except InsufficientTokens as exc:
            form.add_error(
                None, f"This batch needs up to {exc.required:,} tokens; {exc.available:,} are available."
            )
        except AgentsError as exc:
            form.add_error("file", exc.message)
            for row, errors in (exc.details.get("rows") or {}).items():
                form.add_error("file", f"Row {row}: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
        else:
            return redirect("batch-detail", batch_id=batch.id)
    batches = selectors.batches_of(merchant=request.merchant)[:10]
    return render(request, "agents/bulk.html", {"form": form, "batches": batches})


@merchant_required
def batch_detail(request, batch_id):
    batch = selectors.batch_of(merchant=request.merchant, batch_id=batch_id)
    if batch is None:
        raise Http404("No such batch.")
    progress = selectors.batch_progress(batch=batch)
    percent = round(100 * progress["finished"] / progress["total"]) if progress["total"] else 100
    context = {"batch": batch, "progress": progress, "percent": percent}
    template = "agents/_batch_progress.html" if request.htmx else "agents/batch.html"
    return render(request, template, context)


@merchant_required
def batch_results(request, batch_id):
    batch = selectors.batch_of(merchant=request.merchant, batch_id=batch_id)
    if batch is None:
        raise Http404("No such batch.")
    response = HttpResponse(services.bulk_results_csv(batch), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="listings-{batch.created_at:%Y%m%d-%H%M}.csv"'
    return response


# --- Support bot: a test console and the inbox of conversations handed to a person -----------------
def _conversation_or_404(request, conversation_id):
    conversation = selectors.conversation_of(merchant=request.merchant, conversation_id=conversation_id)
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def _thread_context(conversation) -> dict:
    pending = selectors.conversation_pending_run(conversation=conversation)
    return {
        "conversation": conversation,
        "thread": list(selectors.messages_of(conversation=conversation)),
        "pending": pending,
        "waiting": pending is not None and not pending.is_finished,
        "stream": settings.RUN_STREAM_REPLIES,
    }


def _post_error(request, exc: Exception) -> None:
    if isinstance(exc, InsufficientTokens):
        messages.error(request, _no_tokens_message(exc))
    else:
        messages.error(request, getattr(exc, "message", str(exc)))


@merchant_required
@require_http_methods(["GET", "POST"])
def support(request):
    if request.method == "POST":
        text = request.POST.get("message", "").strip()
        try:
            conversation, _, _ = conversations.conversation_start(
                merchant=request.merchant,
                actor=Actor.user(request.user),
                customer_ref=request.POST.get("customer_ref", "").strip() or "test console",
                message=text or None,
                created_by=request.user,
            )
        except (InsufficientTokens, AgentsError) as exc:
            _post_error(request, exc)
        else:
            return redirect("support-conversation", conversation_id=conversation.id)
    context = {
        "inbox": selectors.conversations_of(merchant=request.merchant, status="needs_human")[:50],
        "recent": selectors.conversations_of(merchant=request.merchant)[:15],
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
        conversations.message_post(
            conversation=conversation,
            content=request.POST.get("message", ""),
            actor=Actor.user(request.user),
            created_by=request.user,
        )
    except (InsufficientTokens, AgentsError) as exc:
        _post_error(request, exc)
    return redirect("support-conversation", conversation_id=conversation.id)


@merchant_required
@require_http_methods(["POST"])
def support_staff_reply(request, conversation_id):
    conversation = _conversation_or_404(request, conversation_id)
    then = request.POST.get("then") or None
    try:
        conversations.staff_reply(
            conversation=conversation, user=request.user, content=request.POST.get("content", ""), then=then
        )
    except AgentsError as exc:
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
    if run is None or run.tool != conversations.TOOL:
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
