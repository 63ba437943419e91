"""Fixtures every tier shares.

Tiers are markers named by the I/O a test may do:
``unit`` (no network and no services; reading fixture files is allowed),
``integration`` (real Postgres, RabbitMQ, LocalStack, local stand-in
servers), ``e2e`` (the whole host-mode stack through HTTP) and ``faults``
(e2e tests that kill and restart processes, the machine's Postgres and
RabbitMQ included). Each test module sets its tier with ``pytestmark``, and
the tiers run in that order, the fastest first.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.stack import FaultReport, Stack

FIXTURES = Path(__file__).with_name("fixtures")
ADMIN_DATABASE_URL = os.environ.get(
    "TEST_ADMIN_DATABASE_URL", "postgresql+pg8000://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def _admin_engine():
    # pre_ping: the fault tier restarts Postgres under these engines.
    return create_engine(ADMIN_DATABASE_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@contextlib.contextmanager
def empty_database(prefix: str):
    """A new, empty database; dropped on exit. Yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_DATABASE_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url():
    """A fresh, migrated database for this test session, dropped afterwards."""
    from infra.migrate import upgrade
    from infra.zones import ensure_zones

    with empty_database("taxi_test") as url:
        engine = create_engine(url)
        upgrade(engine)
        ensure_zones(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def db_engine(database_url):
    engine = create_engine(database_url, pool_pre_ping=True)
    yield engine
    engine.dispose()


_TIER_ORDER = ("unit", "integration", "bench", "e2e", "faults")


def pytest_collection_modifyitems(items):
    def tier(item) -> int:
        names = {mark.name for mark in item.iter_markers()}
        ranks = [i for i, name in enumerate(_TIER_ORDER) if name in names]
        return max(ranks) if ranks else 0

    items.sort(key=tier)


@pytest.fixture(scope="session")
def stack(database_url, db_engine, tmp_path_factory):
    """The whole host-mode stack, private to this test session."""
    running = Stack(workdir=tmp_path_factory.mktemp("stack"), database_url=database_url,
                    engine=db_engine)
    try:
        running.start()
    except BaseException:
        print(running.logs())
        running.stop()
        raise
    yield running
    running.stop()


_FAULTS = FaultReport()


@pytest.fixture(scope="session")
def fault_report() -> FaultReport:
    return _FAULTS


def pytest_terminal_summary(terminalreporter):
    if _FAULTS.faults or _FAULTS.jobs:
        terminalreporter.write_sep("=", "fault tier")
        terminalreporter.write_line(_FAULTS.line())
