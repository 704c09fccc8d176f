"""The settings that, mistyped, would lose money or hang workers. A typo must fail loudly."""

import subprocess
import sys

import pytest
from django.conf import settings


def test_celery_acknowledges_late_so_a_killed_worker_loses_no_run():
    assert settings.CELERY_TASK_ACKS_LATE is True


def test_celery_has_soft_and_hard_time_limits_in_order():
    assert 0 < settings.CELERY_TASK_SOFT_TIME_LIMIT < settings.CELERY_TASK_TIME_LIMIT


def test_the_worker_pool_suits_slow_model_calls():
    assert settings.CELERY_WORKER_POOL in {"threads", "gevent", "eventlet"}
    assert settings.CELERY_WORKER_CONCURRENCY >= 100
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_beat_sweeps_holds_and_stuck_runs():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"wallets.tasks.holds_expire", "agents.tasks.runs_sweep"} <= tasks


def test_a_run_deadline_is_shorter_than_its_hold():
    assert settings.RUN_DEADLINE < settings.HOLD_TIMEOUT


@pytest.mark.postgres
def test_the_suite_runs_on_postgresql_when_configured():
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


@pytest.mark.redis
def test_the_broker_is_redis_when_configured():
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] >= settings.CELERY_TASK_TIME_LIMIT


def test_without_a_qwen_key_the_endpoint_is_the_local_simulator():
    if settings.QWEN_API_KEY:
        pytest.skip("a real QWEN_API_KEY is configured")
    assert settings.QWEN_BASE_URL.startswith("http://127.0.0.1:")


def _import_settings(**env) -> subprocess.CompletedProcess:
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='tokenhub.settings'; django.setup()"
    base = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "x" * 50, "DATABASE_URL": "sqlite:///:memory:"}
    return subprocess.run(
        [sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_a_mistyped_boolean_fails_at_start():
    result = _import_settings(DEBUG="ture-ish")
    assert result.returncode != 0
    assert "DEBUG" in result.stderr or "ValueError" in result.stderr


def test_a_mistyped_integer_fails_at_start():
    result = _import_settings(CELERY_TASK_TIME_LIMIT="fifty")
    assert result.returncode != 0


def test_production_refuses_to_start_without_a_secret_key():
    result = _import_settings(SECRET_KEY="", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_soft_time_limit_above_hard_limit_fails_at_start():
    result = _import_settings(CELERY_TASK_SOFT_TIME_LIMIT="200", CELERY_TASK_TIME_LIMIT="100")
    assert result.returncode != 0
    assert "SOFT_TIME_LIMIT" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    code = (
        "import django, os, sys; os.environ['DJANGO_SETTINGS_MODULE']='tokenhub.settings'; django.setup();"
        "from django.core.management import call_command;"
        "call_command('check', '--deploy', '--fail-level', 'WARNING')"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DATABASE_URL": "sqlite:///:memory:",
        "ALLOWED_HOSTS": "tokenhub.example.com",
        "DEBUG": "false",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_without_redis_the_broker_falls_back_to_one_that_needs_no_server(tmp_path):
    from tokenhub.runtime import choose_broker

    choice = choose_broker(broker_url="", redis_url="", base_dir=tmp_path, embedded=True)

    assert choice.url == "filesystem://"
    assert choice.redis_url == ""
    assert (tmp_path / ".dev" / "broker" / "queue").is_dir()
    assert "embedded" in choice.description


def test_a_configured_broker_always_wins(tmp_path):
    from tokenhub.runtime import choose_broker

    choice = choose_broker(broker_url="redis://broker.internal:6379/2", redis_url="", base_dir=tmp_path)

    assert choice.url == "redis://broker.internal:6379/2"
    assert choice.redis_url == "redis://broker.internal:6379/2"
