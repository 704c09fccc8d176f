"""GET /api/v1/wallet and /api/v1/wallet/transfers: the merchant's balance and ledger statement."""

from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.response import Response

from merchants.api.views import MerchantApiView
from tokenhub.api.pagination import TransferPagination
from tokenhub.api.schema import RETRY_AFTER, errors
from wallets import selectors
from wallets.models import Transfer


class WalletOutput(serializers.Serializer):
    balance = serializers.IntegerField(help_text="Tokens credited minus tokens charged.")
    held = serializers.IntegerField(help_text="Tokens reserved by runs in progress.")
    available = serializers.IntegerField(help_text="balance minus held: what new runs may reserve.")


class TransferOutput(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=Transfer.Kind.choices)
    signed_amount = serializers.IntegerField(
        help_text="The change to the posted balance: positive credits, negative charges; 0 for holds and releases."
    )
    run_id = serializers.SerializerMethodField(
        help_text="The run this transfer reserves, charges or releases."
    )

    class Meta:
        model = Transfer
        fields = [
            "id",
            "kind",
            "amount",
            "signed_amount",
            "balance_after",
            "held_after",
            "memo",
            "reference",
            "run_id",
            "created_at",
        ]

    def get_run_id(self, transfer: Transfer) -> str | None:
        # A run's transfers carry it in their cause key, `run:<id>:hold|settle`: no join needed.
        cause, _, rest = transfer.idempotency_key.partition(":")
        return rest.split(":", 1)[0] if cause == "run" else None


class WalletApi(MerchantApiView):
    @extend_schema(
        operation_id="wallet_retrieve",
        summary="The wallet's balance",
        responses={200: WalletOutput, **errors()},
        parameters=[RETRY_AFTER],
        examples=[OpenApiExample("Wallet", value={"balance": 100000, "held": 2400, "available": 97600})],
        tags=["wallet"],
    )
    def get(self, request):
        balance = selectors.wallet_balance(merchant=request.merchant)
        return Response(WalletOutput(balance).data)


@extend_schema_view(
    get=extend_schema(
        operation_id="wallet_transfers_list",
        summary="The wallet's ledger, newest first",
        parameters=[RETRY_AFTER],
        responses={200: TransferOutput(many=True), **errors(400)},
        tags=["wallet"],
    )
)
class TransferListApi(MerchantApiView, generics.ListAPIView):
    serializer_class = TransferOutput
    pagination_class = TransferPagination

    def get_queryset(self):
        return selectors.transfers_of(merchant=self.request.merchant)


urlpatterns = [
    path("api/v1/wallet", WalletApi.as_view(), name="api-wallet"),
    path("api/v1/wallet/transfers", TransferListApi.as_view(), name="api-wallet-transfers"),
]
