"""Fixtures every tier shares.

Tiers are markers named by the I/O a test may do:
``unit`` (none), ``integration`` (real Postgres, RabbitMQ, LocalStack, local
stand-in servers), ``e2e`` (the whole host-mode stack through HTTP) and
``faults`` (e2e tests that kill and restart processes). Each test module sets
its tier with ``pytestmark``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

FIXTURES = Path(__file__).with_name("fixtures")
ADMIN_DATABASE_URL = os.environ.get(
    "TEST_ADMIN_DATABASE_URL", "postgresql+pg8000://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def _admin_engine():
    return create_engine(ADMIN_DATABASE_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def database_url():
    """A fresh, migrated database for this test session, dropped afterwards."""
    from infra.migrate import upgrade
    from infra.zones import ensure_zones

    name = f"taxi_test_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_DATABASE_URL.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(url)
    upgrade(engine)
    ensure_zones(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def db_engine(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()
