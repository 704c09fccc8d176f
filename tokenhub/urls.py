from django.contrib import admin
from django.urls import include, path

from tokenhub import health, metrics_view, views

urlpatterns = [
    # First: the API takes the most requests, and every pattern tried before a match costs each of them.
    path("", include("tokenhub.api_urls")),
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_view.metrics, name="metrics"),
    # Before admin/: the operator's analytics page is staff only but not a model admin.
    path("", include("analytics.urls")),
    path("admin/", admin.site.urls),
    path("", include("merchants.urls")),
    path("", include("wallets.urls")),
    path("", include("agents.urls")),
    path("", include("widgets.urls")),
]

# Styled error pages with the navigation; the 500 page needs a request to show it (Django's own has none).
handler403 = "tokenhub.views.permission_denied"
handler404 = "tokenhub.views.page_not_found"
handler500 = "tokenhub.views.server_error"
