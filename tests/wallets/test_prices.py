"""Prices: effective-dated weights and a cost that rounds any fraction of a token up, exactly."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from wallets.models import Price, TopupPack
from wallets.selectors import current_prices, price_for, topup_packs


def _price(input_weight, output_weight) -> Price:
    return Price(model="m", input_weight=input_weight, output_weight=output_weight)


@pytest.mark.parametrize(
    ("weights", "tokens", "cost"),
    [
        (("1.0", "3.0"), (1_000, 500), 2_500),  # whole numbers stay whole
        (("0.125", "1.0"), (3, 0), 1),  # 0.375 of a token is charged as one
        (("0.125", "1.0"), (8, 0), 1),  # exactly 1.000: no extra token
        (("0.125", "1.0"), (9, 0), 2),  # 1.125 rounds up
        (("0.125", "1.0"), (0, 0), 0),  # nothing used, nothing charged
        (("0.000001", "0.000001"), (1, 0), 1),  # the smallest weight still costs a token
        (("0.333333", "0.333333"), (3, 0), 1),  # 0.999999 rounds up to 1, not down to 0
        (("4.0", "16.0"), (10**30, 10**30), 20 * 10**30),  # beyond the default 28-digit context
        (("0.125", "1.0"), (10**29 + 1, 0), 125 * 10**26 + 1),  # ...where rounding would lose the fraction
    ],
)
def test_cost_is_the_ceiling_of_the_exact_weighted_sum(weights, tokens, cost):
    price = _price(Decimal(weights[0]), Decimal(weights[1]))
    assert price.cost(input_tokens=tokens[0], output_tokens=tokens[1]) == cost


def test_a_weight_given_as_a_float_means_its_decimal_text_not_its_binary_value():
    assert _price(0.1, 0.1).cost(input_tokens=10, output_tokens=0) == 1  # not 2 from 0.1000000000000000055


def test_negative_token_counts_are_refused():
    with pytest.raises(ValueError, match="negative"):
        _price(Decimal(1), Decimal(1)).cost(input_tokens=-1, output_tokens=0)


@pytest.mark.django_db
def test_the_default_prices_follow_design_md():
    prices = {model: (p.input_weight, p.output_weight) for model, p in current_prices().items()}
    assert prices == {
        "qwen-flash": (Decimal("0.125"), Decimal("1.0")),
        "qwen-plus": (Decimal("1.0"), Decimal("3.0")),
        "qwen-max": (Decimal("4.0"), Decimal("16.0")),
    }


@pytest.mark.django_db
def test_the_price_in_force_is_the_latest_that_has_started():
    old = price_for(model="qwen-plus")
    later = Price.objects.create(
        model="qwen-plus", input_weight=2, output_weight=6, effective_from=timezone.now() + timedelta(days=1)
    )
    assert price_for(model="qwen-plus") == old
    assert price_for(model="qwen-plus", at=later.effective_from) == later
    assert price_for(model="qwen-plus", at=old.effective_from - timedelta(seconds=1)) is None


@pytest.mark.django_db
def test_only_active_top_up_packs_are_offered():
    TopupPack.objects.filter(name="Scale").update(active=False)
    assert [pack.name for pack in topup_packs()] == ["Starter", "Growth"]
