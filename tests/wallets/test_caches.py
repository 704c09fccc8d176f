"""Prices and wallet ids come from process memory, without ever charging a price before its time."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import MerchantFactory
from wallets import services
from wallets.models import Account, Price
from wallets.selectors import price_for

pytestmark = pytest.mark.django_db


def test_a_price_entered_ahead_of_time_is_not_used_before_its_moment_and_is_used_after_it(
    django_assert_num_queries,
):
    current = price_for(model="qwen-plus")
    starts = timezone.now() + timedelta(seconds=1.5)
    future = Price.objects.create(
        model="qwen-plus", input_weight=Decimal("2"), output_weight=Decimal("6"), effective_from=starts
    )
    assert price_for(model="qwen-plus") == current  # loads the rows, the future one included

    with django_assert_num_queries(0):
        assert price_for(model="qwen-plus") == current
        time.sleep(max(0.0, (starts - timezone.now()).total_seconds()) + 0.05)
        assert price_for(model="qwen-plus") == future  # from the same cached rows, at its effective_from


def test_a_price_saved_in_this_process_is_seen_at_once():
    assert price_for(model="qwen-plus") is not None
    newer = Price.objects.create(
        model="qwen-plus",
        input_weight=Decimal("2"),
        output_weight=Decimal("6"),
        effective_from=timezone.now(),
    )
    assert price_for(model="qwen-plus") == newer


def test_a_price_asked_for_a_past_moment_comes_from_the_database():
    then = timezone.now()
    Price.objects.create(
        model="qwen-plus", input_weight=Decimal("2"), output_weight=Decimal("6"), effective_from=then
    )
    old = price_for(model="qwen-plus", at=then - timedelta(seconds=1))
    assert old is not None and old.input_weight == Decimal("1")


def test_a_model_without_a_price_has_none():
    assert price_for(model="no-such-model") is None


def test_the_wallet_id_is_looked_up_once_and_its_balance_is_always_read_fresh(django_assert_num_queries):
    merchant = MerchantFactory()
    wallet = services.wallet_of(merchant=merchant)
    with django_assert_num_queries(0):
        cached = services.wallet_of(merchant=merchant)
    assert cached.pk == wallet.pk and cached.kind == Account.Kind.WALLET and cached.merchant_id == merchant.pk
    services.promotion_credit(wallet=cached, amount=500, key="cache-test", actor=_system(), memo="test")
    assert services.wallet_of(merchant=merchant).balance == 500
    assert services.wallet_of(merchant=merchant).available == 500


def _system():
    from merchants.actors import Actor

    return Actor.system("tests")
