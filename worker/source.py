"""Open a downloaded trip file and read it in record batches.

Reads a local temporary file (the only I/O here). Each source knows its
column names before the first batch, so the file is recognised, and refused
if need be, before a single row is read. Parquet and the TLC CSV form (plain
or gzip) are read; which one is decided by the object's name, and the bytes
must agree with it.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from worker.errors import IngestError

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
CSV_SUFFIXES = (".csv", ".csv.gz")
#: Longest raw text of a malformed CSV line kept in the rejects file.
MAX_RAW_LINE = 2000


class MalformedRow:
    """A CSV line with the wrong number of fields (a line cut short, say)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text[:MAX_RAW_LINE]


def open_source(path: Path, name: str):
    if name.lower().endswith(CSV_SUFFIXES):
        return CsvSource(path)
    return ParquetSource(path)


class ParquetSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        sniff(path)
        try:
            # pre_buffer off: reading a row group's columns ahead costs about
            # 20 MB of memory and, from a local file, gains no speed.
            self._file = pq.ParquetFile(path, memory_map=False, buffer_size=1 << 20,
                                        pre_buffer=False)
        except (pa.ArrowException, OSError) as exc:
            raise corrupt(exc) from None
        self.columns = list(self._file.schema_arrow.names)
        self.num_rows = self._file.metadata.num_rows

    def iter_batches(self, columns: list[str], batch_size: int,
                     types: dict[str, pa.DataType] | None = None,  # noqa: ARG002
                     ) -> Iterator[pa.RecordBatch]:
        try:
            # One thread: decoding columns in parallel held ~40 MB more of a
            # row group at once and was no faster end to end, since COPY, not
            # reading, sets the pace.
            yield from self._file.iter_batches(batch_size=batch_size, columns=columns,
                                               use_threads=False)
        except (pa.ArrowException, OSError) as exc:
            raise corrupt(exc) from None

    def take_malformed(self) -> list[MalformedRow]:
        return []

    def close(self) -> None:
        self._file.close()


class CsvSource:
    """A TLC CSV file, streamed block by block with explicit column types.

    The header is read first. TLC's 2016 files have two more fields per row
    than header names (a trailing ",,"): the extra fields get names of their
    own and are ignored. A line with the wrong number of fields is not
    dropped silently: it is handed over as a ``MalformedRow`` and rejected.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.stat().st_size == 0:
            raise IngestError("empty_file", "The uploaded object is empty (0 bytes). "
                              "Upload the CSV file again; the transfer may have failed.")
        with path.open("rb") as handle:
            self._gzip = handle.read(2) == GZIP_MAGIC
        header, width = self._sniff()
        # A header and no data line: zero rows, however the file ends.
        self._empty = width == 0
        extra = [f"_extra_field_{i}" for i in range(1, max(width - len(header), 0) + 1)]
        self.columns = header
        self._names = header + extra
        self.num_rows = None
        self._malformed: list[MalformedRow] = []

    def _open_text(self):
        raw = gzip.open(self.path, "rb") if self._gzip else self.path.open("rb")
        return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")

    def _sniff(self) -> tuple[list[str], int]:
        try:
            with self._open_text() as text:
                rows = csv.reader(text)
                header = next(rows, None)
                width = 0
                for row in rows:
                    if row:
                        width = len(row)
                        break
        except (OSError, EOFError, csv.Error) as exc:
            raise IngestError("unreadable_csv", (
                f"The CSV file cannot be read ({exc}). If it is gzip-compressed, the archive "
                "may be damaged; download it again and re-upload it.")) from None
        if not header or not any(h.strip() for h in header):
            raise IngestError("unrecognised_columns", (
                "The CSV file has no header line. TLC CSV files start with the column "
                "names (VendorID,tpep_pickup_datetime,...)."))
        if b"\x00" in ",".join(header).encode():
            raise IngestError("not_csv", "The object named .csv holds binary data, not text.")
        return header, width

    def iter_batches(self, columns: list[str], batch_size: int,
                     types: dict[str, pa.DataType] | None = None) -> Iterator[pa.RecordBatch]:
        if self._empty:
            return

        def on_invalid(row) -> str:
            self._malformed.append(MalformedRow(row.text or ""))
            return "skip"

        convert = pacsv.ConvertOptions(
            column_types=types or {}, include_columns=columns,
            strings_can_be_null=True, quoted_strings_can_be_null=False,
            timestamp_parsers=[pacsv.ISO8601, "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M"])
        read = pacsv.ReadOptions(column_names=self._names, skip_rows=1,
                                 block_size=max(1 << 20, batch_size * 128))
        parse = pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=False)
        try:
            stream = pa.input_stream(self.path, compression="gzip" if self._gzip else None)
            reader = pacsv.open_csv(stream, read_options=read, parse_options=parse,
                                    convert_options=convert)
            for batch in reader:
                yield from _slices(batch, batch_size)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            message = str(exc).splitlines()[0][:240]
            raise IngestError("invalid_column_type", (
                f"A value in the CSV file cannot be read ({message}). Fix the file and upload "
                "it again.")) from None
        except (OSError, EOFError) as exc:
            raise IngestError("unreadable_csv", (
                f"The CSV file cannot be read to the end ({exc}). It may be truncated; "
                "upload it again.")) from None

    def take_malformed(self) -> list[MalformedRow]:
        taken, self._malformed = self._malformed, []
        return taken

    def close(self) -> None:
        """Nothing stays open between batches."""


def _slices(batch: pa.RecordBatch, size: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, size):
        yield batch.slice(start, size)


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
        text = ""
    if not text or not all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return f"the bytes {head[:8].hex(' ')}"
    first_line = text.splitlines()[0] if text.splitlines() else text
    return f"text ({first_line[:40]!r})"
