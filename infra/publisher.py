"""Publish ingest tasks to RabbitMQ with publisher confirms.

The bridge runs without the worker's code (no pandas, no pyarrow), so it
sends the task by name. A publish returns only once RabbitMQ has confirmed
it; a broker that is down or refuses raises ``PublishFailed``.
"""

from __future__ import annotations

import logging
import uuid

from celery import Celery

from infra.settings import Settings

logger = logging.getLogger(__name__)

INGEST_TASK = "taxi.ingest_object"


class PublishFailed(RuntimeError):
    """RabbitMQ did not confirm the task; the caller keeps its SQS message."""


def publisher_app(settings: Settings) -> Celery:
    app = Celery("taxi-bridge", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        broker_transport_options={"confirm_publish": True},
        broker_connection_timeout=5,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.celery_queue,
    )
    return app


class TaskPublisher:
    def __init__(self, app: Celery, queue: str) -> None:
        self._app = app
        self._queue = queue

    def publish_ingest(self, *, job_id: uuid.UUID, bucket: str, key: str,
                       etag: str | None, size: int | None, task_id: str) -> None:
        try:
            self._app.send_task(
                INGEST_TASK,
                kwargs={"job_id": str(job_id), "bucket": bucket, "key": key,
                        "etag": etag, "size": size},
                task_id=task_id,
                queue=self._queue,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2,
                              "interval_step": 0.5, "interval_max": 1.0},
            )
        except Exception as exc:  # kombu raises many types for a broker outage
            raise PublishFailed(f"RabbitMQ did not confirm the task: {exc}") from exc

    def broker_reachable(self) -> bool:
        try:
            with self._app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=3)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not now"
            return False
