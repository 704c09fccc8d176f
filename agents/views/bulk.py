"""Dashboard pages for bulk listings: a CSV upload becomes a batch, with progress and a results CSV."""

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from agents import bulk, selectors
from agents.forms import BulkUploadForm
from agents.tools.messages import field_label
from merchants.actors import Actor
from merchants.decorators import merchant_required
from tokenhub.errors import ApplicationError
from wallets.exceptions import InsufficientTokens


@merchant_required
@require_http_methods(["GET", "POST"])
def bulk_listings(request):
    form = BulkUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > bulk.MAX_BYTES:
            form.add_error("file", bulk.file_too_large_message())
            return render(request, "agents/bulk.html", {"form": form, "batches": []}, status=413)
        try:
            batch = bulk.bulk_create(
                merchant=request.merchant,
                content=upload.read(),
                actor=Actor.user(request.user),
                filename=upload.name,
                created_by=request.user,
            )
        except InsufficientTokens as exc:
            form.add_error(
                None,
                gettext(
                    "This batch needs up to %(required)s tokens and %(available)s are available. Nothing was"
                    " held or charged: top up your wallet, or upload fewer products."
                )
                % {"required": f"{exc.required:,}", "available": f"{exc.available:,}"},
            )
        except ApplicationError as exc:
            form.add_error("file", exc.message)
            for row, errors in (exc.details.get("rows") or {}).items():
                form.add_error(
                    "file",
                    gettext("Row %(row)s: %(problems)s")
                    % {"row": row, "problems": " ".join(f"{field_label(k)}: {v}" for k, v in errors.items())},
                )
        else:
            return redirect("batch-detail", batch_id=batch.id)
    batches = selectors.batches_of(merchant=request.merchant)[:10]
    return render(request, "agents/bulk.html", {"form": form, "batches": batches})


@merchant_required
def batch_detail(request, batch_id):
    batch = selectors.batch_of(merchant=request.merchant, batch_id=batch_id)
    if batch is None:
        raise Http404(gettext("There is no such batch in this store."))
    progress = selectors.batch_progress(batch=batch)
    percent = round(100 * progress["finished"] / progress["total"]) if progress["total"] else 100
    context = {"batch": batch, "progress": progress, "percent": percent}
    template = "agents/_batch_progress.html" if request.htmx else "agents/batch.html"
    return render(request, template, context)


@merchant_required
def batch_results(request, batch_id):
    batch = selectors.batch_of(merchant=request.merchant, batch_id=batch_id)
    if batch is None:
        raise Http404(gettext("There is no such batch in this store."))
    # A UTF-8 byte order mark first, so Excel opens Chinese listings correctly.
    response = HttpResponse("\ufeff" + bulk.bulk_results_csv(batch), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="listings-{batch.created_at:%Y%m%d-%H%M}.csv"'
    return response
