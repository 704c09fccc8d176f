"""Creating and canceling runs: validation, the hold estimate, idempotency, tenancy, and races."""

import uuid

import pytest

from agents import selectors
from agents.errors import (
    IdempotencyConflict,
    InvalidRunInput,
    RunNotCancelable,
    UnknownTool,
)
from agents.llm.tokens import count_prompt_tokens
from agents.models import Run
from agents.runs.create import run_create
from agents.runs.estimate import merchant_profile, run_estimate
from agents.runs.execute import run_claim
from agents.runs.settle import run_cancel
from agents.tools import registry
from tests.plugins.workers import SYSTEM, funded, ledger_of, listing, run_in_threads, wallet
from tokenhub.errors import ApplicationError
from wallets.exceptions import InsufficientTokens
from wallets.models import Transfer
from wallets.reconcile import reconcile_ledger
from wallets.selectors import price_for
from wallets.services import promotion_credit

pytestmark = pytest.mark.django_db


def create(merchant, input=None, **kwargs):
    return run_create(
        merchant=merchant, tool="listing-writer", input=input or listing(), actor=SYSTEM, **kwargs
    )


def test_a_run_holds_the_cost_of_its_prompt_plus_max_tokens_at_todays_price():
    merchant = funded(100_000)
    data = listing()
    run = create(merchant, data)

    tool = registry.get("listing-writer")
    prompt = count_prompt_tokens(tool.build_messages(data, merchant_profile(merchant)), tool.model)
    price = price_for(model="qwen-plus")
    assert run.held == price.cost(input_tokens=prompt, output_tokens=tool.max_tokens)
    assert (run.status, run.price_id, run.model) == ("queued", price.pk, "qwen-plus")
    assert run.hold.kind == "hold" and run.hold.amount == run.held
    assert run.hold.idempotency_key == f"run:{run.pk}:hold"
    assert wallet(merchant).available == 100_000 - run.held
    assert reconcile_ledger() == []


def test_too_few_tokens_create_no_run_and_no_hold_and_say_how_many_were_needed():
    merchant = funded(100)
    with pytest.raises(InsufficientTokens) as raised:
        create(merchant)
    assert raised.value.required > 100 and raised.value.available == 100
    assert f"{raised.value.required:,} tokens" in str(raised.value)
    assert not Run.objects.filter(merchant=merchant).exists()
    assert not Transfer.objects.filter(kind="hold", wallet__merchant=merchant).exists()


def test_an_invalid_input_names_each_bad_field_and_creates_nothing():
    merchant = funded(100_000)
    with pytest.raises(InvalidRunInput) as raised:
        create(merchant, {"product_name": "", "marketplace": "ebay", "colour": "red"})
    assert raised.value.code == "invalid_input"
    assert set(raised.value.details) == {"product_name", "marketplace", "colour"}
    assert not Run.objects.exists()


def test_an_unknown_tool_is_an_application_error_answering_400():
    merchant = funded(100_000)
    with pytest.raises(UnknownTool) as raised:
        run_create(merchant=merchant, tool="poem-writer", input={}, actor=SYSTEM)
    assert isinstance(raised.value, ApplicationError) and raised.value.status == 400
    assert (raised.value.code, raised.value.details) == ("unknown_tool", {"tool": "poem-writer"})


def test_the_same_idempotency_key_and_body_return_the_first_run_and_hold_nothing_more():
    merchant = funded(100_000)
    data = listing()
    first = create(merchant, data, idempotency_key="order-1")
    again = create(merchant, dict(data), idempotency_key="order-1")
    assert again.pk == first.pk
    assert Transfer.objects.filter(kind="hold", wallet__merchant=merchant).count() == 1


def test_the_same_idempotency_key_with_another_body_is_a_conflict():
    merchant = funded(100_000)
    create(merchant, listing("Lamp A"), idempotency_key="order-1")
    with pytest.raises(IdempotencyConflict) as raised:
        create(merchant, listing("Lamp B"), idempotency_key="order-1")
    assert raised.value.code == "idempotency_conflict"


def test_idempotency_keys_belong_to_one_merchant():
    one, other = funded(100_000), funded(100_000)
    assert create(one, idempotency_key="k").pk != create(other, idempotency_key="k").pk


def test_canceling_a_queued_run_releases_its_hold_and_charges_nothing():
    merchant = funded(100_000)
    run = create(merchant)
    canceled = run_cancel(run=run, actor=SYSTEM)
    assert (canceled.status, canceled.cost) == ("canceled", 0)
    assert (
        canceled.settlement.kind == "void" and canceled.settlement.idempotency_key == f"run:{run.pk}:settle"
    )
    assert wallet(merchant).available == 100_000
    assert reconcile_ledger() == []


def test_a_claimed_run_cannot_be_canceled():
    merchant = funded(100_000)
    run = create(merchant)
    assert run_claim(run_id=run.pk) is not None
    with pytest.raises(RunNotCancelable) as raised:
        run_cancel(run=run, actor=SYSTEM)
    assert raised.value.details == {"status": "running"}
    assert ledger_of(run).keys() == {"hold"}


def test_a_merchant_sees_only_its_own_runs_and_a_bad_id_is_none():
    one, other = funded(100_000), funded(100_000)
    run = create(one)
    assert selectors.run_of(merchant=one, run_id=str(run.pk)) == run
    assert selectors.run_of(merchant=other, run_id=run.pk) is None
    assert selectors.run_of(merchant=one, run_id="not-a-uuid") is None
    assert selectors.run_of(merchant=one, run_id=uuid.uuid4()) is None
    assert list(selectors.runs_of(merchant=other)) == []


def test_runs_are_listed_newest_first_and_filter_by_tool_and_status():
    merchant = funded(100_000)
    first, second = create(merchant), create(merchant)
    run_cancel(run=first, actor=SYSTEM)
    assert list(selectors.runs_of(merchant=merchant)) == [second, first]
    assert list(selectors.runs_of(merchant=merchant, status="canceled")) == [first]
    assert list(selectors.runs_of(merchant=merchant, tool="marketing-copy")) == []


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_two_hundred_concurrent_runs_at_a_wallet_that_affords_fifty_create_exactly_fifty(broker):
    merchant = funded(0)
    data = listing("Race Lamp")
    held = run_estimate(merchant=merchant, tool="listing-writer", input=data).held
    funded_wallet = wallet(merchant)
    promotion_credit(wallet=funded_wallet, amount=held * 50 + held // 2, key="test:race-grant", actor=SYSTEM)

    results = run_in_threads(200, lambda i: create(merchant, data))

    runs = [r for r in results if isinstance(r, Run)]
    refused = [r for r in results if isinstance(r, InsufficientTokens)]
    assert (len(runs), len(refused)) == (50, 150), [
        r for r in results if not isinstance(r, Run | InsufficientTokens)
    ]
    after = wallet(merchant)
    assert after.available == held // 2 and after.available >= 0
    assert Run.objects.filter(merchant=merchant).count() == 50
    assert reconcile_ledger() == []


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_requests_with_one_idempotency_key_make_one_run_and_one_hold(broker):
    merchant = funded(0)
    data = listing()
    held = run_estimate(merchant=merchant, tool="listing-writer", input=data).held
    # Enough for exactly one: a replay that lost the race must still answer with the winner's run.
    promotion_credit(wallet=wallet(merchant), amount=held, key="test:one-run", actor=SYSTEM)

    results = run_in_threads(10, lambda i: create(merchant, data, idempotency_key="same"))

    assert all(isinstance(r, Run) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert Transfer.objects.filter(kind="hold", wallet__merchant=merchant).count() == 1
    assert reconcile_ledger() == []


# --- Which path a run's hold takes: each answers the same run, hold and ledger ----------------------


def statements_of(action):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        result = action()
    # Savepoints are the test's own transaction showing through; they are not statements of the run.
    sql = [query["sql"] for query in queries.captured_queries]
    return result, [statement for statement in sql if "SAVEPOINT" not in statement]


def test_a_store_paying_from_its_wallet_alone_creates_a_run_in_one_statement_with_nothing_read_first():
    merchant = funded(100_000)
    first = create(merchant)  # prices and the store's profile are cached after a first run

    run, statements = statements_of(lambda: create(merchant))

    assert len(statements) == 1 and statements[0].startswith("WITH hold_counters AS (UPDATE")
    assert run.hold.wallet_id == run.hold.debit_account_id == wallet(merchant).pk
    assert Transfer.objects.get(pk=run.hold.pk).amount == run.held
    assert wallet(merchant).debits_pending == first.held + run.held
    assert reconcile_ledger() == []


@pytest.mark.postgres
def test_the_runs_one_statement_is_parsed_once_per_process_not_once_per_run():
    from django.db import connection
    from psycopg import _queries

    # Each way of binding parameters keeps its own cache of parsed statements.
    server_side = connection.settings_dict["OPTIONS"].get("server_side_binding") is True
    cache = _queries._query2pg if server_side else _queries._query2pg_client
    merchant = funded(100_000)
    create(merchant)
    parsed = cache.cache_info()

    create(merchant)

    after = cache.cache_info()
    assert after.misses == parsed.misses and after.hits > parsed.hits


@pytest.mark.postgres
def test_a_new_runs_insert_sends_only_the_columns_it_has_a_value_for_and_reads_back_whole():
    merchant = funded(100_000)
    create(merchant)

    plain, statements = statements_of(lambda: create(merchant))
    keyed, keyed_statements = statements_of(lambda: create(merchant, idempotency_key="order-17"))

    def run_columns(statement):
        return statement.split('INSERT INTO "agents_run"', 1)[1].split(")", 1)[0]

    insert = run_columns(statements[0])
    assert '"input"' in insert and '"held"' in insert
    assert '"output"' not in insert and '"started_at"' not in insert and '"idempotency_key"' not in insert
    assert '"idempotency_key"' in run_columns(keyed_statements[-1])
    for run in (plain, keyed):
        stored = Run.objects.get(pk=run.pk)
        assert (stored.output, stored.started_at, stored.cost, stored.batch_id) == (None, None, None, None)
        assert (stored.input, stored.held, stored.status) == (run.input, run.held, Run.Status.QUEUED)
    assert Run.objects.get(pk=keyed.pk).idempotency_key == "order-17"
    assert Run.objects.get(pk=plain.pk).idempotency_key is None
    assert reconcile_ledger() == []


@pytest.mark.redis
def test_a_runs_message_names_its_arguments_in_the_log_exactly_as_celery_would(
    broker, django_capture_on_commit_callbacks
):
    import base64
    import json

    import redis
    from celery.utils.saferepr import saferepr
    from django.conf import settings

    with django_capture_on_commit_callbacks(execute=True):
        run = create(funded(100_000))

    [raw] = redis.Redis.from_url(settings.CELERY_BROKER_URL).lrange("celery", 0, -1)
    message = json.loads(raw)
    args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert message["headers"]["task"] == "agents.tasks.run_execute" and args == [str(run.pk)]
    assert message["headers"]["argsrepr"] == saferepr(args, 1024)
    assert message["headers"]["kwargsrepr"] == saferepr(kwargs, 1024)


@pytest.mark.postgres
def test_the_runs_create_and_claim_statements_are_prepared_on_the_server_after_a_few_runs():
    from django.conf import settings
    from django.db import connection

    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    merchant = funded(1_000_000)
    for _ in range(threshold + 2):
        run_claim(run_id=create(merchant).pk)

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(sql.startswith("WITH hold_counters AS (UPDATE") for sql in prepared)
    assert any(sql.lstrip().startswith('UPDATE "agents_run" AS r') for sql in prepared)


def test_promotional_tokens_that_cover_a_run_pay_for_it_before_the_wallet():
    from datetime import timedelta

    from django.utils import timezone

    from wallets.models import Account
    from wallets.services import promo_grant

    merchant = funded(100_000)
    promo_grant(
        merchant=merchant, amount=50_000, expires_at=timezone.now() + timedelta(days=7), key="p", actor=SYSTEM
    )

    run, statements = statements_of(lambda: create(merchant))

    block = Account.objects.get(merchant=merchant, kind=Account.Kind.PROMO)
    assert run.hold.wallet_id == block.pk and run.hold.known_source == "promotional"
    assert statements[-1].startswith("WITH hold_counters AS (UPDATE")  # the block's hold, one statement
    assert wallet(merchant).debits_pending == 0 and block.debits_pending == run.held
    assert reconcile_ledger() == []


def test_a_sponsorship_that_does_not_cover_the_tool_leaves_the_run_to_the_wallet():
    from wallets.selectors import funding_of
    from wallets.sponsorships import sponsorship_create

    merchant = funded(100_000)
    sponsorship_create(
        sponsor=funded(1_000_000),
        beneficiary=merchant,
        monthly_limit=5_000,
        tools=["marketing-copy"],
        accepted=True,
    )

    run = create(merchant)

    assert [part.source for part in funding_of(first_hold=run.hold, total=run.held)] == ["paid"]
    assert run.hold.wallet_id == wallet(merchant).pk and wallet(merchant).debits_pending == run.held
    assert reconcile_ledger() == []


def test_a_wallet_that_cannot_cover_a_run_refuses_it_on_every_path_and_holds_nothing():
    merchant = funded(10)

    with pytest.raises(InsufficientTokens):
        create(merchant)

    assert not Run.objects.filter(merchant=merchant).exists()
    assert not Transfer.objects.filter(wallet=wallet(merchant), kind=Transfer.Kind.HOLD).exists()
    assert wallet(merchant).debits_pending == 0
    assert reconcile_ledger() == []
