from django.urls import path

from agents import views

urlpatterns = [
    path("tools/<slug:slug>/", views.tool_page, name="tool"),
    path("runs/", views.runs_list, name="runs"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<uuid:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("bulk/", views.bulk_listings, name="bulk-listings"),
    path("bulk/<uuid:batch_id>/", views.batch_detail, name="batch-detail"),
    path("support/", views.support, name="support"),
    path("support/<uuid:conversation_id>/", views.support_conversation, name="support-conversation"),
    path(
        "support/<uuid:conversation_id>/customer/",
        views.support_customer_message,
        name="support-customer-message",
    ),
    path("support/runs/<uuid:run_id>/stream/", views.support_run_stream, name="support-run-stream"),
    path("support/<uuid:conversation_id>/reply/", views.support_staff_reply, name="support-staff-reply"),
    path("bulk/<uuid:batch_id>/results.csv", views.batch_results, name="batch-results"),
]
