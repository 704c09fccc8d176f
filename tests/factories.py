import secrets
import uuid

import factory
from django.contrib.auth import get_user_model

from merchants.models import Membership, Merchant

PASSWORD = "correct-horse-battery-staple-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Store {n}")
    slug = factory.Sequence(lambda n: f"store-{n}")
    brand_voice = "Warm, concise, no exclamation marks."


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    merchant = factory.SubFactory(MerchantFactory)
    role = Membership.Role.OWNER


# --- Money and runs: every test that needs tokens, a key, a run or a conversation builds it here, through
# the same services the product uses (so a "funded merchant" is funded on the real ledger).


def fund(merchant: Merchant, tokens: int, *, key: str | None = None):
    """Grant `tokens` to the merchant's paid wallet, as `create_merchant --tokens` does; returns the transfer.

    Replaying the same `key` grants nothing more; without one every call is a new grant."""
    from merchants.actors import Actor
    from wallets import services

    return services.promotion_credit(
        wallet=services.wallet_of(merchant=merchant),
        amount=tokens,
        key=key or f"test:grant:{uuid.uuid4()}",
        actor=Actor.system("tests"),
        memo="Test tokens",
    )


class FundedMerchantFactory(MerchantFactory):
    """A merchant with `tokens` (default 1,000,000) on its paid wallet: `FundedMerchantFactory(tokens=500)`."""

    @classmethod
    def _create(cls, model_class, *args, tokens: int = 1_000_000, **kwargs):
        merchant = super()._create(model_class, *args, **kwargs)
        if tokens:
            fund(merchant, tokens)
        return merchant


class ApiKeyFactory(factory.Factory):
    """A new API key through the real service; the raw key (shown once) is on `.raw_key`."""

    class Meta:
        model = dict  # built by api_key_create, not by the factory

    merchant = factory.SubFactory(FundedMerchantFactory)
    name = "test key"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from merchants.api_keys import api_key_create

        created = api_key_create(**kwargs)
        created.api_key.raw_key = created.raw_key
        return created.api_key

    _build = _create


class RunFactory(factory.Factory):
    """A queued run with its real hold (run_create): pass `tool` and `input`, or take a listing."""

    class Meta:
        model = dict

    merchant = factory.SubFactory(FundedMerchantFactory)
    tool = "listing-writer"
    input = factory.LazyFunction(
        lambda: {"product_name": "Aurora Lamp", "features": ["Dimmable warm light"], "marketplace": "shopify"}
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from agents.runs.create import run_create
        from merchants.actors import Actor

        return run_create(actor=Actor.system("tests"), **kwargs)

    _build = _create


class ConversationFactory(factory.Factory):
    """An open bot conversation (conversation_start); with `message`, its first turn and the run answering."""

    class Meta:
        model = dict

    merchant = factory.SubFactory(FundedMerchantFactory)
    customer_ref = factory.Sequence(lambda n: f"customer-{n}")
    message = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from agents.conversations.services import conversation_start
        from merchants.actors import Actor

        conversation, _message, _run = conversation_start(actor=Actor.system("tests"), **kwargs)
        return conversation

    _build = _create


def _first_pack():
    from wallets.models import TopupPack

    return TopupPack.objects.first()


class TopupPaymentFactory(factory.django.DjangoModelFactory):
    """A paid Stripe top-up's record; pass the `transfer` that credited it (key `stripe:<session id>`)."""

    class Meta:
        model = "wallets.TopupPayment"

    merchant = factory.SubFactory(MerchantFactory)
    pack = factory.LazyFunction(lambda: _first_pack())
    tokens = 1_000_000
    amount_cents = 500
    currency = "usd"
    status = "paid"
    checkout_session_id = factory.Sequence(lambda n: f"cs_test_factory_{n}")


class WidgetFactory(factory.django.DjangoModelFactory):
    """A store's chat widget, allowed on https://shop.example (the public key is random, like the real one)."""

    class Meta:
        model = "widgets.Widget"

    merchant = factory.SubFactory(MerchantFactory)
    public_key = factory.LazyFunction(lambda: f"pk_{secrets.token_urlsafe(18)}")
    allowed_origins = factory.LazyFunction(lambda: ["https://shop.example"])


class ArticleFactory(factory.django.DjangoModelFactory):
    """A knowledge article with its chunks (built by the service, as the dashboard does)."""

    class Meta:
        model = "widgets.Article"

    merchant = factory.SubFactory(MerchantFactory)
    title = factory.Sequence(lambda n: f"Article {n}")
    body = "Shipping: we ship to Canada."
    url = ""

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from widgets.services import article_save

        return article_save(**kwargs)


class TopupPackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "wallets.TopupPack"

    name = factory.Sequence(lambda n: f"Pack {n}")
    tokens = 50_000
    price_cents = 1_000
    currency = "usd"


class RechargeSettingsFactory(factory.django.DjangoModelFactory):
    """Auto-recharge switched on with a saved card (as the setup webhook leaves it): pass `wallet`."""

    class Meta:
        model = "wallets.RechargeSettings"

    enabled = True
    threshold = 10_000
    pack = factory.SubFactory(TopupPackFactory)
    monthly_max_count = 10
    stripe_customer_id = factory.Sequence(lambda n: f"cus_test_factory_{n}")
    payment_method_id = factory.Sequence(lambda n: f"pm_test_factory_{n}")
    card_brand = "visa"
    card_last4 = "4242"
