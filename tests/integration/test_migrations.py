"""Migrations and the zone load, started by many processes at once on a
fresh database (field notes F15)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, inspect, text

from infra.migrate import upgrade
from infra.schema import metadata
from infra.zones import ZONE_FILE, ensure_zones, read_zone_file
from tests.conftest import empty_database

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_database():
    with empty_database("taxi_mig") as url:
        yield url


def test_many_starters_at_once_migrate_once_and_load_each_zone_once(fresh_database):
    def start() -> int:
        engine = create_engine(fresh_database)
        try:
            upgrade(engine)
            return ensure_zones(engine)
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=8) as pool:
        inserted = list(pool.map(lambda _: start(), range(8)))

    engine = create_engine(fresh_database)
    with engine.connect() as conn:
        zones = conn.execute(text("SELECT count(*), count(DISTINCT location_id) "
                                  "FROM dim_taxi_zones")).one()
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert zones == (265, 265)
    assert sorted(inserted, reverse=True)[0] == 265 and sum(inserted) == 265
    assert versions == ["0001"]
    assert set(inspect(engine).get_table_names()) >= set(metadata.tables)
    engine.dispose()


def test_the_zone_file_keeps_na_boroughs_as_text():
    rows = {row["location_id"]: row for row in read_zone_file(ZONE_FILE)}
    assert len(rows) == 265 and min(rows) == 1 and max(rows) == 265
    # pandas would read these as missing values; the loader keeps them.
    assert rows[264]["zone"] == "N/A" and rows[265]["borough"] == "N/A"


def test_migrations_match_the_schema_module(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == [], f"infra/schema.py and the migrations differ: {diff}"
