from django.contrib import admin
from django.urls import include, path

from tokenhub import health, metrics_view, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_view.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("", include("merchants.urls")),
    path("", include("wallets.urls")),
    path("", include("agents.urls")),
    path("", include("tokenhub.api_urls")),
]
