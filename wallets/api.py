"""GET /api/v1/wallet and /api/v1/wallet/transfers: the merchant's balance and ledger statement."""

from typing import cast

from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.response import Response

from merchants.api.views import MerchantApiView
from merchants.models import Merchant
from tokenhub.api.pagination import TransferPagination
from tokenhub.api.schema import RETRY_AFTER, errors
from wallets import selectors
from wallets.models import Account, Sponsorship, Transfer
from wallets.selectors import sponsorship_month_usage, sponsorships_of


class PromoBlockOutput(serializers.Serializer):
    tokens = serializers.IntegerField(help_text="Tokens left in this block of promotional credits.")
    expires_at = serializers.DateTimeField(help_text="After this moment what is left of the block is gone.")


class WalletOutput(serializers.Serializer):
    balance = serializers.IntegerField(
        help_text="The store's tokens (paid and promotional) credited minus charged."
    )
    held = serializers.IntegerField(help_text="Tokens reserved by runs in progress.")
    available = serializers.IntegerField(
        help_text="balance minus held: what new runs may reserve from the store's own tokens."
    )
    paid_available = serializers.IntegerField(help_text="Of `available`, bought and granted tokens.")
    promotional_available = serializers.IntegerField(
        help_text="Of `available`, promotional and trial credits; runs use these before paid tokens."
    )
    promotional = PromoBlockOutput(many=True, help_text="Promotional credits, soonest-expiring first.")
    sponsored_available = serializers.IntegerField(
        help_text="Tokens this store can still spend this month from another store's sponsorship; 0 when none."
    )


class SponsoredByOutput(serializers.Serializer):
    sponsor = serializers.CharField()
    beneficiary = serializers.CharField()


class TransferOutput(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=Transfer.Kind.choices)
    signed_amount = serializers.IntegerField(
        help_text="The change to the posted balance: positive credits, negative charges; 0 for holds and releases."
    )
    run_id = serializers.SerializerMethodField(
        help_text="The run this transfer reserves, charges or releases."
    )
    # A field named like Field.source: the serializer metaclass takes it, mypy sees the attribute.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["sponsored", "promotional", "paid"],
        help_text="Which tokens moved: a sponsor's, promotional credits, or paid tokens.",
    )
    sponsorship = serializers.SerializerMethodField(
        help_text="For a sponsored transfer: the sponsor and the sponsored store, by name."
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
            "source",
            "sponsorship",
            "created_at",
        ]

    def to_representation(self, transfer: Transfer):
        data = super().to_representation(transfer)
        merchant = self.context.get("merchant")
        if (
            merchant is not None
            and transfer.wallet is not None
            and transfer.wallet.merchant_id != merchant.pk
        ):
            # A sponsor's transfer for this store's run: its balances are the sponsor's, not ours to show.
            data["balance_after"] = data["held_after"] = None
        return data

    @extend_schema_field(SponsoredByOutput(allow_null=True))
    def get_sponsorship(self, transfer: Transfer):
        if transfer.sponsorship_month_id is None or transfer.beneficiary is None:
            return None
        sponsor, beneficiary = cast(Account, transfer.wallet).merchant, transfer.beneficiary.merchant
        return {"sponsor": cast(Merchant, sponsor).name, "beneficiary": cast(Merchant, beneficiary).name}

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
        examples=[
            OpenApiExample(
                "Wallet",
                value={
                    "balance": 150000,
                    "held": 2400,
                    "available": 147600,
                    "paid_available": 97600,
                    "promotional_available": 50000,
                    "promotional": [{"tokens": 50000, "expires_at": "2026-12-16T12:00:00Z"}],
                    "sponsored_available": 0,
                },
            )
        ],
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

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "merchant": self.request.merchant}

    def get_queryset(self):
        return selectors.transfers_of(merchant=self.request.merchant)


class SponsorshipOutput(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.SerializerMethodField(
        help_text="'sponsor' when this store pays, 'beneficiary' when it is paid for."
    )
    sponsor = serializers.CharField(source="sponsor.name")
    beneficiary = serializers.CharField(source="beneficiary.name")
    status = serializers.ChoiceField(choices=Sponsorship.Status.choices)
    monthly_limit = serializers.IntegerField()
    tools = serializers.ListField(
        child=serializers.CharField(), help_text="Tools it pays for; empty means all."
    )
    used_this_month = serializers.SerializerMethodField(
        help_text="Tokens charged or held against this month's limit."
    )
    created_at = serializers.DateTimeField()

    def get_role(self, sponsorship: Sponsorship) -> str:
        return "sponsor" if sponsorship.sponsor_id == self.context["merchant"].pk else "beneficiary"

    def get_used_this_month(self, sponsorship: Sponsorship) -> int:
        held, spent, _limit = sponsorship_month_usage(sponsorship)
        return held + spent


@extend_schema_view(
    get=extend_schema(
        operation_id="sponsorships_list",
        summary="Sponsorships this store gives or receives",
        parameters=[RETRY_AFTER],
        responses={200: SponsorshipOutput(many=True), **errors(400)},
        tags=["wallet"],
    )
)
class SponsorshipListApi(MerchantApiView, generics.ListAPIView):
    serializer_class = SponsorshipOutput
    pagination_class = None

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "merchant": self.request.merchant}

    def get_queryset(self):
        return sponsorships_of(merchant=self.request.merchant)


urlpatterns = [
    path("api/v1/wallet", WalletApi.as_view(), name="api-wallet"),
    path("api/v1/wallet/transfers", TransferListApi.as_view(), name="api-wallet-transfers"),
    path("api/v1/sponsorships", SponsorshipListApi.as_view(), name="api-sponsorships"),
]
