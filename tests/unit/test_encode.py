from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pyarrow as pa
import pytest

from worker.encode import COPY_COLUMNS, copy_statement, encode_csv
from worker.schema_map import CANONICAL

pytestmark = pytest.mark.unit


def test_rows_encode_in_copy_column_order_with_nulls_empty_and_unquoted():
    row = {name: None for name in CANONICAL.names}
    row.update(vendor_id=1, pickup_at=dt.datetime(2025, 1, 1, 0, 14, 27),
               store_and_fwd_flag="", total_amount=12.5)
    job = uuid.uuid4()
    data = encode_csv(pa.Table.from_pylist([row], schema=CANONICAL), job)
    (fields,) = list(csv.reader(io.StringIO(data.decode())))
    assert len(fields) == len(COPY_COLUMNS)
    by_name = dict(zip(COPY_COLUMNS, fields, strict=True))
    assert by_name["job_id"] == str(job)
    assert by_name["pickup_at"].startswith("2025-01-01 00:14:27")
    assert by_name["total_amount"] == "12.5"
    # NULL is an empty unquoted field; an empty string stays quoted.
    raw = data.decode().rstrip("\n").split(",")
    assert raw[COPY_COLUMNS.index("dropoff_at")] == ""
    assert raw[COPY_COLUMNS.index("store_and_fwd_flag")] == '""'


def test_empty_batches_encode_to_nothing():
    assert encode_csv(CANONICAL.empty_table(), uuid.uuid4()) == b""


def test_copy_statement_names_every_column():
    statement = copy_statement()
    assert statement.startswith("COPY yellow_taxi_trips (vendor_id, pickup_at")
    assert "job_id) FROM STDIN WITH (FORMAT csv)" in statement
