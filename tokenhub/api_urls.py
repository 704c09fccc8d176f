"""The REST API (/api/v1/) and its OpenAPI schema and docs. Each app contributes its own api urls."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("wallets.api")),
    path("", include("agents.api")),
    path("", include("agents.api_conversations")),
]
