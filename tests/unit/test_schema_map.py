"""Every yellow era maps onto one schema; other kinds are refused by name
(field notes F11, F12)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import FIXTURES
from worker.errors import IngestError
from worker.schema_map import CANONICAL, recognise, to_canonical

pytestmark = pytest.mark.unit

YELLOW_FILES = ["2025-01_head5_yellow_tripdata_sample.parquet",
                "2025-01_head10000_yellow_tripdata_sample.parquet",
                "yellow_2015-01.parquet"]


@pytest.mark.parametrize("name", YELLOW_FILES)
def test_real_yellow_files_cast_to_the_canonical_schema(name):
    table = pq.read_table(FIXTURES / name)
    mapping = recognise(table.column_names)
    out = to_canonical(table, mapping)
    assert out.schema == CANONICAL
    assert out.num_rows == table.num_rows
    assert out.column("pickup_at").null_count == 0


def test_batches_from_different_writers_concatenate():
    # F12: int32 vs int64 ids, us vs ns timestamps, double passenger counts.
    tables = []
    for name in YELLOW_FILES:
        raw = pq.read_table(FIXTURES / name)
        tables.append(to_canonical(raw, recognise(raw.column_names)))
    combined = pa.concat_tables(tables)
    assert combined.num_rows == sum(t.num_rows for t in tables)


def test_airport_fee_matches_in_any_case_and_null_columns_load_as_null():
    raw = pq.read_table(FIXTURES / "yellow_2015-01.parquet")
    assert "airport_fee" in raw.column_names and raw.schema.field("airport_fee").type == pa.null()
    out = to_canonical(raw, recognise(raw.column_names))
    assert out.column("airport_fee").null_count == raw.num_rows
    assert out.column("cbd_congestion_fee").null_count == raw.num_rows  # absent before 2025

    raw_2025 = pq.read_table(FIXTURES / "2025-01_head5_yellow_tripdata_sample.parquet")
    assert "Airport_fee" in raw_2025.column_names
    out_2025 = to_canonical(raw_2025, recognise(raw_2025.column_names))
    assert out_2025.column("airport_fee").to_pylist() == raw_2025.column("Airport_fee").to_pylist()


def test_nanosecond_timestamps_and_double_counts_keep_their_values():
    raw = pq.read_table(FIXTURES / "2025-01_head10000_yellow_tripdata_sample.parquet")
    assert raw.schema.field("tpep_pickup_datetime").type == pa.timestamp("ns")
    out = to_canonical(raw, recognise(raw.column_names))
    assert out.column("pickup_at").to_pylist()[:3] == [
        v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v
        for v in raw.column("tpep_pickup_datetime").cast(pa.timestamp("us")).to_pylist()[:3]]
    expected = [None if v is None else int(v) for v in raw.column("passenger_count").to_pylist()]
    assert out.column("passenger_count").to_pylist() == expected


def test_unknown_extra_columns_are_ignored_not_fatal():
    raw = pq.read_table(FIXTURES / "2025-01_head5_yellow_tripdata_sample.parquet")
    raw = raw.append_column("surprise_2026_fee", pa.array([1.0] * raw.num_rows))
    mapping = recognise(raw.column_names)
    assert mapping.ignored == ("surprise_2026_fee",)
    assert to_canonical(raw, mapping).schema == CANONICAL


@pytest.mark.parametrize(("columns", "code", "named"), [
    (["VendorID", "lpep_pickup_datetime", "lpep_dropoff_datetime", "PULocationID"],
     "green_trip_file", "lpep_pickup_datetime"),
    (["hvfhs_license_num", "dispatching_base_num", "pickup_datetime", "PULocationID"],
     "hvfhv_trip_file", "hvfhs_license_num"),
    (["dispatching_base_num", "pickup_datetime", "dropOff_datetime", "PUlocationID"],
     "fhv_trip_file", "dispatching_base_num"),
    (["vendor_name", "Trip_Pickup_DateTime", "Start_Lon", "Start_Lat", "Fare_Amt"],
     "legacy_yellow_layout", "Start_Lon"),
    (["vendor_id", " pickup_datetime", " pickup_longitude", " total_amount"],
     "legacy_yellow_layout", "pickup_longitude"),
    (["id", "name", "price"], "unrecognised_columns", "id, name, price"),
])
def test_other_kinds_are_refused_with_their_own_code(columns, code, named):
    with pytest.raises(IngestError) as error:
        recognise(columns)
    assert error.value.code == code
    assert named in error.value.message


def test_text_in_a_number_column_is_a_clear_error():
    raw = pq.read_table(FIXTURES / "2025-01_head5_yellow_tripdata_sample.parquet")
    index = raw.column_names.index("fare_amount")
    raw = raw.set_column(index, "fare_amount", pa.array(["12.5", "abc", "3", "4", "5"]))
    with pytest.raises(IngestError) as error:
        to_canonical(raw, recognise(raw.column_names))
    assert error.value.code == "invalid_column_type"
    assert "fare_amount" in error.value.message and "'abc'" in error.value.message


def test_a_value_its_column_cannot_hold_costs_its_row_not_the_file():
    from worker.schema_map import canonical_with_invalid

    raw = pq.read_table(FIXTURES / "2025-01_head5_yellow_tripdata_sample.parquet")
    for name, values in (("passenger_count", [1, 40_000, 1, 1, 1]),
                         ("PULocationID", [132, 132, 132, 2**31 - 1, 132])):
        index = raw.column_names.index(name)
        raw = raw.set_column(index, name, pa.array(values, pa.int64()))
    index = raw.column_names.index("RatecodeID")
    raw = raw.set_column(index, "RatecodeID", pa.array([1.0, 1.0, 1.5, 1.0, None]))
    table, invalid = canonical_with_invalid(raw, recognise(raw.column_names))
    assert invalid.tolist() == [False, True, True, True, False]
    assert table.column("passenger_count").to_pylist()[1] is None
    assert table.column("ratecode_id").to_pylist() == [1, 1, None, 1, None]


def test_values_that_cannot_load_cost_their_rows_and_nan_is_missing():
    import datetime as dt

    from worker.schema_map import canonical_with_invalid

    raw = pq.read_table(FIXTURES / "2025-01_head5_yellow_tripdata_sample.parquet")

    def put(table, name, array):
        return table.set_column(table.column_names.index(name), name, array)

    raw = put(raw, "store_and_fwd_flag",
              pa.array(["N", "Y" * 10_000, "\x00", "N", None], pa.large_string()))
    raw = put(raw, "fare_amount", pa.array([1.0, float("nan"), 2.0, float("-inf"), 3.0]))
    raw = put(raw, "VendorID", pa.array([1, 2, 1, 1, 2**63], pa.uint64()))
    seconds = [1_735_690_000, 18_448_480_972_909, 1_735_690_000, 1_735_690_000, 1_735_690_000]
    raw = put(raw, "tpep_pickup_datetime", pa.array(seconds, pa.timestamp("s")))
    raw = put(raw, "tpep_dropoff_datetime",
              pa.array([dt.datetime(2025, 1, 1, 5)] * 5, pa.timestamp("us", tz="UTC")))
    table, invalid = canonical_with_invalid(raw, recognise(raw.column_names))
    # too long a flag and a pickup past year 292,000; a NUL; -inf; 2**63
    assert invalid.tolist() == [False, True, True, True, True]
    assert table.column("fare_amount").to_pylist()[:3] == [1.0, None, 2.0]
    # TLC times are New York's: 05:00 UTC is midnight there.
    assert table.column("dropoff_at").to_pylist()[0] == dt.datetime(2025, 1, 1)
