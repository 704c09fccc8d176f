from django.contrib.auth import views as auth_views
from django.urls import path

from merchants import views, views_api_keys, views_team

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("store/", views.store_profile, name="store-profile"),
    path("team/", views_team.team, name="team"),
    path("api-keys/", views_api_keys.api_key_list, name="api-keys"),
    path("api-keys/<int:key_id>/revoke/", views_api_keys.api_key_revoke, name="api-key-revoke"),
    path("team/add/", views_team.member_add, name="team-member-add"),
    path("team/<int:membership_id>/role/", views_team.member_role, name="team-member-role"),
    path("team/<int:membership_id>/remove/", views_team.member_remove, name="team-member-remove"),
    path("password/", views.PasswordChangeView.as_view(), name="password-change"),
]
