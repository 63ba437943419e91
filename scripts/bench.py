"""The benchmark: the worker's ingest against psql's own COPY and against the
old pandas method, side by side, in one run, on the machine's Postgres.

    python -m scripts.bench [--rows N] [--big-rows N] [--old-rows N] [--uploads N]
                            [--repeat N]

What it measures (issue 5):

- ingest: ``worker.ingest.Ingestor`` on a month-sized object in a private
  host-mode LocalStack: download, read, validate, clean, COPY, commit,
  rejects uploaded. It runs in a child process, which reports its wall time
  and its peak RSS (``VmHWM``).
- limit: ``psql \\copy`` of exactly the rows the ingest kept (a CSV exported
  beforehand, not timed) into an empty table with the same definition and
  indexes.
- old: the replaced system: pandas ``read_parquet``, its cleaning rules and
  ``to_sql(method="multi", chunksize=10000)`` over psycopg2, on a slice.
- the same ingest on a bigger file, for its peak RSS only.
- end-to-end latency on a private full stack (``tests.stack.Stack``): from a
  presigned PUT's answer to ``succeeded``, and to the task's ``started_at``.

Rows per second count rows loaded (kept) everywhere, so the three loads are
compared on the same rows. The month files are tiled from a real TLC sample
(times shifted inside January 2025, bad rows kept) and cached in
``bench-data/``. A fresh database is created for the run and dropped after.

I/O: all of it (files, Postgres, LocalStack, RabbitMQ, child processes).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

logger = logging.getLogger("scripts.bench")

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "bench-data"
SAMPLE = ROOT / "tests" / "fixtures" / "2025-01_head10000_yellow_tripdata_sample.parquet"
MONTH_NAME = "yellow_tripdata_2025-01.parquet"
MONTH_START = dt.datetime(2025, 1, 1)
MONTH_SECONDS = 31 * 24 * 3600
ROW_GROUP_ROWS = 1 << 20
ADMIN_URL = os.environ.get("BENCH_ADMIN_DATABASE_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
BUCKET = "taxi-bench"
PSQL = os.environ.get("PSQL", "psql")


# -- the month files -------------------------------------------------------

def month_file(rows: int) -> Path:
    """A ``rows``-row January 2025 file tiled from the real sample, built once
    and cached under ``bench-data/<rows>/``."""
    path = DATA_DIR / str(rows) / MONTH_NAME
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("building %s (%d rows)", path.relative_to(ROOT), rows)
    partial = path.with_suffix(".partial")
    write_tiled(pq.read_table(SAMPLE), rows, partial)
    partial.replace(path)
    return path


def write_tiled(sample: pa.Table, rows: int, path: Path) -> None:
    """Repeat ``sample`` until ``rows``, each copy's January pickups moved by
    its own offset and wrapped inside the month (dropoffs move with them, so
    durations stay real). Rows outside January stay as they are, and so do
    every other value: the copy keeps the sample's nulls, zero distances,
    odd passenger counts and duplicates, and the month rule still rejects
    what it rejected in the sample."""
    tiles = -(-rows // sample.num_rows)
    pickup_col, dropoff_col = "tpep_pickup_datetime", "tpep_dropoff_datetime"
    unit = sample.schema.field(pickup_col).type.unit
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    pickup = sample.column(pickup_col).cast(pa.int64()).to_numpy(zero_copy_only=False)
    dropoff = sample.column(dropoff_col).cast(pa.int64())
    start = int(np.datetime64(MONTH_START, unit).astype(np.int64))
    span = MONTH_SECONDS * per_second
    in_month = (pickup >= start) & (pickup < start + span)
    writer = pq.ParquetWriter(path, sample.schema.remove_metadata(), compression="snappy")
    pending: list[pa.Table] = []
    written = pending_rows = 0
    try:
        for tile in range(tiles):
            offset = tile * MONTH_SECONDS // tiles * per_second
            moved = np.where(in_month, start + (pickup - start + offset) % span, pickup)
            shift = pa.array(moved - pickup)
            table = sample.set_column(
                sample.schema.get_field_index(pickup_col), pickup_col,
                pa.array(moved).cast(sample.schema.field(pickup_col).type))
            table = table.set_column(
                table.schema.get_field_index(dropoff_col), dropoff_col,
                pc.add(dropoff, shift).cast(sample.schema.field(dropoff_col).type))
            take = min(table.num_rows, rows - written - pending_rows)
            pending.append(table.slice(0, take))
            pending_rows += take
            if pending_rows >= ROW_GROUP_ROWS or tile == tiles - 1:
                writer.write_table(pa.concat_tables(pending).replace_schema_metadata(None),
                                   row_group_size=ROW_GROUP_ROWS)
                written += pending_rows
                pending, pending_rows = [], 0
    finally:
        writer.close()


def head_file(source: Path, rows: int) -> Path:
    """The first ``rows`` rows of ``source``, for the old method."""
    path = source.parent / f"head{rows}_{MONTH_NAME}"
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    table = pq.ParquetFile(source).iter_batches(batch_size=rows)
    pq.write_table(pa.Table.from_batches([next(table)]), path, compression="snappy")
    return path


# -- the run's private services ---------------------------------------------

@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, migrated database for this run, dropped afterwards."""
    from infra.migrate import upgrade
    from infra.zones import ensure_zones

    name = f"taxi_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg8000_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_engine(pg8000_url(url))
        upgrade(engine)
        ensure_zones(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def pg8000_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+pg8000://", 1)


@contextlib.contextmanager
def private_localstack(workdir: Path) -> Iterator[str]:
    """LocalStack on a free port with fresh state, provisioned; yields its URL."""
    from infra.provision import Resources, provision
    from scripts import localstack_host
    from tests.stack import free_port

    port = free_port()
    process = localstack_host.start(port, workdir / "localstack", hooks=False,
                                    log_path=workdir / "localstack.log")
    endpoint = f"http://127.0.0.1:{port}"
    try:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        provision(Resources(bucket=BUCKET, raw_prefix="raw/", queue_name="taxi-bench-events",
                            dlq_name="taxi-bench-events-dlq", max_receive_count=5,
                            visibility_timeout=60, region="us-east-1",
                            endpoint_url=endpoint))
        yield endpoint
    finally:
        localstack_host.stop(process.pid)


# -- measurements -------------------------------------------------------------

@dataclass
class Result:
    name: str
    rows: int
    seconds: float
    rss_mb: float | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def worker_env(database_url: str, endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url,
        "AWS_ENDPOINT_URL": endpoint,
        "S3_PUBLIC_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "S3_BUCKET": BUCKET,
        "PYTHONPATH": str(ROOT),
    })
    return env


def measure_ingest(path: Path, database_url: str, endpoint: str, name: str) -> tuple[
        Result, uuid.UUID]:
    """Upload ``path`` (not timed), then ingest it in a child process."""
    import boto3
    from botocore.config import Config

    from infra import jobs

    job_id = uuid.uuid4()
    key = f"raw/{job_id}/{path.name}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    s3.upload_file(str(path), BUCKET, key)
    engine = create_engine(pg8000_url(database_url))
    with engine.begin() as conn:
        jobs.create(conn, job_id=job_id, bucket=BUCKET, key=key, filename=path.name,
                    declared_size=path.stat().st_size, status="queued")
    engine.dispose()
    command = [sys.executable, "-m", "scripts.bench", "--child-ingest", str(job_id), key]
    done = subprocess.run(command, env=worker_env(database_url, endpoint), cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the ingest child failed ({done.returncode}):\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["status"] != "succeeded":
        raise RuntimeError(f"the ingest did not succeed: {report}")
    note = f"{report['rows_in']:,} rows in, {report['rows_in'] - report['rows_loaded']:,} " \
           "rejected"
    return Result(name, report["rows_loaded"], report["seconds"], report["rss_mb"],
                  note), job_id


def child_ingest(job_id: str, key: str) -> int:
    """The worker's code path for one object, as a Celery task runs it."""
    from infra.aws import s3_client
    from infra.db import get_engine
    from infra.settings import get_settings
    from worker.ingest import Ingestor, IngestRequest, ObjectStore

    settings = get_settings()
    ingestor = Ingestor(settings, get_engine(settings),
                        ObjectStore(s3_client(settings), settings.s3_bucket))
    started = time.perf_counter()
    outcome = ingestor.run(IngestRequest(job_id=uuid.UUID(job_id), bucket=settings.s3_bucket,
                                         key=key))
    seconds = time.perf_counter() - started
    print(json.dumps({"status": outcome.status, "rows_in": outcome.rows_in,
                      "rows_loaded": outcome.rows_loaded, "seconds": seconds,
                      "rss_mb": peak_rss_mb(), "error_code": outcome.error_code}))
    return 0


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def psql(database_url: str, command: str) -> None:
    url = make_url(database_url)
    args = [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", url.host or "127.0.0.1",
            "-p", str(url.port or 5432), "-U", url.username or "postgres",
            "-d", url.database, "-c", command]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)


def export_kept(database_url: str, job_id: uuid.UUID, csv_path: Path) -> None:
    """The rows the ingest kept, as CSV for the limit (not timed)."""
    from worker.encode import COPY_COLUMNS

    psql(database_url, f"\\copy (SELECT {', '.join(COPY_COLUMNS)} FROM yellow_taxi_trips "
                       f"WHERE job_id = '{job_id}') TO '{csv_path}' WITH (FORMAT csv)")


def measure_limit(database_url: str, csv_path: Path) -> Result:
    """psql's own ``\\copy`` of the rows the ingest kept, into an empty copy
    of the table with the same definition and indexes."""
    from worker.encode import COPY_COLUMNS

    with engine_for(database_url) as engine, engine.begin() as conn:
        conn.execute(text("CREATE TABLE copy_limit (LIKE yellow_taxi_trips INCLUDING ALL)"))
    psql(database_url, "CHECKPOINT")
    started = time.perf_counter()
    psql(database_url, f"\\copy copy_limit ({', '.join(COPY_COLUMNS)}) FROM '{csv_path}' "
                       "WITH (FORMAT csv)")
    seconds = time.perf_counter() - started
    with engine_for(database_url) as engine, engine.begin() as conn:
        rows = conn.execute(text("SELECT count(*) FROM copy_limit")).scalar_one()
        conn.execute(text("DROP TABLE copy_limit"))
    return Result("limit: psql \\copy (CSV)", rows, seconds, note="same rows, same indexes")


def truncate_trips(database_url: str) -> None:
    with engine_for(database_url) as engine, engine.begin() as conn:
        conn.execute(text("TRUNCATE yellow_taxi_trips"))


def median_of(results: list[Result]) -> Result:
    """The run with the median rate; the peak RSS is the highest seen."""
    ordered = sorted(results, key=lambda r: r.rate)
    middle = ordered[(len(ordered) - 1) // 2]
    peaks = [r.rss_mb for r in results if r.rss_mb is not None]
    note = middle.note + (f"; median of {len(results)} runs" if len(results) > 1 else "")
    return Result(middle.name, middle.rows, middle.seconds,
                  max(peaks) if peaks else None, note)


#: The old system's required fields, by their names in TLC files.
OLD_REQUIRED = ("tpep_pickup_datetime", "tpep_dropoff_datetime", "PULocationID",
                "DOLocationID", "passenger_count", "trip_distance", "total_amount")


def measure_old(path: Path, database_url: str) -> Result:
    """The replaced method, as it was: everything in pandas, ``to_sql``."""
    import pandas as pd

    from worker.schema_map import recognise

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE old_trips (LIKE yellow_taxi_trips INCLUDING ALL)"))
    started = time.perf_counter()
    df = pd.read_parquet(path)
    rows_in = len(df)
    df = df.dropna(subset=list(OLD_REQUIRED))
    df = df[(df["trip_distance"] > 0) & (df["total_amount"] >= 0)
            & df["passenger_count"].between(1, 8)
            & (df["tpep_dropoff_datetime"] > df["tpep_pickup_datetime"])]
    df = df.drop_duplicates(subset=["tpep_pickup_datetime", "PULocationID", "DOLocationID"])
    mapping = recognise(list(df.columns))
    df = df.rename(columns={src: name for name, src in mapping.sources.items() if src})
    df["job_id"] = str(uuid.uuid4())
    df.to_sql("old_trips", engine, if_exists="append", index=False, method="multi",
              chunksize=10_000)
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT count(*) FROM old_trips")).scalar_one()
        conn.execute(text("DROP TABLE old_trips"))
    engine.dispose()
    return Result("old: pandas + to_sql (psycopg2)", rows, seconds,
                  note=f"{rows_in:,} rows in, {rows_in - rows:,} rejected")


@dataclass
class Latency:
    done: list[float]
    start: list[float]


def measure_e2e(database_url: str, uploads: int, workdir: Path) -> Latency:
    """Uploads of the 10,000-row sample through presigned PUTs, one at a
    time, on a private full stack (LocalStack, API, bridge, worker)."""
    import requests

    from tests.stack import Stack

    engine = create_engine(pg8000_url(database_url))
    stack = Stack(workdir=workdir / "stack", database_url=database_url, engine=engine)
    stack.workdir.mkdir(parents=True, exist_ok=True)
    data = SAMPLE.read_bytes()
    done: list[float] = []
    start: list[float] = []
    try:
        stack.start()
        for _ in range(uploads):
            response = stack.create_upload(SAMPLE.name, len(data))
            response.raise_for_status()
            session = response.json()
            put = requests.put(session["upload"]["url"], data=data,
                               headers=session["upload"]["headers"], timeout=60)
            put_answered = time.time()
            put.raise_for_status()
            status, started_at = wait_finished(engine, session["job_id"])
            finished = time.time()
            if status != "succeeded":
                raise RuntimeError(f"job {session['job_id']} {status}:\n{stack.logs()}")
            done.append(finished - put_answered)
            start.append(started_at.timestamp() - put_answered)
    finally:
        stack.stop()
        engine.dispose()
    return Latency(done=done, start=start)


def wait_finished(engine: Engine, job_id: str, timeout: float = 120.0,
                  interval: float = 0.01) -> tuple[str, dt.datetime]:
    """Poll the job's row (cheaper and finer than the API) until it is final."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            status, started_at = conn.execute(text(
                "SELECT status, started_at FROM ingest_jobs WHERE id = :j"),
                {"j": job_id}).one()
            conn.rollback()
            if status in ("succeeded", "failed"):
                return status, started_at
            time.sleep(interval)
    raise TimeoutError(f"job {job_id} not finished after {timeout:.0f} s")


# -- the report -----------------------------------------------------------------

def table(results: list[Result], latency: Latency | None) -> str:
    lines = [f"{'measure':<34} {'rows':>12} {'seconds':>9} {'rows/s':>11} {'peak RSS':>9}  note",
             "-" * 100]
    for r in results:
        rss = f"{r.rss_mb:.0f} MB" if r.rss_mb is not None else ""
        lines.append(f"{r.name:<34} {r.rows:>12,} {r.seconds:>9.2f} {r.rate:>11,.0f} "
                     f"{rss:>9}  {r.note}")
    if latency is not None:
        for label, values in (("e2e: PUT answered -> succeeded", latency.done),
                              ("e2e: PUT answered -> started_at", latency.start)):
            lines.append(f"{label:<34} {len(values):>12} uploads: median "
                         f"{statistics.median(values):.3f} s, worst {max(values):.3f} s")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    month = month_file(args.rows)
    big = month_file(args.big_rows)
    old_slice = head_file(month, min(args.old_rows, args.rows))
    with tempfile.TemporaryDirectory(prefix="taxi-bench-") as tmp, \
            fresh_database() as database_url:
        workdir = Path(tmp)
        csv_path = workdir / "kept.csv"
        ingests: list[Result] = []
        limits: list[Result] = []
        with private_localstack(workdir) as endpoint:
            # Ingest and limit take turns, each after a CHECKPOINT, so that a
            # checkpoint or a busy neighbour does not land on one side only.
            for turn in range(args.repeat):
                logger.info("turn %d of %d: ingest of %d rows", turn + 1, args.repeat,
                            args.rows)
                psql(database_url, "CHECKPOINT")
                result, job_id = measure_ingest(month, database_url, endpoint,
                                                "ingest (worker code path)")
                ingests.append(result)
                if not csv_path.exists():
                    export_kept(database_url, job_id, csv_path)
                truncate_trips(database_url)
                logger.info("turn %d of %d: psql \\copy of the same rows", turn + 1,
                            args.repeat)
                limits.append(measure_limit(database_url, csv_path))
            csv_path.unlink()
            logger.info("old method on %d rows", old_slice_rows(old_slice))
            old = measure_old(old_slice, database_url)
            logger.info("ingest of %d rows, for peak RSS", args.big_rows)
            big_ingest, _ = measure_ingest(big, database_url, endpoint,
                                           "ingest, big file (RSS only)")
            truncate_trips(database_url)
        logger.info("end-to-end latency, %d uploads", args.uploads)
        latency = measure_e2e(database_url, args.uploads, workdir)
    ingest, limit = median_of(ingests), median_of(limits)
    print(table([ingest, limit, old, big_ingest], latency))
    print(f"ratio_vs_copy={ingest.rate / limit.rate:.3f} "
          f"ratio_vs_old={ingest.rate / old.rate:.1f} "
          f"rss_mb_3m={ingest.rss_mb:.0f} rss_mb_12m={big_ingest.rss_mb:.0f} "
          f"e2e_p50_s={statistics.median(latency.done):.3f} "
          f"start_p50_s={statistics.median(latency.start):.3f}")
    return 0


def old_slice_rows(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


@contextlib.contextmanager
def engine_for(database_url: str) -> Iterator[Engine]:
    engine = create_engine(pg8000_url(database_url))
    try:
        yield engine
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3_000_000,
                        help="rows of the month file the ingest and the limit load")
    parser.add_argument("--big-rows", type=int, default=12_000_000,
                        help="rows of the file loaded for peak RSS only")
    parser.add_argument("--old-rows", type=int, default=200_000,
                        help="rows the old method loads (a slice of the month file)")
    parser.add_argument("--uploads", type=int, default=20,
                        help="uploads timed end to end")
    parser.add_argument("--repeat", type=int, default=3,
                        help="turns of ingest and limit; the median is reported")
    parser.add_argument("--child-ingest", nargs=2, metavar=("JOB_ID", "KEY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.child_ingest:
        logging.getLogger().setLevel(logging.WARNING)
        return child_ingest(*args.child_ingest)
    if min(args.rows, args.big_rows, args.old_rows, args.uploads, args.repeat) < 1:
        parser.error("every size must be at least 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
