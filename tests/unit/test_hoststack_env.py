from __future__ import annotations

import pytest

from scripts.hoststack import stack_env

pytestmark = pytest.mark.unit

NAMES = ("DATABASE_URL", "CELERY_QUEUE", "AWS_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL",
         "LOCALSTACK_PORT", "API_PORT")


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_the_default_stack():
    env = stack_env()
    assert env["DATABASE_URL"].endswith("/taxi")
    assert env["AWS_ENDPOINT_URL"] == env["S3_PUBLIC_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert "CELERY_QUEUE" not in env  # the settings' default, taxi-ingest


def test_a_second_stack_on_other_ports_shares_nothing_by_default(monkeypatch):
    monkeypatch.setenv("LOCALSTACK_PORT", "4666")
    env = stack_env()
    assert env["DATABASE_URL"].endswith("/taxi_4666")
    assert env["CELERY_QUEUE"] == "taxi-ingest-4666"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4666"


def test_explicit_settings_win(monkeypatch):
    monkeypatch.setenv("LOCALSTACK_PORT", "4666")
    monkeypatch.setenv("CELERY_QUEUE", "mine")
    assert stack_env()["CELERY_QUEUE"] == "mine"
    assert stack_env({"DATABASE_URL": "postgresql://x@h/d"})["DATABASE_URL"] == \
        "postgresql://x@h/d"
