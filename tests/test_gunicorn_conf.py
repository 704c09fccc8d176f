"""platform/gunicorn.conf.py: what the web processes are started with, read as gunicorn reads it."""

import runpy
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parent.parent / "platform" / "gunicorn.conf.py"


def conf(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict:
    for name in ("GUNICORN_ACCESS_LOG", "TOKENHUB_SERVER", "WEB_THREADS", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_production_web_serves_wsgi_on_threads_and_leaves_the_access_log_to_nginx(monkeypatch):
    settings = conf(monkeypatch)

    assert settings["worker_class"] == "gthread"
    assert settings["threads"] == 8
    assert settings["workers"] == 2
    assert settings["accesslog"] is None


def test_an_access_log_is_written_when_asked_for(monkeypatch):
    assert conf(monkeypatch, GUNICORN_ACCESS_LOG="-")["accesslog"] == "-"


def test_an_unknown_server_kind_refuses_to_start(monkeypatch):
    with pytest.raises(RuntimeError, match="TOKENHUB_SERVER='wgsi'"):
        conf(monkeypatch, TOKENHUB_SERVER="wgsi")
