"""The cleaning rules, one by one, and the account they keep."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.settings import CLEANING_RULES
from worker.cleaning import REASON_COLUMN, ROW_COLUMN, Cleaner, RuleContext
from worker.schema_map import CANONICAL

pytestmark = pytest.mark.unit

ZONES = frozenset(range(1, 266))
JAN = (2025, 1)
UPLOADED = dt.datetime(2025, 3, 1)


def trip(**overrides) -> dict:
    row = {name: None for name in CANONICAL.names}
    row.update(vendor_id=2, pickup_at=dt.datetime(2025, 1, 10, 8, 0, 0),
               dropoff_at=dt.datetime(2025, 1, 10, 8, 20, 0), passenger_count=1,
               trip_distance=3.2, ratecode_id=1, store_and_fwd_flag="N",
               pickup_location_id=132, dropoff_location_id=236, payment_type=1,
               fare_amount=20.0, total_amount=25.5)
    row.update(overrides)
    return row


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=CANONICAL)


def cleaner(**ctx) -> Cleaner:
    return Cleaner(RuleContext(**{"month": JAN, "zone_ids": ZONES, "not_after": UPLOADED,
                                  **ctx}))


@pytest.mark.parametrize(("bad", "rule"), [
    ({"pickup_at": None}, "required_fields"),
    ({"total_amount": None}, "required_fields"),
    ({"trip_distance": float("nan")}, "required_fields"),
    ({"trip_distance": float("inf")}, "required_fields"),
    ({"total_amount": float("-inf")}, "required_fields"),
    ({"passenger_count": None}, "required_fields"),
    ({"pickup_at": dt.datetime(2008, 12, 31, 23, 0), "dropoff_at": dt.datetime(2009, 1, 1)},
     "implausible_timestamp"),
    ({"pickup_at": dt.datetime(2025, 3, 2), "dropoff_at": dt.datetime(2025, 3, 2, 1)},
     "implausible_timestamp"),
    ({"trip_distance": 0.0}, "non_positive_distance"),
    ({"trip_distance": -1.0}, "non_positive_distance"),
    ({"total_amount": -0.01}, "negative_total"),
    ({"passenger_count": 0}, "passenger_count_range"),
    ({"passenger_count": 9}, "passenger_count_range"),
    ({"dropoff_at": dt.datetime(2025, 1, 10, 8, 0, 0)}, "dropoff_not_after_pickup"),
    ({"pickup_at": dt.datetime(2024, 12, 31, 23, 59), "dropoff_at": dt.datetime(2025, 1, 1)},
     "pickup_outside_file_month"),
    ({"pickup_location_id": 266}, "unknown_zone"),
    ({"dropoff_location_id": 0}, "unknown_zone"),
])
def test_each_rule_rejects_its_row_and_names_itself(bad, rule):
    c = cleaner()
    result = c.clean(table([trip(), trip(**bad)]))
    assert result.kept.num_rows == 1
    assert result.rejected.column(REASON_COLUMN).to_pylist() == [rule]
    assert result.rejected.column(ROW_COLUMN).to_pylist() == [1]
    assert c.counts[rule] == 1 and sum(c.counts.values()) == 1


def test_boundaries_that_are_kept():
    c = cleaner()
    rows = [trip(passenger_count=8), trip(total_amount=0.0, pickup_location_id=1),
            trip(pickup_at=dt.datetime(2025, 1, 31, 23, 59, 59),
                 dropoff_at=dt.datetime(2025, 2, 1, 0, 10))]
    assert c.clean(table(rows)).kept.num_rows == 3


def test_a_row_counts_under_the_first_rule_it_breaks():
    c = cleaner()
    c.clean(table([trip(trip_distance=0.0, total_amount=-5.0, passenger_count=0)]))
    assert c.counts["non_positive_distance"] == 1
    assert sum(c.counts.values()) == 1


def test_duplicates_are_found_across_batches_and_the_first_is_kept():
    c = cleaner()
    first = c.clean(table([trip(), trip(pickup_location_id=4)]))
    second = c.clean(table([trip(fare_amount=99.0), trip(), trip(pickup_location_id=5)]))
    assert first.kept.num_rows == 2
    assert second.kept.num_rows == 1
    assert second.rejected.column(REASON_COLUMN).to_pylist() == ["duplicate_trip"] * 2
    assert second.rejected.column(ROW_COLUMN).to_pylist() == [2, 3]


def test_a_rejected_row_does_not_make_its_twin_a_duplicate():
    c = cleaner()
    result = c.clean(table([trip(total_amount=-1.0), trip()]))
    assert result.kept.num_rows == 1
    assert c.counts == {**dict.fromkeys(c.rules, 0), "negative_total": 1}


def test_disabled_rules_do_not_run():
    enabled = tuple(r for r in CLEANING_RULES if r not in ("unknown_zone", "duplicate_trip"))
    c = cleaner(enabled=enabled)
    result = c.clean(table([trip(pickup_location_id=999), trip(pickup_location_id=999)]))
    assert result.kept.num_rows == 2
    assert c.rules == enabled and "unknown_zone" not in c.counts


def test_without_a_month_the_month_rule_passes_everything():
    c = cleaner(month=None)
    rows = [trip(pickup_at=dt.datetime(2024, 6, 1), dropoff_at=dt.datetime(2024, 6, 1, 1))]
    assert c.clean(table(rows)).kept.num_rows == 1


# -- property: the account always balances, and every kept row is clean ----

_times = st.datetimes(min_value=dt.datetime(2008, 6, 1), max_value=dt.datetime(2025, 4, 1))
_rows = st.fixed_dictionaries({
    "pickup_at": st.one_of(st.none(), _times),
    "minutes": st.integers(min_value=-30, max_value=120),
    "passenger_count": st.one_of(st.none(), st.integers(min_value=-1, max_value=10)),
    "trip_distance": st.one_of(st.none(), st.sampled_from([-1.0, 0.0, 0.1, 3.0, 1e6])),
    "total_amount": st.one_of(st.none(), st.sampled_from([-5.0, 0.0, 12.3])),
    "pickup_location_id": st.sampled_from([0, 1, 132, 265, 266]),
    "dropoff_location_id": st.sampled_from([1, 236, 300]),
}).map(lambda r: trip(
    pickup_at=r["pickup_at"],
    dropoff_at=None if r["pickup_at"] is None
    else r["pickup_at"] + dt.timedelta(minutes=r["minutes"]),
    passenger_count=r["passenger_count"], trip_distance=r["trip_distance"],
    total_amount=r["total_amount"], pickup_location_id=r["pickup_location_id"],
    dropoff_location_id=r["dropoff_location_id"]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_rows, max_size=40), min_size=1, max_size=4))
def test_every_row_is_accounted_for_and_kept_rows_pass_every_rule(batches):
    c = cleaner()
    kept = []
    for rows in batches:
        result = c.clean(table(rows))
        assert result.kept.num_rows + result.rejected.num_rows == len(rows)
        kept.append(result.kept)
    assert c.rows_in == sum(map(len, batches))
    assert c.rows_in == c.rows_kept + sum(c.counts.values())
    everything = pa.concat_tables(kept)
    assert everything.num_rows == c.rows_kept
    # Every kept row, re-checked from scratch, breaks no rule...
    recheck = cleaner()
    assert recheck.clean(everything).kept.num_rows == everything.num_rows
    # ...and no two kept rows share a trip key.
    keys = pc.binary_join_element_wise(
        everything.column("pickup_at").cast(pa.string()),
        everything.column("pickup_location_id").cast(pa.string()),
        everything.column("dropoff_location_id").cast(pa.string()), "|")
    assert len(set(keys.to_pylist())) == everything.num_rows


def test_rows_with_invalid_values_are_rejected_first_and_counted():
    import numpy as np

    c = cleaner()
    result = c.clean(table([trip(), trip(trip_distance=0.0), trip(pickup_location_id=7)]),
                     np.array([False, True, False]))
    assert result.rejected.column(REASON_COLUMN).to_pylist() == ["invalid_value"]
    assert c.counts["invalid_value"] == 1 and c.counts["non_positive_distance"] == 0
    assert c.rows_in == c.rows_kept + sum(c.counts.values())


def test_compact_and_general_duplicate_keys_agree_on_real_rows():
    import pyarrow.parquet as pq

    from tests.conftest import FIXTURES
    from worker.schema_map import recognise, to_canonical

    raw = pq.read_table(FIXTURES / "2025-01_head10000_yellow_tripdata_sample.parquet")
    rows = to_canonical(raw, recognise(raw.column_names))
    compact = cleaner()
    # A zone id of 600 rules the compact form out; no row uses it.
    general = cleaner(zone_ids=ZONES | {600})
    assert compact._compact and not general._compact
    for start in range(0, rows.num_rows, 999):
        batch = rows.slice(start, 999)
        kept = compact.clean(batch).kept, general.clean(batch).kept
        assert kept[0].equals(kept[1])
    assert compact.counts == general.counts
    assert compact.counts["duplicate_trip"] == 7
