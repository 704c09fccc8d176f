from django.contrib.auth import views as auth_views
from django.urls import path

from merchants import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("store/", views.store_profile, name="store-profile"),
    path("team/", views.team, name="team"),
]
