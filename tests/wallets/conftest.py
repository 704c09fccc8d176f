"""Ledger fixtures: funded wallets, and the staff who adjust them."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group

from tests.factories import MerchantFactory, UserFactory
from tests.wallets.helpers import SYSTEM, key
from wallets import services
from wallets.bootstrap import SUPPORT_GROUP
from wallets.models import Account


@pytest.fixture
def wallet_factory(db) -> Callable[..., Account]:
    def make(tokens: int = 0, **merchant_fields) -> Account:
        wallet = services.wallet_of(merchant=MerchantFactory(**merchant_fields))
        if tokens:
            services.topup_credit(wallet=wallet, amount=tokens, key=key("topup"), actor=SYSTEM)
            wallet.refresh_from_db()
        return wallet

    return make


@pytest.fixture
def wallet(wallet_factory) -> Account:
    return wallet_factory(tokens=1_000)


@pytest.fixture
def support_user(db):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT_GROUP))
    return user


@pytest.fixture
def second_support_user(db):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT_GROUP))
    return user


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True)
