"""GET /metrics: Prometheus exposition, for a scraper holding METRICS_TOKEN (404 when none is set)."""

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from tokenhub.metrics import AppCollectors, RecordedCollector


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are not enabled.")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        return HttpResponse("A metrics token is required.\n", status=401, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RecordedCollector())
    registry.register(AppCollectors())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
