"""Recognise what kind of TLC file a set of columns describes, and map a
yellow file's columns onto the one canonical schema. Pure: no I/O.

Every file is cast explicitly to ``CANONICAL``; nothing is inferred from an
earlier file. Names match case-insensitively and ignoring surrounding space
(``Airport_fee``/``airport_fee``, the 2014 CSV's `` pickup_datetime``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from infra.schema import TRIP_COLUMNS
from worker.errors import IngestError

logger = logging.getLogger(__name__)

_INT = pa.int16()
_FLOAT = pa.float64()
_TS = pa.timestamp("us")

CANONICAL = pa.schema([
    ("vendor_id", _INT),
    ("pickup_at", _TS),
    ("dropoff_at", _TS),
    ("passenger_count", _INT),
    ("trip_distance", _FLOAT),
    ("ratecode_id", _INT),
    ("store_and_fwd_flag", pa.string()),
    ("pickup_location_id", _INT),
    ("dropoff_location_id", _INT),
    ("payment_type", _INT),
    ("fare_amount", _FLOAT),
    ("extra", _FLOAT),
    ("mta_tax", _FLOAT),
    ("tip_amount", _FLOAT),
    ("tolls_amount", _FLOAT),
    ("improvement_surcharge", _FLOAT),
    ("total_amount", _FLOAT),
    ("congestion_surcharge", _FLOAT),
    ("airport_fee", _FLOAT),
    ("cbd_congestion_fee", _FLOAT),
])
if tuple(CANONICAL.names) != tuple(name for name, _ in TRIP_COLUMNS):
    raise ImportError("worker.schema_map.CANONICAL and infra.schema.TRIP_COLUMNS disagree")

#: Names each canonical column goes by in TLC files, lower case.
ALIASES: dict[str, tuple[str, ...]] = {
    "vendor_id": ("vendorid", "vendor_id"),
    "pickup_at": ("tpep_pickup_datetime", "pickup_datetime"),
    "dropoff_at": ("tpep_dropoff_datetime", "dropoff_datetime"),
    "passenger_count": ("passenger_count",),
    "trip_distance": ("trip_distance",),
    "ratecode_id": ("ratecodeid", "ratecode_id", "rate_code_id"),
    "store_and_fwd_flag": ("store_and_fwd_flag",),
    "pickup_location_id": ("pulocationid", "pickup_location_id"),
    "dropoff_location_id": ("dolocationid", "dropoff_location_id"),
    "payment_type": ("payment_type",),
    "fare_amount": ("fare_amount",),
    "extra": ("extra",),
    "mta_tax": ("mta_tax",),
    "tip_amount": ("tip_amount",),
    "tolls_amount": ("tolls_amount",),
    "improvement_surcharge": ("improvement_surcharge",),
    "total_amount": ("total_amount",),
    "congestion_surcharge": ("congestion_surcharge",),
    "airport_fee": ("airport_fee",),
    "cbd_congestion_fee": ("cbd_congestion_fee",),
}

#: Without these a file is not a yellow trip file of 2011 or later.
REQUIRED = ("pickup_at", "dropoff_at", "pickup_location_id", "dropoff_location_id",
            "trip_distance", "total_amount")

#: Columns that pandas or Spark add and that mean nothing.
_NOISE = ("__index_level_0__", "_c0", "unnamed: 0", "")

TLC_TIME_ZONE = "America/New_York"
_YELLOW_EXPECTED = "a TLC yellow trip file (tpep_pickup_datetime, PULocationID, ...)"


@dataclass(frozen=True)
class ColumnMap:
    """Which source column feeds each canonical column (None: absent)."""

    sources: dict[str, str | None]
    ignored: tuple[str, ...]

    @property
    def source_columns(self) -> list[str]:
        return [name for name in self.sources.values() if name is not None]


def _norm(name: str) -> str:
    return name.strip().lower()


def recognise(columns: list[str]) -> ColumnMap:
    """Map the file's columns, or refuse a file that is not yellow trips with
    an error naming what was found."""
    by_norm: dict[str, str] = {}
    for name in columns:
        by_norm.setdefault(_norm(name), name)
    present = set(by_norm)

    if "lpep_pickup_datetime" in present:
        raise IngestError("green_trip_file", _wrong_kind(
            "a green taxi (lpep_*) trip file", columns))
    if "hvfhs_license_num" in present:
        raise IngestError("hvfhv_trip_file", _wrong_kind(
            "a high-volume for-hire vehicle (HVFHV) trip file", columns))
    if "dispatching_base_num" in present or "dispatching_base_number" in present:
        raise IngestError("fhv_trip_file", _wrong_kind(
            "a for-hire vehicle (FHV) trip file", columns))
    legacy = {"pickup_longitude", "start_lon", "trip_pickup_datetime"}
    if present & legacy and not present & {"pulocationid", "pickup_location_id"}:
        raise IngestError("legacy_yellow_layout", (
            "This is a yellow trip file in the coordinate layout the TLC used until June "
            "2016: it locates trips by longitude and latitude, not by taxi zone id, and "
            "this pipeline loads the zone-based layout only. Found columns: "
            + _list(columns) + ". Use the TLC's reissued parquet files for those months, "
            "which carry PULocationID and DOLocationID."))

    sources: dict[str, str | None] = {}
    for canonical, aliases in ALIASES.items():
        sources[canonical] = next((by_norm[a] for a in aliases if a in by_norm), None)
    missing = [name for name in REQUIRED if sources[name] is None]
    if missing:
        raise IngestError("unrecognised_columns", (
            f"The file does not look like {_YELLOW_EXPECTED}: it lacks "
            f"{', '.join(missing)}. Found columns: {_list(columns)}."))
    used = set(sources.values())
    ignored = tuple(c for c in columns if c not in used and _norm(c) not in _NOISE)
    return ColumnMap(sources=sources, ignored=ignored)


def csv_types(mapping: ColumnMap) -> dict[str, pa.DataType]:
    """How to read each mapped CSV column before the cast to ``CANONICAL``:
    integer columns as float64 (TLC CSVs write "1.0" too), times as times."""
    types: dict[str, pa.DataType] = {}
    for field in CANONICAL:
        source = mapping.sources[field.name]
        if source is None:
            continue
        if pa.types.is_timestamp(field.type):
            types[source] = pa.timestamp("s")
        elif pa.types.is_string(field.type):
            types[source] = pa.string()
        else:
            types[source] = pa.float64()
    return types


def to_canonical(batch: pa.RecordBatch | pa.Table, mapping: ColumnMap) -> pa.Table:
    """Rename, cast and complete one batch so it has exactly ``CANONICAL``."""
    return canonical_with_invalid(batch, mapping)[0]


def canonical_with_invalid(batch: pa.RecordBatch | pa.Table,
                           mapping: ColumnMap) -> tuple[pa.Table, np.ndarray]:
    """``to_canonical``, plus which rows held a value their column cannot
    hold (a passenger count of 40,000, a rate code of 1.5). Those values
    become NULL here and the rows must be rejected, not loaded: one bad cell
    costs its row, not the file. A column of the wrong kind altogether (text
    where numbers belong) still refuses the file."""
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    invalid = np.zeros(table.num_rows, dtype=bool)
    arrays = []
    for field in CANONICAL:
        source = mapping.sources[field.name]
        if source is None:
            arrays.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(source)
        if pa.types.is_integer(field.type) and _is_number(column.type):
            column, bad = _out_of_range_to_null(column, field.type)
        elif pa.types.is_floating(field.type) and pa.types.is_floating(column.type):
            column, bad = _infinite_to_null(column)
        elif pa.types.is_timestamp(field.type) and pa.types.is_timestamp(column.type):
            column, bad = _beyond_microseconds_to_null(column)
        elif pa.types.is_string(field.type) and _is_text(column.type):
            column, bad = _unloadable_text_to_null(column)
        else:
            bad = None
        if bad is not None:
            invalid |= bad
        arrays.append(_cast(column, field, source))
    return pa.Table.from_arrays(arrays, schema=CANONICAL), invalid


#: store_and_fwd_flag is "Y" or "N"; anything this long is not a flag, and
#: would cost the binary encoder time in proportion to its length.
MAX_TEXT_LENGTH = 8


def _is_text(data_type: pa.DataType) -> bool:
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type)


def _nulled(column: pa.ChunkedArray, bad_values) -> tuple[pa.ChunkedArray, np.ndarray]:
    bad = pc.fill_null(bad_values, False).to_numpy(zero_copy_only=False)
    if bad.any():
        column = pc.if_else(pa.array(bad), pa.scalar(None, column.type), column)
    return column, bad


def _infinite_to_null(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    """NaN is how pandas writes a missing number: it becomes NULL. An
    infinite fare or distance is no amount at all: its row is rejected."""
    column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
    return _nulled(column, pc.is_inf(column))


def _beyond_microseconds_to_null(column: pa.ChunkedArray
                                 ) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Seconds or milliseconds too large for microseconds would wrap around
    into a plausible date in the cast; such values are refused instead."""
    unit = column.type.unit
    if unit in ("us", "ns"):
        return column, np.zeros(len(column), dtype=bool)
    limit = (2**63 - 1) // (1_000_000 if unit == "s" else 1_000)
    raw = column.cast(pa.int64())
    too_big = pc.or_(pc.greater(raw, limit), pc.less(raw, -limit))
    return _nulled(column, too_big)


def _unloadable_text_to_null(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Text Postgres cannot store (a NUL character) or that is far too long
    for its column."""
    bad = pc.or_(pc.greater(pc.binary_length(column), MAX_TEXT_LENGTH),
                 pc.match_substring(column, "\x00"))
    return _nulled(column, bad)


def _is_number(data_type: pa.DataType) -> bool:
    return pa.types.is_integer(data_type) or pa.types.is_floating(data_type)


def _out_of_range_to_null(column: pa.ChunkedArray,
                          target: pa.DataType) -> tuple[pa.ChunkedArray, np.ndarray]:
    info = np.iinfo(target.to_pandas_dtype())
    if pa.types.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), None, column)
    # Compared as doubles: any integer width (uint64 too) converts, and the
    # precision lost far beyond the target's range does not matter.
    as_double = column.cast(pa.float64(), safe=False)
    fits = pc.and_(pc.greater_equal(as_double, info.min), pc.less_equal(as_double, info.max))
    if pa.types.is_floating(column.type):
        fits = pc.and_(fits, pc.equal(column, pc.floor(column)))
    bad = pc.fill_null(pc.invert(fits), False).to_numpy(zero_copy_only=False)
    if bad.any():
        column = pc.if_else(pa.array(bad), None, column)
    return column, bad


def _cast(column: pa.ChunkedArray, field: pa.Field, source: str) -> pa.ChunkedArray:
    source_type = column.type
    if source_type == field.type:
        return column
    if pa.types.is_null(source_type):
        return pa.chunked_array([pa.nulls(len(column), field.type)])
    if pa.types.is_dictionary(source_type):
        column = column.cast(source_type.value_type)
        source_type = column.type
    try:
        if pa.types.is_timestamp(field.type):
            return _cast_timestamp(column, source)
        if pa.types.is_floating(source_type) and pa.types.is_integer(field.type):
            column = pc.if_else(pc.is_nan(column), None, column)
        if pa.types.is_string(field.type):
            return column.cast(pa.string())
        return column.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        sample = _bad_sample(column, field.type)
        raise IngestError("invalid_column_type", (
            f"Column '{source}' holds {source_type} values that cannot be read as "
            f"{_describe(field.type)}" + (f" (for example {sample!r})" if sample else "")
            + f": {_first_line(exc)}. Fix the column in the file and upload it again.")
        ) from None


def _cast_timestamp(column: pa.ChunkedArray, source: str) -> pa.ChunkedArray:
    source_type = column.type
    if pa.types.is_timestamp(source_type):
        if source_type.tz is not None:
            # TLC times are New York wall-clock times; a zone-aware column is
            # brought back to that clock, not to UTC's.
            column = column.cast(pa.timestamp(source_type.unit, tz=TLC_TIME_ZONE))
            column = pc.local_timestamp(column)
        # ns -> us drops sub-microsecond digits TLC never records.
        return column.cast(_TS, safe=False)
    if pa.types.is_date(source_type):
        return column.cast(_TS)
    if pa.types.is_string(source_type) or pa.types.is_large_string(source_type):
        return pc.strptime(column.cast(pa.string()), format="%Y-%m-%d %H:%M:%S", unit="us")
    raise pa.ArrowInvalid(f"{source_type} is not a date and time")


def _bad_sample(column: pa.ChunkedArray, target: pa.DataType) -> str | None:
    """One value that does not convert, to quote in the error message."""
    for chunk in column.chunks:
        for value in chunk.to_pylist()[:100_000]:
            if value is None:
                continue
            try:
                pa.array([value]).cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                return str(value)[:40]
    return None


def _describe(data_type: pa.DataType) -> str:
    if pa.types.is_integer(data_type):
        return "whole numbers within -32768..32767"
    if pa.types.is_floating(data_type):
        return "numbers"
    if pa.types.is_timestamp(data_type):
        return "dates and times"
    return str(data_type)


def _wrong_kind(found: str, columns: list[str]) -> str:
    return (f"This is {found}, not {_YELLOW_EXPECTED}. Found columns: {_list(columns)}. "
            "Only yellow taxi trip records load into yellow_taxi_trips.")


def _list(columns: list[str], limit: int = 12) -> str:
    shown = ", ".join(c.strip() for c in columns[:limit])
    return shown + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
