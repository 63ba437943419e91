"""Fill ``dim_taxi_zones`` from the TLC lookup shipped in ``infra/data``.

Safe when many processes start at once on an empty database: the load holds
a transaction-level advisory lock and inserts with ON CONFLICT DO NOTHING,
so nobody sees a duplicate-key error and no row is doubled.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.dialects.postgresql import insert

from infra.schema import dim_taxi_zones

logger = logging.getLogger(__name__)

ZONE_FILE = Path(__file__).with_name("data") / "taxi_zone_lookup.csv"
_ZONE_LOCK = 0x7A78_0002


def read_zone_file(path: Path = ZONE_FILE) -> list[dict]:
    """Rows of the lookup. Read with the csv module, not pandas: pandas turns
    the borough "N/A" and "NA" into missing values."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {
                "location_id": int(row["LocationID"]),
                "borough": row["Borough"],
                "zone": row["Zone"],
                "service_zone": row["service_zone"],
            }
            for row in csv.DictReader(handle)
        ]


def ensure_zones(engine: Engine, path: Path = ZONE_FILE) -> int:
    """Insert the zones that are missing; return how many were inserted."""
    with engine.begin() as conn:
        count = conn.execute(text("SELECT count(*) FROM dim_taxi_zones")).scalar_one()
        if count:
            return 0
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ZONE_LOCK})
        rows = read_zone_file(path)
        statement = insert(dim_taxi_zones).on_conflict_do_nothing(
            index_elements=["location_id"])
        result = conn.execute(statement, rows)
        inserted = max(result.rowcount, 0)
    logger.info("dim_taxi_zones: %d of %d rows inserted from %s",
                inserted, len(rows), path.name)
    return inserted


def zone_ids(engine: Engine) -> frozenset[int]:
    with engine.connect() as conn:
        return frozenset(conn.execute(
            text("SELECT location_id FROM dim_taxi_zones")).scalars())
