"""The ingest task: a thin shell around ``worker.ingest.Ingestor`` that turns
its exceptions into Celery's retry and failure semantics."""

from __future__ import annotations

import logging
import uuid

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError

from infra.aws import s3_client
from infra.db import get_engine
from infra.publisher import INGEST_TASK
from infra.settings import get_settings
from worker.celery_app import app
from worker.errors import JobBusy, TransientError
from worker.ingest import (
    Ingestor,
    IngestRequest,
    ObjectStore,
    _sqlstate,
    is_transient_db_error,
)

logger = logging.getLogger(__name__)


def _ingestor() -> Ingestor:
    settings = get_settings()
    return Ingestor(settings, get_engine(settings),
                    ObjectStore(s3_client(settings), settings.s3_bucket))


def _backoff(retries: int) -> float:
    return min(2.0 * 2 ** retries, 60.0)


@app.task(bind=True, name=INGEST_TASK, max_retries=None)
def ingest_object(self, job_id: str, bucket: str, key: str, etag: str | None = None,
                  size: int | None = None) -> dict:
    request = IngestRequest(job_id=uuid.UUID(job_id), bucket=bucket, key=key,
                            task_id=self.request.id)
    ingestor = _ingestor()
    settings = get_settings()
    prefix = f"job={job_id} key={key}"
    try:
        outcome = ingestor.run(request)
        return {"status": outcome.status, "rows_in": outcome.rows_in,
                "rows_loaded": outcome.rows_loaded, "error_code": outcome.error_code}
    except JobBusy:
        logger.info("%s another worker is loading this object; trying again in 5 s", prefix)
        raise self.retry(countdown=5) from None
    except SoftTimeLimitExceeded:
        limit = settings.task_soft_time_limit_seconds
        logger.error("%s passed the soft time limit of %d s; rolled back", prefix, limit)
        _fail_quietly(ingestor, request, "time_limit_exceeded", (
            f"Loading took longer than {limit} s (TASK_SOFT_TIME_LIMIT_SECONDS) and was "
            "rolled back; no row was loaded. Split the file or raise the limit, keeping "
            "it below RabbitMQ's consumer_timeout."))
        return {"status": "failed", "error_code": "time_limit_exceeded"}
    except DBAPIError as exc:
        if not is_transient_db_error(exc) and _sqlstate(exc).startswith(("22", "23")):
            message = str(exc.orig).splitlines()[0][:300]
            _fail_quietly(ingestor, request, "invalid_value", (
                f"Postgres refused a value from the file ({message}); nothing was loaded. "
                "Fix the file and upload it again."))
            return {"status": "failed", "error_code": "invalid_value"}
        return _retry_or_fail(self, ingestor, request, exc, settings.task_max_retries)
    except (TransientError, OSError) as exc:
        return _retry_or_fail(self, ingestor, request, exc, settings.task_max_retries)
    except Exception as exc:
        # A bug, not the file's fault. The job must not stay "running" forever.
        logger.exception("%s unexpected error; failing the job", prefix)
        _fail_quietly(ingestor, request, "internal_error", (
            f"The worker hit an unexpected error ({exc.__class__.__name__}); nothing was "
            "loaded. It has been logged: upload the file again, and report it if it "
            "happens again."))
        return {"status": "failed", "error_code": "internal_error"}


def _retry_or_fail(task, ingestor: Ingestor, request: IngestRequest, exc: BaseException,
                   max_retries: int) -> dict:
    retries = task.request.retries
    prefix = f"job={request.job_id} key={request.key}"
    if retries < max_retries:
        delay = _backoff(retries)
        logger.warning("%s transient failure (%s); retry %d of %d in %.0f s",
                       prefix, _one_line(exc), retries + 1, max_retries, delay)
        raise task.retry(countdown=delay) from None
    logger.error("%s giving up after %d retries: %s", prefix, retries, _one_line(exc))
    _fail_quietly(ingestor, request, "retries_exhausted", (
        f"The load failed {retries + 1} times on a temporary problem "
        f"({_one_line(exc)}); nothing was loaded. Check that Postgres and S3 are up, then "
        "upload the file again."))
    return {"status": "failed", "error_code": "retries_exhausted"}


def _fail_quietly(ingestor: Ingestor, request: IngestRequest, code: str, message: str) -> None:
    try:
        ingestor.fail(request.job_id, code, message)
    except Exception:
        logger.exception("job=%s key=%s could not record failure %s", request.job_id,
                         request.key, code)
        raise


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:200]
