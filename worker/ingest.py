"""Ingest one S3 object: the worker's whole job for one task.

I/O: S3 (head, download, rejects upload), a temporary directory, Postgres.

Steps, each logged with the job id and key:

1. Take the object's load lock (a Postgres session advisory lock); if another
   worker holds it, ``JobBusy`` makes the task try again later.
2. Skip an object version that is already loaded (same etag): a duplicate
   event or a redelivered task loads nothing twice.
3. Mark the job running, download the object to a temporary file, recognise
   its columns (or refuse it), decide the file's month.
4. In one transaction: delete the job's earlier rows, stream the cleaned
   batches into ``COPY ... FROM STDIN`` while a second thread reads, cleans and
   encodes the next ones, upload the rejected rows, record the counts and
   ``succeeded``, commit. A load is all or nothing.
5. A terminal error rolls back and fails the job with its code, in a
   transaction that also removes any rows of an earlier version: a failed job
   has no rows. Anything else is transient and goes back to the task for a
   retry.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import re
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pg8000.dbapi
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from infra import jobs
from infra.settings import Settings
from infra.zones import zone_ids
from worker.cleaning import (
    MALFORMED,
    RAW_COLUMN,
    REASON_COLUMN,
    ROW_COLUMN,
    Cleaner,
    RuleContext,
)
from worker.encode import binary_stream, copy_statement, encode_binary
from worker.errors import IngestError, JobBusy, TransientError
from worker.schema_map import (
    CANONICAL,
    ColumnMap,
    canonical_with_invalid,
    csv_types,
    recognise,
    to_canonical,
)
from worker.source import MalformedRow, open_source

logger = logging.getLogger(__name__)

_LOCK_NAMESPACE = 0x7A78
_MONTH_IN_NAME = re.compile(r"yellow_tripdata_(\d{4})-(\d{2})", re.IGNORECASE)
REJECTS_SCHEMA = pa.schema([*CANONICAL, pa.field(REASON_COLUMN, pa.string()),
                            pa.field(ROW_COLUMN, pa.int64()), pa.field(RAW_COLUMN, pa.string())])


@dataclass(frozen=True)
class IngestRequest:
    job_id: uuid.UUID
    bucket: str
    key: str
    task_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: str  # "succeeded", "failed" or "skipped"
    rows_in: int = 0
    rows_loaded: int = 0
    error_code: str | None = None


@dataclass(frozen=True)
class ObjectInfo:
    etag: str
    size: int
    last_modified: dt.datetime | None


class JobLog(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return f"job={self.extra['job']} key={self.extra['key']} {msg}", kwargs


class ObjectStore:
    """The S3 calls the worker makes, behind one small class."""

    def __init__(self, s3, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def head(self, key: str) -> ObjectInfo:
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise IngestError("object_missing", (
                    f"s3://{self.bucket}/{key} does not exist: it was deleted, never "
                    "uploaded, or lost with a LocalStack restart (LocalStack keeps no "
                    "objects across restarts). Upload the file again.")) from None
            raise TransientError(f"S3 HEAD failed: {exc}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"S3 unreachable: {exc}") from exc
        return ObjectInfo(etag=head["ETag"].strip('"'), size=int(head["ContentLength"]),
                          last_modified=head.get("LastModified"))

    def download(self, key: str, path: Path) -> None:
        """Stream the object to ``path`` (ranged GETs, never all in memory).
        If the object is replaced meanwhile, its next event loads it again:
        the job remembers the etag it loaded, not the one it found."""
        try:
            self._s3.download_file(self.bucket, key, str(path))
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"S3 download failed: {exc}") from exc

    def upload(self, path: Path, key: str) -> None:
        try:
            self._s3.upload_file(str(path), self.bucket, key)
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"S3 upload of rejects failed: {exc}") from exc


def month_from_name(name: str) -> tuple[int, int] | None:
    match = _MONTH_IN_NAME.search(name)
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    return (year, month) if 1 <= month <= 12 else None


def dominant_month(source, mapping: ColumnMap, batch_size: int) -> tuple[int, int] | None:
    """The month most pickups fall in (one pass over the pickup column)."""
    pickup = mapping.sources["pickup_at"]
    only_pickup = ColumnMap(
        sources={name: (pickup if name == "pickup_at" else None) for name in mapping.sources},
        ignored=())
    counts: Counter[tuple[int, int]] = Counter()
    types = {pickup: csv_types(mapping)[pickup]}
    for batch in source.iter_batches([pickup], batch_size, types):
        column = to_canonical(batch, only_pickup).column("pickup_at")
        ym = pc.add(pc.multiply(pc.year(column), 100), pc.month(column))
        for item in pc.value_counts(ym.combine_chunks()).to_pylist():
            if item["values"] is not None:
                counts[divmod(item["values"], 100)] += item["counts"]
    return counts.most_common(1)[0][0] if counts else None


class Ingestor:
    def __init__(self, settings: Settings, engine: Engine, store: ObjectStore,
                 *, clock=lambda: dt.datetime.now(dt.UTC)) -> None:
        self._settings = settings
        self._engine = engine
        self._store = store
        self._clock = clock

    def run(self, request: IngestRequest) -> Outcome:
        log = JobLog(logger, {"job": request.job_id, "key": request.key})
        with self._engine.connect() as lock_conn:
            if not self._try_lock(lock_conn, request.job_id):
                raise JobBusy(f"job {request.job_id} is being loaded by another worker")
            try:
                return self._run_locked(request, log)
            finally:
                self._unlock(lock_conn, request.job_id)

    def _try_lock(self, conn: Connection, job_id: uuid.UUID) -> bool:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:ns, hashtext(:job))"),
                           {"ns": _LOCK_NAMESPACE, "job": str(job_id)}).scalar_one()
        conn.commit()
        return bool(got)

    def _unlock(self, conn: Connection, job_id: uuid.UUID) -> None:
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:ns, hashtext(:job))"),
                         {"ns": _LOCK_NAMESPACE, "job": str(job_id)})
            conn.commit()
        except DBAPIError:
            # The connection died, and the lock died with it.
            conn.invalidate()

    def _run_locked(self, request: IngestRequest, log: JobLog) -> Outcome:
        with self._engine.connect() as conn:
            job = jobs.get(conn, request.job_id)
        if job is None:
            log.warning("no such job in ingest_jobs; dropping the task")
            return Outcome(status="skipped")
        try:
            obj = self._store.head(request.key)
        except IngestError as exc:
            log.warning("failed: %s", exc)
            self._fail(job.id, exc.code, exc.message)
            return Outcome(status="failed", error_code=exc.code)
        etag = obj.etag
        if job.status == "succeeded" and job.loaded_etag == etag:
            log.info("etag %s is already loaded; nothing to do", etag)
            with self._engine.begin() as conn:
                jobs.mark_duplicate_skipped(conn, job.id)
            return Outcome(status="skipped", rows_in=job.rows_in or 0,
                           rows_loaded=job.rows_loaded or 0)
        with self._engine.begin() as conn:
            jobs.mark_running(conn, job.id, task_id=request.task_id)
        log.info("running: %d bytes, etag %s", obj.size, etag)
        try:
            with tempfile.TemporaryDirectory(prefix="taxi-ingest-") as tmp:
                return self._load(job, request, obj, Path(tmp), log)
        except IngestError as exc:
            log.warning("failed: %s", exc)
            self._fail(job.id, exc.code, exc.message)
            return Outcome(status="failed", error_code=exc.code)

    def _load(self, job: jobs.Job, request: IngestRequest, obj: ObjectInfo, tmp: Path,
              log: JobLog) -> Outcome:
        settings = self._settings
        etag = obj.etag
        path = tmp / "object"
        self._store.download(request.key, path)
        source = open_source(path, request.key)
        mapping = recognise(source.columns)
        if mapping.ignored:
            log.info("ignoring columns the canonical schema does not have: %s",
                     ", ".join(mapping.ignored))
        month = month_from_name(job.filename) or month_from_name(request.key)
        if month is None and "pickup_outside_file_month" in settings.enabled_rules:
            month = dominant_month(source, mapping, settings.ingest_batch_rows)
        zones = zone_ids(self._engine) if "unknown_zone" in settings.enabled_rules \
            else frozenset()
        # Nothing in the file can have happened after it was uploaded.
        uploaded = obj.last_modified or self._clock()
        ctx = RuleContext(enabled=settings.enabled_rules, month=month, zone_ids=zones,
                          not_after=uploaded.astimezone(dt.UTC).replace(tzinfo=None))
        cleaner = Cleaner(ctx)
        rejects_path = tmp / "rejects.parquet"
        pipeline = _Pipeline(source, mapping, cleaner, job.id, rejects_path,
                             settings.ingest_batch_rows)
        rejects_key = f"{settings.rejects_prefix}{job.id}/rejects.parquet"

        with self._engine.connect() as conn:
            transaction = conn.begin()
            try:
                conn.execute(text("DELETE FROM yellow_taxi_trips WHERE job_id = :j"),
                             {"j": job.id})
                _copy(conn, pipeline.chunks())
                pipeline.raise_if_failed()
                rejected = sum(cleaner.counts.values())
                if rejected:
                    self._store.upload(rejects_path, rejects_key)
                summary = {
                    "schema_kind": "yellow",
                    "file_month": f"{month[0]:04d}-{month[1]:02d}" if month else None,
                    "rows_in": cleaner.rows_in,
                    "rows_loaded": cleaner.rows_kept,
                    "rows_rejected": rejected,
                    "rejected_by_reason": cleaner.rejected_by_reason,
                    "rules": list(cleaner.rules),
                    "rejects_key": rejects_key if rejected else None,
                    "size_bytes": path.stat().st_size,
                    "etag": etag,
                }
                jobs.mark_succeeded(conn, job.id, etag=etag, summary=summary)
                transaction.commit()
            except IngestError:
                transaction.rollback()
                raise
            except BaseException:
                # A COPY cut short (a signal, a time limit, a lost server) leaves
                # the connection mid-protocol, where even a ROLLBACK fails and
                # would hide the real error: drop the connection instead, and
                # Postgres rolls the load back.
                conn.invalidate()
                raise
            finally:
                pipeline.cancel()
                source.close()
        log.info("succeeded: %d rows in, %d loaded, rejected %s", cleaner.rows_in,
                 cleaner.rows_kept, cleaner.rejected_by_reason)
        return Outcome(status="succeeded", rows_in=cleaner.rows_in,
                       rows_loaded=cleaner.rows_kept)

    def _fail(self, job_id: uuid.UUID, code: str, message: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(text("DELETE FROM yellow_taxi_trips WHERE job_id = :j"),
                         {"j": job_id})
            jobs.mark_failed(conn, job_id, code=code, message=message)

    def fail(self, job_id: uuid.UUID, code: str, message: str) -> None:
        """Fail a job from outside a run (retries exhausted, time limit)."""
        self._fail(job_id, code, message)


def _copy(conn: Connection, chunks: Iterator[bytes]) -> None:
    """COPY through the raw pg8000 cursor, whose errors SQLAlchemy does not
    wrap: a value Postgres refuses is the file's fault, anything else (a
    lost connection, a restart) is worth a retry."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(copy_statement(binary=True), stream=binary_stream(chunks))
    except pg8000.dbapi.DatabaseError as exc:
        state, message = _pg_error(exc)
        if state.startswith(("22", "23")):
            raise IngestError("invalid_value", (
                f"Postgres refused a value from the file ({message}); nothing was loaded. "
                "Fix the file and upload it again.")) from None
        raise TransientError(f"COPY failed ({state or 'no SQLSTATE'}: {message})") from exc
    except pg8000.dbapi.InterfaceError as exc:
        raise TransientError(f"lost the connection to Postgres during COPY ({exc})") from exc
    finally:
        try:
            cursor.close()
        except pg8000.dbapi.Error:
            pass


def _pg_error(exc: BaseException) -> tuple[str, str]:
    details = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    message = str(details.get("M", exc)).splitlines()[0][:300]
    return str(details.get("C", "")), message


class _Pipeline:
    """Reads, cleans and encodes batches on a thread of its own, so the next
    batch is ready while Postgres parses the current one. Arrow releases the
    GIL for the heavy parts, so two cores are both busy."""

    _END = object()

    def __init__(self, source, mapping: ColumnMap, cleaner: Cleaner,
                 job_id: uuid.UUID, rejects_path: Path, batch_size: int) -> None:
        self._source = source
        self._mapping = mapping
        self._cleaner = cleaner
        self._job_id = job_id
        self._rejects_path = rejects_path
        self._batch_size = batch_size
        # Pieces are about 1 MB (encode.PIECE_BYTES): 8 keep COPY fed, no more.
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._cancelled = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._produce, name="ingest-reader",
                                        daemon=True)

    def chunks(self) -> Iterator[bytes]:
        """What COPY reads. It ends quietly when the reader fails, so the COPY
        finishes cleanly; ``raise_if_failed`` then rolls the load back."""
        self._thread.start()
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            yield item

    def raise_if_failed(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        self._cancelled.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _put(self, item) -> bool:
        while not self._cancelled.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _write_rejects(self, writer: pq.ParquetWriter | None,
                       rows: pa.Table | None) -> pq.ParquetWriter | None:
        if rows is None or rows.num_rows == 0:
            return writer
        if writer is None:
            writer = pq.ParquetWriter(self._rejects_path, REJECTS_SCHEMA, compression="zstd")
        writer.write_table(rows.cast(REJECTS_SCHEMA))
        return writer

    def _malformed(self) -> pa.Table | None:
        rows: list[MalformedRow] = self._source.take_malformed()
        if not rows:
            return None
        self._cleaner.record_malformed(len(rows))
        table = REJECTS_SCHEMA.empty_table().to_pydict()
        empty = [None] * len(rows)
        for name in table:
            table[name] = empty
        table[REASON_COLUMN] = [MALFORMED] * len(rows)
        table[RAW_COLUMN] = [row.text for row in rows]
        return pa.Table.from_pydict(table, schema=REJECTS_SCHEMA)

    def _produce(self) -> None:
        writer: pq.ParquetWriter | None = None
        try:
            columns = self._mapping.source_columns
            types = csv_types(self._mapping)
            for batch in self._source.iter_batches(columns, self._batch_size, types):
                table, invalid = canonical_with_invalid(batch, self._mapping)
                result = self._cleaner.clean(table, invalid)
                writer = self._write_rejects(writer, _with_raw(result.rejected))
                writer = self._write_rejects(writer, self._malformed())
                for piece in encode_binary(result.kept, self._job_id):
                    if not self._put(piece):
                        return
            writer = self._write_rejects(writer, self._malformed())
        except BaseException as exc:  # noqa: BLE001 - handed to the COPY side, raised there
            self._error = exc
        finally:
            if writer is not None:
                writer.close()
            self._put(self._END)


def _with_raw(rejected: pa.Table) -> pa.Table:
    return rejected.append_column(RAW_COLUMN, pa.nulls(rejected.num_rows, pa.string()))


def is_transient_db_error(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or _sqlstate(exc).startswith(("08", "57", "40"))
    return isinstance(exc, (ConnectionError, TimeoutError))


def _sqlstate(exc: DBAPIError) -> str:
    return _pg_error(exc.orig)[0] if exc.orig is not None else ""
