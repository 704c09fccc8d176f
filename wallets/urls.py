from django.urls import path

from wallets import views

urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/statement.csv", views.statement_csv, name="wallet-statement-csv"),
]
