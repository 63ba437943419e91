"""The cleaning rules. Pure: no I/O.

Every rule has a name; a row is rejected under the first rule it breaks, in
the order of ``infra.settings.CLEANING_RULES``, and is kept, with that name,
in the rejects file. So for every file
``rows_in == rows_loaded + sum(rejected_by_reason.values())``.

The old system's rules are the defaults: required fields present, distance
above zero, total not negative, 1-8 passengers, dropoff after pickup, no
duplicate (pickup time, pickup zone, dropoff zone) within a file. On top of
them: timestamps that cannot be real, pickups outside the file's month, and
zones missing from ``dim_taxi_zones``. Duplicates are judged last, among the
rows every other rule kept, so that a kept row never has a kept twin.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from infra.settings import CLEANING_RULES

REQUIRED_FIELDS = ("pickup_at", "dropoff_at", "pickup_location_id", "dropoff_location_id",
                   "passenger_count", "trip_distance", "total_amount")
EARLIEST_PICKUP = dt.datetime(2009, 1, 1)
REASON_COLUMN = "reject_reason"
ROW_COLUMN = "source_row"
RAW_COLUMN = "raw_line"
#: Not rules (they cannot be switched off): a CSV line whose fields do not
#: line up with the header, and a row holding a value its column cannot hold
#: (see ``schema_map.canonical_with_invalid``), cannot be checked at all.
MALFORMED = "malformed_row"
INVALID = "invalid_value"


@dataclass(frozen=True)
class RuleContext:
    enabled: tuple[str, ...] = CLEANING_RULES
    #: (year, month) the file covers; None switches the month rule off.
    month: tuple[int, int] | None = None
    zone_ids: frozenset[int] = frozenset()
    #: Nothing can have happened after the upload.
    not_after: dt.datetime = field(default_factory=lambda: dt.datetime(2100, 1, 1))

    def month_bounds(self) -> tuple[dt.datetime, dt.datetime]:
        if self.month is None:
            raise ValueError("this file has no month to bound pickups by")
        year, month = self.month
        start = dt.datetime(year, month, 1)
        end = dt.datetime(year + month // 12, month % 12 + 1, 1)
        return start, end


@dataclass
class CleanResult:
    kept: pa.Table
    rejected: pa.Table  # the rejected rows plus reject_reason and source_row


def _mask(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


def _required_fields(t: pa.Table, _: RuleContext) -> np.ndarray:
    """Present means: not null, and for a number, finite (NaN and infinity
    are no distance and no fare)."""
    missing = np.zeros(t.num_rows, dtype=bool)
    for name in REQUIRED_FIELDS:
        column = t.column(name)
        missing |= pc.is_null(column, nan_is_null=True).to_numpy(zero_copy_only=False)
        if pa.types.is_floating(column.type):
            missing |= ~_mask(pc.is_finite(column)) & ~_mask(pc.is_null(column))
    return missing


def _implausible_timestamp(t: pa.Table, ctx: RuleContext) -> np.ndarray:
    early = pa.scalar(EARLIEST_PICKUP, pa.timestamp("us"))
    late = pa.scalar(ctx.not_after.replace(tzinfo=None), pa.timestamp("us"))
    bad = np.zeros(t.num_rows, dtype=bool)
    for name in ("pickup_at", "dropoff_at"):
        column = t.column(name)
        bad |= _mask(pc.or_(pc.less(column, early), pc.greater(column, late)))
    return bad


def _non_positive_distance(t: pa.Table, _: RuleContext) -> np.ndarray:
    return _mask(pc.less_equal(t.column("trip_distance"), 0))


def _negative_total(t: pa.Table, _: RuleContext) -> np.ndarray:
    return _mask(pc.less(t.column("total_amount"), 0))


def _passenger_count_range(t: pa.Table, _: RuleContext) -> np.ndarray:
    count = t.column("passenger_count")
    return _mask(pc.or_(pc.less(count, 1), pc.greater(count, 8)))


def _dropoff_not_after_pickup(t: pa.Table, _: RuleContext) -> np.ndarray:
    return _mask(pc.less_equal(t.column("dropoff_at"), t.column("pickup_at")))


def _pickup_outside_file_month(t: pa.Table, ctx: RuleContext) -> np.ndarray:
    if ctx.month is None:
        return np.zeros(t.num_rows, dtype=bool)
    start, end = ctx.month_bounds()
    pickup = t.column("pickup_at")
    return _mask(pc.or_(pc.less(pickup, pa.scalar(start, pa.timestamp("us"))),
                        pc.greater_equal(pickup, pa.scalar(end, pa.timestamp("us")))))


def _unknown_zone(t: pa.Table, ctx: RuleContext) -> np.ndarray:
    zones = pa.array(sorted(ctx.zone_ids), pa.int16())
    bad = np.zeros(t.num_rows, dtype=bool)
    for name in ("pickup_location_id", "dropoff_location_id"):
        bad |= ~_mask(pc.is_in(t.column(name), value_set=zones))
    return bad


RULES: dict[str, Callable[[pa.Table, RuleContext], np.ndarray]] = {
    "required_fields": _required_fields,
    "implausible_timestamp": _implausible_timestamp,
    "non_positive_distance": _non_positive_distance,
    "negative_total": _negative_total,
    "passenger_count_range": _passenger_count_range,
    "dropoff_not_after_pickup": _dropoff_not_after_pickup,
    "pickup_outside_file_month": _pickup_outside_file_month,
    "unknown_zone": _unknown_zone,
}
if tuple(RULES) + ("duplicate_trip",) != CLEANING_RULES:
    raise ImportError("worker.cleaning.RULES is out of step with CLEANING_RULES")


def trip_keys(t: pa.Table) -> np.ndarray:
    """(pickup second, pickup zone, dropoff zone) packed exactly into 64 bits:
    32 bits of seconds since 1970 (TLC records whole seconds), 16 per zone."""
    seconds = pc.divide(t.column("pickup_at").cast(pa.int64()), 1_000_000)
    sec = pc.fill_null(seconds, 0).to_numpy(zero_copy_only=False).astype(np.uint64)
    pu = pc.fill_null(t.column("pickup_location_id"), 0).to_numpy(
        zero_copy_only=False).astype(np.uint16).astype(np.uint64)
    do = pc.fill_null(t.column("dropoff_location_id"), 0).to_numpy(
        zero_copy_only=False).astype(np.uint16).astype(np.uint64)
    return ((sec & np.uint64(0xFFFF_FFFF)) << np.uint64(32)) | (pu << np.uint64(16)) | do


def month_keys(t: pa.Table, month_start: dt.datetime) -> np.ndarray:
    """The same trip key, for a file whose pickups all fall in one month and
    whose zones are below 512: hour of the month, then second of the hour (12
    bits) and the two zones (9 bits each) in the low 30 bits."""
    start = int(pa.scalar(month_start, pa.timestamp("us")).cast(pa.int64()).as_py())
    micros = pc.fill_null(t.column("pickup_at").cast(pa.int64()), start).to_numpy(
        zero_copy_only=False)
    seconds = ((micros - start) // 1_000_000).astype(np.uint64)
    pu = pc.fill_null(t.column("pickup_location_id"), 0).to_numpy(
        zero_copy_only=False).astype(np.uint64)
    do = pc.fill_null(t.column("dropoff_location_id"), 0).to_numpy(
        zero_copy_only=False).astype(np.uint64)
    hour, second = seconds // np.uint64(3600), seconds % np.uint64(3600)
    return (hour << np.uint64(30)) | (second << np.uint64(18)) | (pu << np.uint64(9)) | do


def _merge(seen: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the sorted, distinct ``keys`` are in sorted ``seen``, and
    ``seen`` with the others inserted where the same search put them."""
    pos = np.searchsorted(seen, keys)
    known = np.zeros(keys.size, dtype=bool)
    inside = pos < seen.size
    known[inside] = seen[pos[inside]] == keys[inside]
    return known, np.insert(seen, pos[~known], keys[~known])


class _AllKeys:
    """Every key kept so far, in one sorted array: 8 bytes a key."""

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.uint64)

    def known_then_add(self, unique: np.ndarray) -> np.ndarray:
        known, self._keys = _merge(self._keys, unique)
        return known


class _HourBuckets:
    """The keys of a one-month file, one sorted array per hour of the month:
    4 bytes a key, and adding keys copies an hour's bucket, not every key. So
    a file four times as long costs about 4 bytes a row more, not 16."""

    _LOW = np.uint64((1 << 30) - 1)

    def __init__(self) -> None:
        self._buckets: dict[int, np.ndarray] = {}

    def known_then_add(self, unique: np.ndarray) -> np.ndarray:
        hours = (unique >> np.uint64(30)).astype(np.int64)
        low = (unique & self._LOW).astype(np.uint32)
        known = np.zeros(unique.size, dtype=bool)
        edges = np.flatnonzero(np.diff(hours)) + 1
        for start, end in zip(np.r_[0, edges], np.r_[edges, unique.size], strict=True):
            hour = int(hours[start])
            seen = self._buckets.get(hour, np.empty(0, dtype=np.uint32))
            known[start:end], self._buckets[hour] = _merge(seen, low[start:end])
        return known


class Cleaner:
    """Applies the enabled rules batch by batch. It remembers the trip keys it
    kept, so duplicates are found across the batches of one file."""

    def __init__(self, ctx: RuleContext) -> None:
        self.ctx = ctx
        self.rules = tuple(name for name in CLEANING_RULES if name in ctx.enabled)
        self.counts = {name: 0 for name in self.rules}
        self.rows_in = 0
        self.rows_kept = 0
        self._reason_names = pa.array(("",) + self.rules + (INVALID,), pa.string())
        # Duplicates are judged after the month and zone rules: when both run,
        # every key left fits the compact form of one month.
        self._compact = (ctx.month is not None
                         and {"pickup_outside_file_month", "unknown_zone"} <= set(self.rules)
                         and all(0 <= zone < 512 for zone in ctx.zone_ids))
        self._seen = _HourBuckets() if self._compact else _AllKeys()

    def clean(self, table: pa.Table, invalid: np.ndarray | None = None) -> CleanResult:
        """Apply the rules to one batch; rows flagged in ``invalid`` are
        rejected as ``invalid_value`` before any rule looks at them."""
        n = table.num_rows
        reason = np.zeros(n, dtype=np.int8)
        invalid_code = len(self.rules) + 1
        if invalid is not None and invalid.any():
            reason[invalid] = invalid_code
        for code, name in enumerate(self.rules, start=1):
            if name == "duplicate_trip":
                hit = self._duplicates(table, reason == 0)
            else:
                hit = RULES[name](table, self.ctx)
            reason[hit & (reason == 0)] = code
        counts = np.bincount(reason, minlength=len(self.rules) + 2)
        for code, name in enumerate(self.rules, start=1):
            self.counts[name] += int(counts[code])
        if counts[invalid_code]:
            self.counts[INVALID] = self.counts.get(INVALID, 0) + int(counts[invalid_code])
        kept_mask = reason == 0
        offset = self.rows_in
        self.rows_in += n
        self.rows_kept += int(counts[0])
        kept = table.filter(pa.array(kept_mask)) if counts[0] < n else table
        rejected = self._rejected(table, reason, ~kept_mask, offset)
        return CleanResult(kept=kept, rejected=rejected)

    def _duplicates(self, table: pa.Table, candidates: np.ndarray) -> np.ndarray:
        hit = np.zeros(table.num_rows, dtype=bool)
        index = np.flatnonzero(candidates)
        if index.size == 0:
            return hit
        key_columns = table.select(["pickup_at", "pickup_location_id", "dropoff_location_id"])
        rows = key_columns.take(pa.array(index))
        keys = month_keys(rows, self.ctx.month_bounds()[0]) if self._compact \
            else trip_keys(rows)
        unique, first = np.unique(keys, return_index=True)
        repeat = np.ones(keys.size, dtype=bool)
        repeat[first] = False
        # Each distinct key is looked up once in the keys of earlier batches.
        known = self._seen.known_then_add(unique)
        repeat |= known[np.searchsorted(unique, keys)]
        hit[index] = repeat
        return hit

    def _rejected(self, table: pa.Table, reason: np.ndarray, mask: np.ndarray,
                  offset: int) -> pa.Table:
        index = np.flatnonzero(mask)
        rows = table.take(pa.array(index))
        reasons = self._reason_names.take(pa.array(reason[index].astype(np.int32)))
        rows = rows.append_column(REASON_COLUMN, reasons)
        return rows.append_column(ROW_COLUMN, pa.array(index.astype(np.int64) + offset))

    def record_malformed(self, count: int) -> None:
        """Count lines the reader could not split into the header's fields."""
        if count:
            self.rows_in += count
            self.counts[MALFORMED] = self.counts.get(MALFORMED, 0) + count

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        return dict(self.counts)
