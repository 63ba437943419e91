"""The binary COPY encoder against Postgres itself: the rows it loads must be
the rows the CSV form loads, edge cases included."""

from __future__ import annotations

import datetime as dt
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from tests.conftest import FIXTURES
from worker.encode import binary_stream, copy_statement, encode_binary, encode_csv
from worker.schema_map import CANONICAL, recognise, to_canonical

pytestmark = pytest.mark.integration

COLUMNS = ", ".join(CANONICAL.names)


def _edge_rows() -> pa.Table:
    base = {name: None for name in CANONICAL.names}
    rows = [
        dict(base),  # every value NULL
        {**base, "vendor_id": -32768, "passenger_count": 32767,
         "pickup_at": dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
         "dropoff_at": dt.datetime(2100, 1, 1), "store_and_fwd_flag": "",
         "fare_amount": float("inf"), "extra": float("-inf"), "tip_amount": -0.0,
         "total_amount": 1e308},
        {**base, "store_and_fwd_flag": 'Ünï "q",\nline', "trip_distance": 5e-324,
         "pickup_at": dt.datetime(2025, 1, 1, 0, 14, 27), "airport_fee": float("nan")},
    ]
    return pa.Table.from_pylist(rows, schema=CANONICAL)


def _real_rows() -> pa.Table:
    raw = pq.read_table(FIXTURES / "2025-01_head10000_yellow_tripdata_sample.parquet")
    return to_canonical(raw, recognise(raw.column_names))


def _load(conn, table_name: str, rows: pa.Table, binary: bool) -> uuid.UUID:
    job = uuid.uuid4()
    cursor = conn.connection.dbapi_connection.cursor()
    if binary:
        stream = binary_stream(encode_binary(rows, job))
    else:
        stream = [encode_csv(rows, job)]
    cursor.execute(copy_statement(table_name, binary=binary), stream=stream)
    cursor.close()
    return job


@pytest.mark.parametrize("rows", [_edge_rows, _real_rows], ids=["edge", "real"])
def test_binary_and_csv_load_the_same_rows(db_engine, rows):
    table = rows()
    with db_engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE via_csv (LIKE yellow_taxi_trips)"))
        conn.execute(text("CREATE TEMP TABLE via_binary (LIKE yellow_taxi_trips)"))
        _load(conn, "via_csv", table, binary=False)
        _load(conn, "via_binary", table, binary=True)
        counts = [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("via_csv", "via_binary")]
        differ = conn.execute(text(
            f"SELECT count(*) FROM ((SELECT {COLUMNS} FROM via_csv EXCEPT ALL "
            f"SELECT {COLUMNS} FROM via_binary) UNION ALL (SELECT {COLUMNS} FROM via_binary "
            f"EXCEPT ALL SELECT {COLUMNS} FROM via_csv)) d")).scalar_one()
        conn.rollback()
    assert counts == [table.num_rows] * 2
    assert differ == 0


def test_the_encoder_matches_the_tables_column_types(db_engine):
    # Binary COPY sends raw bytes: a column whose type changes in a
    # migration but not in CANONICAL would fail every load (22P03).
    expected = {"int16": "smallint", "double": "double precision",
                "timestamp[us]": "timestamp without time zone", "string": "text"}
    with db_engine.connect() as conn:
        types = dict(conn.execute(text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'yellow_taxi_trips'")).all())
    for field in CANONICAL:
        assert types[field.name] == expected[str(field.type)], field.name
    assert types["job_id"] == "uuid"
