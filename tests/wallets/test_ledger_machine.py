"""Random sequences of every ledger movement, checked against a model and every invariant after each step.

Each example runs inside a savepoint that is rolled back in teardown, so examples start from the same
database and transfers (which cannot be deleted) never leak from one example into the next.
"""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule

from tests.factories import MerchantFactory
from tests.wallets.helpers import SYSTEM
from wallets import services
from wallets.exceptions import HoldAlreadyResolved, HoldExpired, InsufficientTokens
from wallets.models import Account, Transfer
from wallets.reconcile import reconcile_ledger

WALLETS = 3


@dataclass
class Expected:
    balance: int = 0
    held: int = 0

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass
class HoldModel:
    transfer: Transfer
    wallet_index: int
    expired: bool  # created with a timeout already past, so posting it fails and the sweep releases it
    resolved: str | None = None


class LedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self):
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.wallets = [services.wallet_of(merchant=MerchantFactory()) for _ in range(WALLETS)]
        self.expected = [Expected() for _ in range(WALLETS)]
        self.all_holds: list[HoldModel] = []
        self.replays: list[tuple[str, dict, int]] = []  # (service, kwargs, the transfer it returned)
        self.counter = 0
        for w, wallet in enumerate(self.wallets):  # funded, so the first steps can already hold and post
            self._call("topup_credit", wallet=wallet, amount=5_000, key=self._key("topup"), actor=SYSTEM)
            self.expected[w].balance += 5_000

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def _key(self, kind: str) -> str:
        self.counter += 1
        return f"machine:{self.counter}:{kind}"

    def _call(self, service: str, **kwargs) -> Transfer:
        transfer = getattr(services, service)(**kwargs)
        self.replays.append((service, kwargs, transfer.pk))
        return transfer

    def _release(self, hold: HoldModel, resolution: str) -> None:
        self.expected[hold.wallet_index].held -= hold.transfer.amount
        hold.resolved = resolution

    @rule(w=st.integers(0, WALLETS - 1), amount=st.integers(1, 5_000))
    def top_up(self, w, amount):
        self._call(
            "topup_credit", wallet=self.wallets[w], amount=amount, key=self._key("topup"), actor=SYSTEM
        )
        self.expected[w].balance += amount

    @rule(target=holds, w=st.integers(0, WALLETS - 1), amount=st.integers(1, 3_000), expired=st.booleans())
    def hold(self, w, amount, expired):
        kwargs = {
            "wallet": self.wallets[w], "amount": amount, "key": self._key("hold"), "actor": SYSTEM,
            "timeout": timedelta(seconds=-1) if expired else timedelta(hours=1),
        }  # fmt: skip
        if amount > self.expected[w].available:
            with pytest.raises(InsufficientTokens):
                services.hold_create(**kwargs)
            return multiple()
        hold = HoldModel(self._call("hold_create", **kwargs), w, expired)
        self.expected[w].held += amount
        self.all_holds.append(hold)
        return hold

    @rule(hold=holds, fraction=st.floats(0, 1))
    def post(self, hold, fraction):
        amount = round(hold.transfer.amount * fraction)
        kwargs = {"hold": hold.transfer, "amount": amount, "key": self._key("settle"), "actor": SYSTEM}
        if hold.resolved and (amount == 0 or not hold.expired):
            with pytest.raises(HoldAlreadyResolved):
                services.hold_post(**kwargs)
        elif hold.expired and amount > 0:
            with pytest.raises(HoldExpired):
                services.hold_post(**kwargs)
        else:
            self._call("hold_post", **kwargs)
            self.expected[hold.wallet_index].balance -= amount
            self._release(hold, "settle" if amount else "void")

    @rule(hold=holds)
    def void(self, hold):
        kwargs = {"hold": hold.transfer, "key": self._key("void"), "actor": SYSTEM}
        if hold.resolved:
            with pytest.raises(HoldAlreadyResolved):
                services.hold_void(**kwargs)
        else:
            self._call("hold_void", **kwargs)
            self._release(hold, "void")

    @rule()
    def sweep(self):
        due = [hold for hold in self.all_holds if hold.expired and not hold.resolved]
        assert services.holds_expire() == len(due)
        for hold in due:
            self._release(hold, "expire")

    @rule(w=st.integers(0, WALLETS - 1), amount=st.integers(-4_000, 4_000).filter(bool))
    def adjust(self, w, amount):
        kwargs = {"wallet": self.wallets[w], "amount": amount, "reason": "machine", "actor": SYSTEM,
                  "key": self._key("adjust")}  # fmt: skip
        if -amount > self.expected[w].available:
            with pytest.raises(InsufficientTokens):
                services.adjustment_create(**kwargs)
            return
        self._call("adjustment_create", **kwargs)
        self.expected[w].balance += amount

    @rule(data=st.data())
    def replay(self, data):
        if self.replays:
            service, kwargs, transfer_id = data.draw(st.sampled_from(self.replays))
            assert getattr(services, service)(**kwargs).pk == transfer_id

    @invariant()
    def ledger_matches_the_model_and_every_invariant(self):
        for wallet, expected in zip(self.wallets, self.expected, strict=True):
            account = Account.objects.get(pk=wallet.pk)
            assert (account.balance, account.debits_pending) == (expected.balance, expected.held)
            assert account.available >= 0
        assert reconcile_ledger() == []


@pytest.mark.django_db
def test_random_sequences_of_ledger_movements_keep_every_invariant():
    LedgerMachine.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=30,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    LedgerMachine.TestCase().runTest()
