from __future__ import annotations

import pytest

from infra.provision import Resources
from infra.settings import CLEANING_RULES, Settings, SettingsError, load_settings

pytestmark = pytest.mark.unit


def test_bad_values_are_reported_by_variable_name(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    monkeypatch.setenv("INGEST_BATCH_ROWS", "lots")
    monkeypatch.setenv("RAW_PREFIX", "no-slash")
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    for name in ("DATABASE_URL", "INGEST_BATCH_ROWS", "RAW_PREFIX"):
        assert name in message


def test_unknown_rule_names_are_refused(monkeypatch):
    monkeypatch.setenv("DISABLED_RULES", "duplicate_trip, no_such_rule")
    with pytest.raises(SettingsError, match="DISABLED_RULES.*no_such_rule"):
        load_settings()


def test_disabled_rules_leave_the_others_in_order(monkeypatch):
    monkeypatch.setenv("DISABLED_RULES", "unknown_zone,duplicate_trip")
    enabled = load_settings().enabled_rules
    assert enabled == tuple(r for r in CLEANING_RULES
                            if r not in ("unknown_zone", "duplicate_trip"))


def test_pg8000_driver_is_spelled_out():
    settings = Settings(database_url="postgresql://u@h:5432/d")
    assert settings.sqlalchemy_url == "postgresql+pg8000://u@h:5432/d"


def test_presigning_falls_back_to_the_internal_endpoint():
    assert Settings(aws_endpoint_url="http://a:1").presign_endpoint_url == "http://a:1"
    both = Settings(aws_endpoint_url="http://a:1", s3_public_endpoint_url="http://b:2/")
    assert both.presign_endpoint_url == "http://b:2"


def test_provisioning_defaults_match_the_settings(monkeypatch):
    # LocalStack's hook reads the environment without pydantic; its defaults
    # must name the same resources the app looks for.
    for name in ("S3_BUCKET", "RAW_PREFIX", "INGEST_QUEUE_NAME", "INGEST_DLQ_NAME",
                 "INGEST_MAX_RECEIVE_COUNT", "INGEST_VISIBILITY_TIMEOUT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings, resources = Settings(), Resources.from_env({})
    assert (resources.bucket, resources.raw_prefix, resources.queue_name, resources.dlq_name,
            resources.max_receive_count, resources.visibility_timeout) == (
        settings.s3_bucket, settings.raw_prefix, settings.ingest_queue_name,
        settings.ingest_dlq_name, settings.ingest_max_receive_count,
        settings.ingest_visibility_timeout_seconds)
