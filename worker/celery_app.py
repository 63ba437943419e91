"""The Celery application of the worker.

Delivery settings follow from one rule: a task may run twice but never get
lost. So: acknowledge late, requeue when a worker dies, prefetch one task at
a time, and keep every task well inside RabbitMQ's ``consumer_timeout`` (the
soft and hard limits come from settings and are checked below it). The load
itself is idempotent per object, which makes running twice harmless.

Run it with ``celery -A worker.celery_app worker -Q <CELERY_QUEUE>``.
"""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import after_setup_logger, worker_process_init

from infra.db import dispose_engines
from infra.settings import get_settings

logger = logging.getLogger(__name__)

#: RabbitMQ's default consumer_timeout; compose sets it explicitly to this.
RABBITMQ_CONSUMER_TIMEOUT_SECONDS = 30 * 60


def make_app() -> Celery:
    settings = get_settings()
    if settings.task_time_limit_seconds >= RABBITMQ_CONSUMER_TIMEOUT_SECONDS:
        raise ValueError(
            "TASK_TIME_LIMIT_SECONDS must stay below RabbitMQ's consumer_timeout "
            f"({RABBITMQ_CONSUMER_TIMEOUT_SECONDS} s), or RabbitMQ redelivers a task "
            "that is still running.")
    if settings.task_soft_time_limit_seconds >= settings.task_time_limit_seconds:
        raise ValueError("TASK_SOFT_TIME_LIMIT_SECONDS must be below TASK_TIME_LIMIT_SECONDS")
    app = Celery("taxi-worker", broker=settings.broker_url, include=["worker.tasks"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit_seconds,
        task_time_limit=settings.task_time_limit_seconds,
        task_ignore_result=True,
        task_default_queue=settings.celery_queue,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={"confirm_publish": True},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


@worker_process_init.connect
def _fresh_engine_after_fork(**_kwargs) -> None:
    # Connections inherited from the parent belong to the parent.
    dispose_engines()


@after_setup_logger.connect
def _quiet_libraries(logger=None, **_kwargs) -> None:  # noqa: ARG001
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


app = make_app()
