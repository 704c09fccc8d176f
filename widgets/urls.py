from django.urls import include, path

from widgets import streams, views

urlpatterns = [
    path("", include("widgets.api")),
    path(
        "widget/v1/conversations/<uuid:conversation_id>/events",
        streams.conversation_events,
        name="widget-api-events",
    ),
    path("widget/<str:public_key>.js", views.widget_script, name="widget-script"),
    path("support/widget/", views.widgets_page, name="support-widgets"),
    path("support/widget/<int:widget_id>/", views.widget_page, name="support-widget"),
    path("support/widget/<int:widget_id>/revoke/", views.widget_revoke, name="support-widget-revoke"),
    path("support/articles/", views.articles_page, name="support-articles"),
    path("support/outcomes/", views.outcomes_page, name="support-outcomes"),
]
