"""The settings that, mistyped, would lose money or hang workers. A typo must fail loudly."""

import json
import subprocess
import sys

import pytest
from django.conf import settings


def test_celery_acknowledges_late_so_a_killed_worker_loses_no_run():
    assert settings.CELERY_TASK_ACKS_LATE is True


def test_celery_itself_runs_with_every_celery_setting_django_has():
    from tokenhub.celery import app

    names = [name for name in dir(settings) if name.startswith("CELERY_")]
    assert {"CELERY_TASK_ACKS_LATE", "CELERY_TASK_TIME_LIMIT", "CELERY_BEAT_SCHEDULE"} <= set(names)
    for name in names:
        assert app.conf[name.removeprefix("CELERY_").lower()] == getattr(settings, name), name
    assert app.conf.task_acks_late is True and app.conf.task_reject_on_worker_lost is False
    assert app.conf.worker_prefetch_multiplier == 1 and app.conf.broker_url == settings.CELERY_BROKER_URL
    assert not app.conf.deprecated_settings  # none taken for Celery 3.x names (it warns at every start)


def test_celery_has_soft_and_hard_time_limits_in_order():
    assert 0 < settings.CELERY_TASK_SOFT_TIME_LIMIT < settings.CELERY_TASK_TIME_LIMIT


def test_the_worker_pool_suits_slow_model_calls():
    assert settings.CELERY_WORKER_POOL in {"threads", "gevent", "eventlet"}
    assert settings.CELERY_WORKER_CONCURRENCY >= 100
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_beat_sweeps_holds_and_recovers_runs_every_few_seconds():
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"wallets.tasks.holds_expire", "agents.tasks.runs_recover"} <= set(schedule)
    assert schedule["agents.tasks.runs_recover"].total_seconds() <= 5


def test_the_recovery_defaults_fit_together():
    """The numbers docs/architecture.md explains: a dead worker's run is taken back within a minute, a
    retry's countdown stays far below Redis's visibility timeout (no double delivery), and every run ends
    before its hold can expire."""
    assert settings.RUN_LEASE_SECONDS + settings.RUN_RECOVERY_INTERVAL_SECONDS <= 60
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    assert visibility > settings.QWEN_RETRY_BACKOFF_MAX_SECONDS * 10
    assert settings.RUN_REQUEUE_AFTER.total_seconds() <= 60
    assert settings.RUN_DEADLINE.total_seconds() > settings.QWEN_CALL_DEADLINE_SECONDS
    assert settings.RUN_QUEUE_TIMEOUT + settings.RUN_DEADLINE < settings.HOLD_TIMEOUT
    assert settings.QWEN_MAX_RETRIES == 4 and settings.RUN_MAX_RECOVERIES == 2


def test_an_outage_at_the_default_backoff_ends_within_ninety_seconds_of_retries():
    """Five calls that fail at once, with the longest jittered waits between them, stay within 90 s."""
    waits = [min(settings.QWEN_RETRY_BACKOFF_MAX_SECONDS, settings.QWEN_RETRY_BACKOFF_SECONDS * 2**n)
             for n in range(settings.QWEN_MAX_RETRIES)]  # fmt: skip
    assert sum(waits) < 90


def test_beat_expires_promotional_credits_every_minute_and_the_trial_covers_about_ten_listings():
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["wallets.tasks.promos_expire"].total_seconds() <= 60
    assert (settings.TRIAL_TOKENS, settings.TRIAL_DAYS) == (50_000, 14)


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


def _import_settings(*, then: str = "", **env) -> subprocess.CompletedProcess:
    """Django set up in a fresh interpreter with `env`; `then` runs after (to print a setting)."""
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='tokenhub.settings'; django.setup()"
    base = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "x" * 50, "DATABASE_URL": "sqlite:///:memory:"}
    return subprocess.run(
        [sys.executable, "-c", f"{code}; {then}" if then else code],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_mistyped_boolean_fails_at_start():
    result = _import_settings(DEBUG="ture-ish")
    assert result.returncode != 0
    assert "DEBUG" in result.stderr or "ValueError" in result.stderr


def test_a_mistyped_integer_fails_at_start():
    result = _import_settings(CELERY_TASK_TIME_LIMIT="fifty")
    assert result.returncode != 0


def _database_options(**env) -> dict:
    printed = "from django.conf import settings; import json; print(json.dumps(settings.DATABASES['default']['OPTIONS'], default=str))"
    result = _import_settings(then=printed, DATABASE_URL="postgres://u@127.0.0.1:5432/d", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_postgresql_binds_parameters_on_the_server_and_prepares_statements_run_five_times():
    options = _database_options()
    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == 5


def test_a_prepare_threshold_of_zero_turns_prepared_statements_off_for_a_pooler():
    assert _database_options(DATABASE_PREPARE_THRESHOLD="0")["prepare_threshold"] is None


def test_a_mistyped_prepare_threshold_fails_at_start():
    result = _import_settings(DATABASE_URL="postgres://u@127.0.0.1:5432/d", DATABASE_PREPARE_THRESHOLD="five")
    assert result.returncode != 0


def test_production_refuses_to_start_without_a_secret_key():
    result = _import_settings(SECRET_KEY="", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_soft_time_limit_above_hard_limit_fails_at_start():
    result = _import_settings(CELERY_TASK_SOFT_TIME_LIMIT="200", CELERY_TASK_TIME_LIMIT="100")
    assert result.returncode != 0
    assert "SOFT_TIME_LIMIT" in result.stderr


def check_deploy(**extra_env: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check --deploy` in a fresh process with production settings (plus `extra_env`)."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='tokenhub.settings'; django.setup();"
        "from django.core.management import call_command;"
        "call_command('check', '--deploy', '--fail-level', 'WARNING')"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DATABASE_URL": "sqlite:///:memory:",
        "ALLOWED_HOSTS": "tokenhub.example.com",
        "DEBUG": "false",
        **extra_env,
    }
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_settings():
    result = check_deploy()
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


def _settings_of(*names: str, env: dict[str, str] | None = None, shell_source: str | None = None):
    """Import tokenhub.settings in a fresh process with only `env` (or a file sourced by bash) and return
    the named settings, or the failed process."""
    code = (
        "import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'tokenhub.settings';"
        "from django.conf import settings;"
        f"print(json.dumps({{name: getattr(settings, name) for name in {list(names)!r}}}, default=str))"
    )
    base = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "x" * 50, "DATABASE_URL": "sqlite:///:memory:"}
    if shell_source is None:
        command = [sys.executable, "-c", code]
    else:
        # `set -a` exports every assignment, the way an operator loads the file for a process manager.
        script = f'set -euo pipefail; set -a; . "{shell_source}"; set +a; exec "{sys.executable}" -c "$0"'
        command, base = ["bash", "-c", script, code], {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        command,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
    )
    if result.returncode != 0:
        return result
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_hsts_stays_on_this_host_and_no_proxy_header_is_trusted_by_default():
    values = _settings_of(
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "TRUSTED_PROXY_SSL_HEADER",
        "SECURE_PROXY_SSL_HEADER",
        env={"DEBUG": "false"},
    )

    assert values == {
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "TRUSTED_PROXY_SSL_HEADER": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_the_operator_opts_in_to_subdomains_preload_and_a_trusted_proxy_header():
    values = _settings_of(
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_PROXY_SSL_HEADER",
        env={
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
            "SECURE_HSTS_PRELOAD": "1",
            "TRUSTED_PROXY_SSL_HEADER": "on",
        },
    )

    assert values == {
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


@pytest.mark.parametrize(
    "name", ["SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "TRUSTED_PROXY_SSL_HEADER"]
)
def test_a_mistyped_security_boolean_fails_at_start_naming_the_setting(name):
    result = _settings_of(name, env={name: "treu"})

    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode != 0
    assert f"{name}='treu' is not a boolean" in result.stderr


def test_check_deploy_is_clean_with_every_security_opt_in():
    result = check_deploy(
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true", SECURE_HSTS_PRELOAD="true", TRUSTED_PROXY_SSL_HEADER="true"
    )
    assert result.returncode == 0, result.stderr


def test_the_production_env_example_sources_in_bash_and_configures_django():
    values = _settings_of(
        "DEBUG",
        "ALLOWED_HOSTS",
        "QWEN_RATE_LIMITS",
        "CELERY_BROKER_URL",
        "CELERY_WORKER_CONCURRENCY",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_HSTS_PRELOAD",
        shell_source="platform/production.env.example",
    )

    assert not isinstance(values, subprocess.CompletedProcess), values.stderr
    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == ["tokenhub.example.com"]
    assert values["QWEN_RATE_LIMITS"]["qwen-plus"] == {"rpm": 15000, "tpm": 5000000}
    assert values["CELERY_BROKER_URL"] == "redis://redis.internal:6379/1"
    assert values["CELERY_WORKER_CONCURRENCY"] == 100
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_HSTS_PRELOAD"] is False
