from django.urls import path

from analytics import views

urlpatterns = [
    path("staff/analytics/", views.analytics_page, name="staff-analytics"),
    path("staff/analytics/refresh/", views.analytics_refresh, name="staff-analytics-refresh"),
]
