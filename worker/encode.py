"""Turn canonical batches into the bytes ``COPY ... FROM STDIN`` reads.
Pure: no I/O.

Arrow's C++ CSV writer does the formatting; Python never touches a row.
"""

from __future__ import annotations

import io
import uuid

import pyarrow as pa
import pyarrow.csv as pacsv

from worker.schema_map import CANONICAL

COPY_COLUMNS = (*CANONICAL.names, "job_id")
_OPTIONS = pacsv.WriteOptions(include_header=False, batch_size=65_536)


def copy_statement(table: str = "yellow_taxi_trips") -> str:
    return f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"


def encode_csv(kept: pa.Table, job_id: uuid.UUID) -> bytes:
    """CSV rows in ``COPY_COLUMNS`` order. Empty unquoted fields are NULL;
    Arrow quotes every string, so an empty string stays an empty string."""
    if kept.num_rows == 0:
        return b""
    with_job = kept.append_column("job_id", pa.repeat(pa.scalar(str(job_id)), kept.num_rows))
    sink = io.BytesIO()
    pacsv.write_csv(with_job, sink, _OPTIONS)
    return sink.getvalue()
