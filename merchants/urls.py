from django.contrib.auth import views as auth_views
from django.urls import path

from merchants import views, views_account, views_api_keys, views_invitations, views_language, views_team

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("language/", views_language.language_set, name="language-set"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("store/", views.store_profile, name="store-profile"),
    path("team/", views_team.team, name="team"),
    path("api-keys/", views_api_keys.api_key_list, name="api-keys"),
    path("api-keys/<int:key_id>/revoke/", views_api_keys.api_key_revoke, name="api-key-revoke"),
    path("api-keys/<int:key_id>/rate-limit/", views_api_keys.api_key_rate_limit, name="api-key-rate-limit"),
    path("team/add/", views_team.member_add, name="team-member-add"),
    path("team/<int:membership_id>/role/", views_team.member_role, name="team-member-role"),
    path("team/<int:membership_id>/remove/", views_team.member_remove, name="team-member-remove"),
    path(
        "team/invitations/<int:invitation_id>/withdraw/",
        views_team.invitation_revoke,
        name="team-invitation-revoke",
    ),
    path("invitations/<str:token>/", views_invitations.invitation_accept, name="invitation-accept"),
    path("password/", views.PasswordChangeView.as_view(), name="password-change"),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password/reset/done/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("account/", views_account.account, name="account"),
    path("account/verify/resend/", views_account.email_verification_resend, name="email-verify-resend"),
    path("account/verify/<str:token>/", views_account.email_verify, name="email-verify"),
    path("account/email/", views_account.email_change, name="email-change"),
    path("account/email/<str:token>/", views_account.email_change_confirm, name="email-change-confirm"),
    path("account/sessions/<int:session_id>/end/", views_account.session_revoke, name="session-revoke"),
]
