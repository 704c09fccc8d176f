from django.contrib.auth import views as auth_views
from django.urls import path

from merchants import views, views_api_keys

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("store/", views.store_profile, name="store-profile"),
    path("team/", views.team, name="team"),
    path("api-keys/", views_api_keys.api_key_list, name="api-keys"),
    path("api-keys/<int:key_id>/revoke/", views_api_keys.api_key_revoke, name="api-key-revoke"),
]
