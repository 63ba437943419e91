"""Open a downloaded trip file and read it in record batches.

Reads a local temporary file (the only I/O here). Each source knows its
column names before the first batch, so the file is recognised, and refused
if need be, before a single row is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from worker.errors import IngestError

PARQUET_MAGIC = b"PAR1"


class ParquetSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        sniff(path)
        try:
            self._file = pq.ParquetFile(path, memory_map=False, buffer_size=1 << 20)
        except (pa.ArrowException, OSError) as exc:
            raise corrupt(exc) from None
        self.columns = list(self._file.schema_arrow.names)
        self.num_rows = self._file.metadata.num_rows

    def iter_batches(self, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._file.iter_batches(batch_size=batch_size, columns=columns,
                                               use_threads=True)
        except (pa.ArrowException, OSError) as exc:
            raise corrupt(exc) from None

    def close(self) -> None:
        self._file.close()


def sniff(path: Path) -> None:
    """Refuse, with a message that says what the bytes are, anything that is
    not a complete parquet file."""
    size = path.stat().st_size
    if size == 0:
        raise IngestError("empty_file", "The uploaded object is empty (0 bytes). "
                          "Upload the parquet file again; the transfer may have failed.")
    with path.open("rb") as handle:
        head = handle.read(4)
        handle.seek(max(size - 4, 0))
        tail = handle.read(4)
    if head != PARQUET_MAGIC:
        raise IngestError("not_parquet", (
            f"The object is not a parquet file: it starts with {_describe_bytes(path)} "
            f"instead of the parquet marker 'PAR1'. Upload a TLC trip file in parquet "
            "form (yellow_tripdata_YYYY-MM.parquet)."))
    if size < 12 or tail != PARQUET_MAGIC:
        raise IngestError("corrupt_parquet", (
            f"The parquet file is incomplete: it has {size} bytes and does not end with "
            "the parquet footer. It was probably cut short in transfer; upload it again."))


def corrupt(exc: BaseException) -> IngestError:
    detail = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
    return IngestError("corrupt_parquet", (
        f"The parquet file cannot be read ({detail}). It may be damaged or written by "
        "an incompatible tool; download it again from the source and re-upload it."))


def _describe_bytes(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(64)
    if head.startswith(b"\x1f\x8b"):
        return "a gzip header"
    if head.startswith(b"PK\x03\x04"):
        return "a zip header"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"the bytes {head[:8].hex(' ')}"
    first_line = text.splitlines()[0] if text.splitlines() else text
    return f"text ({first_line[:40]!r})"
