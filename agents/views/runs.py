"""Dashboard pages for the tools and their runs: a form, a run that updates itself while it works, the result."""

from datetime import date

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from agents import selectors
from agents.forms import TOOL_FORMS
from agents.models import Run
from agents.runs import settle
from agents.runs.create import run_create
from agents.tools import registry
from agents.tools.messages import field_label
from merchants.actors import Actor
from merchants.decorators import merchant_required
from tokenhub.errors import ApplicationError
from wallets.exceptions import InsufficientTokens
from wallets.selectors import wallet_balance

RUNS_SHOWN = 100


def _tool_or_404(slug: str):
    if slug not in TOOL_FORMS:
        raise Http404(gettext("There is no such tool."))
    return registry.get(slug)


@merchant_required
@require_http_methods(["GET", "POST"])
def tool_page(request, slug: str):
    tool = _tool_or_404(slug)
    form = TOOL_FORMS[slug](request.POST or None)
    run = None
    if request.method == "POST" and form.is_valid():
        try:
            run = run_create(
                merchant=request.merchant,
                tool=slug,
                input=form.to_input(),
                actor=Actor.user(request.user),
                created_by=request.user,
            )
        except InsufficientTokens as exc:
            form.add_error(None, exc.message)
        except ApplicationError as exc:
            for field, message in exc.details.items():
                name = str(field).split(".")[0]
                if name in form.fields:  # next to its field, which already shows the label
                    form.add_error(name, str(message))
                else:
                    form.add_error(None, f"{field_label(str(field))}: {message}")
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
    if request.htmx and request.method == "GET" and request.GET.get("part") == "sidebar":
        return render(request, "agents/_tool_sidebar.html", context)
    template = "agents/_tool_panel.html" if request.htmx else "agents/tool.html"
    return render(request, template, context)


@merchant_required
def run_detail(request, run_id):
    run = selectors.run_of(merchant=request.merchant, run_id=run_id)
    if run is None:
        raise Http404(gettext("There is no such run in this store."))
    template = "agents/_run.html" if request.htmx else "agents/run.html"
    response = render(request, template, {"run": run})
    if request.htmx and run.is_finished:
        # Stop the poller and refresh the balance shown elsewhere on the page.
        response["HX-Trigger"] = "run-finished"
    return response


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None  # a hand-edited address: show every day rather than an error


@merchant_required
def runs_list(request):
    # Unknown values (an old bookmark, a hand-edited address) mean "any", never an error page.
    tools = registry.all()
    status = request.GET.get("status") if request.GET.get("status") in Run.Status.values else None
    tool = request.GET.get("tool") if request.GET.get("tool") in {t.slug for t in tools} else None
    since, until = _day(request.GET.get("since")), _day(request.GET.get("until"))
    runs = selectors.runs_of(merchant=request.merchant, tool=tool, status=status, since=since, until=until)
    context = {
        "runs": runs[:RUNS_SHOWN],
        "tools": tools,
        "statuses": Run.Status.choices,
        "filters": {"tool": tool, "status": status, "since": since, "until": until},
        "filtered": bool(tool or status or since or until),
        "runs_shown": RUNS_SHOWN,
    }
    return render(request, "agents/runs.html", context)


@merchant_required
@require_http_methods(["POST"])
def run_cancel(request, run_id):
    run = selectors.run_of(merchant=request.merchant, run_id=run_id)
    if run is None:
        raise Http404(gettext("There is no such run in this store."))
    try:
        settle.run_cancel(run=run, actor=Actor.user(request.user))
        messages.success(request, gettext("Run canceled; its tokens are released."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("run-detail", run_id=run.id)
