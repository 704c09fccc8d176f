from django.urls import path

from agents.conversations import stream as support_stream
from agents.conversations import views as support
from agents.views import bulk, runs, sponsorships

urlpatterns = [
    path("tools/<slug:slug>/", runs.tool_page, name="tool"),
    path("runs/", runs.runs_list, name="runs"),
    path("runs/<uuid:run_id>/", runs.run_detail, name="run-detail"),
    path("runs/<uuid:run_id>/cancel/", runs.run_cancel, name="run-cancel"),
    path("wallet/sponsorships/", sponsorships.sponsorships, name="wallet-sponsorships"),
    path(
        "wallet/sponsorships/<int:sponsorship_id>/<slug:action>/",
        sponsorships.sponsorship_action,
        name="wallet-sponsorship-action",
    ),
    path(
        "wallet/sponsorships/<int:sponsorship_id>/limit/",
        sponsorships.sponsorship_limit,
        name="wallet-sponsorship-limit",
    ),
    path("bulk/", bulk.bulk_listings, name="bulk-listings"),
    path("bulk/<uuid:batch_id>/", bulk.batch_detail, name="batch-detail"),
    path("bulk/<uuid:batch_id>/results.csv", bulk.batch_results, name="batch-results"),
    path("support/", support.support, name="support"),
    path("support/<uuid:conversation_id>/", support.support_conversation, name="support-conversation"),
    path(
        "support/<uuid:conversation_id>/customer/",
        support.support_customer_message,
        name="support-customer-message",
    ),
    path("support/runs/<uuid:run_id>/stream/", support_stream.support_run_stream, name="support-run-stream"),
    path("support/<uuid:conversation_id>/reply/", support.support_staff_reply, name="support-staff-reply"),
]
