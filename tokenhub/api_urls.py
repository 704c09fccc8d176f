"""The REST API (/api/v1/) and its OpenAPI schema and docs. Each app contributes its own api urls."""

from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

# The split view serves its start-up script as a file, so scripts stay 'self' only; Swagger UI still needs
# its own <style> block and data: images, for this page alone.
_swagger_ui = csp_update({"style-src": ["'unsafe-inline'"], "img-src": ["data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema")
)

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", _swagger_ui, name="api-docs"),
    path("", include("wallets.api")),
    path("", include("agents.api.urls")),
    path("", include("widgets.merchant_api")),
]
