"""The bridge from S3 event notifications (in SQS) to Celery tasks (in
RabbitMQ).

``Bridge.handle_body`` is the one place an event becomes a task. The local
bridge process (``python -m infra.bridge``) long-polls SQS and calls it; on
AWS the API's ``on_sqs_message`` Lambda handler calls the same method.

Per message: an ``s3:TestEvent`` is logged and deleted; a record outside the
raw prefix is ignored; for a trip file the job is found (or created, for an
object nobody announced through the API), marked queued, and the task is
published with publisher confirms. Only then may the message be deleted. A
message that is not an S3 event is made visible again at once, so it reaches
the dead-letter queue after the configured receives while the others flow
past it.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine

from infra import jobs
from infra.events import ObjectCreated, S3TestEvent, UnparseableMessage, parse_body
from infra.provision import INGEST_SUFFIXES
from infra.publisher import PublishFailed, TaskPublisher
from infra.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    published: int = 0
    ignored: int = 0
    test_event: bool = False


class Bridge:
    def __init__(self, settings: Settings, engine: Engine, publisher: TaskPublisher) -> None:
        self._settings = settings
        self._engine = engine
        self.publisher = publisher

    def handle_body(self, body: str) -> Outcome:
        """Turn one SQS message body into tasks. Raises ``UnparseableMessage``
        for a body that is not an S3 event and ``PublishFailed`` when RabbitMQ
        did not confirm; in both cases the message must not be deleted."""
        parsed = parse_body(body)
        if isinstance(parsed, S3TestEvent):
            logger.info("s3:TestEvent for bucket %s: nothing to do", parsed.bucket)
            return Outcome(test_event=True)
        published = ignored = 0
        for event in parsed:
            if self._wanted(event):
                self._publish(event)
                published += 1
            else:
                ignored += 1
        return Outcome(published=published, ignored=ignored)

    def _wanted(self, event: ObjectCreated) -> bool:
        settings = self._settings
        if event.bucket != settings.s3_bucket:
            logger.warning("ignoring event for bucket %s (this bridge serves %s) key=%s",
                           event.bucket, settings.s3_bucket, event.key)
            return False
        if not event.key.startswith(settings.raw_prefix):
            logger.info("ignoring key=%s: outside the raw prefix %s",
                        event.key, settings.raw_prefix)
            return False
        if not event.key.lower().endswith(INGEST_SUFFIXES):
            logger.info("ignoring key=%s: not a %s file", event.key, "/".join(INGEST_SUFFIXES))
            return False
        return True

    def _publish(self, event: ObjectCreated) -> None:
        task_id = str(uuid.uuid4())
        with self._engine.begin() as conn:
            job = jobs.get_by_object(conn, event.bucket, event.key)
            if job is None:
                filename = event.key.rsplit("/", 1)[-1]
                job = jobs.find_or_create_for_object(
                    conn, bucket=event.bucket, key=event.key, filename=filename,
                    size=event.size)
                logger.info("job=%s key=%s: object arrived without an upload session; "
                            "created a job for it", job.id, event.key)
            jobs.mark_queued(conn, job.id, task_id=task_id, etag=event.etag, size=event.size)
        self.publisher.publish_ingest(job_id=job.id, bucket=event.bucket, key=event.key,
                                       etag=event.etag, size=event.size, task_id=task_id)
        logger.info("job=%s key=%s etag=%s: task %s published", job.id, event.key,
                    event.etag, task_id)


class SqsPoller:
    """The local stand-in for Lambda's SQS event source."""

    def __init__(self, bridge: Bridge, sqs, queue_url: str, publisher: TaskPublisher,
                 *, wait_seconds: int = 20, retry_visibility: int = 5) -> None:
        self._bridge = bridge
        self._sqs = sqs
        self._queue_url = queue_url
        self._publisher = publisher
        self._wait = wait_seconds
        self._retry_visibility = retry_visibility
        self.receiving = False

    def poll_once(self) -> int:
        """Receive up to ten messages and handle each; return how many were
        deleted. Stops early, leaving the rest to reappear, when RabbitMQ is
        unreachable."""
        self.receiving = True
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10,
                WaitTimeSeconds=self._wait, AttributeNames=["ApproximateReceiveCount"])
        finally:
            self.receiving = False
        deleted = 0
        messages = response.get("Messages", [])
        for index, message in enumerate(messages):
            try:
                self._bridge.handle_body(message["Body"])
            except UnparseableMessage as exc:
                count = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
                logger.warning("message %s is not an S3 event (%s); receive %s, it goes to "
                               "the dead-letter queue after the configured receives",
                               message["MessageId"], exc, count)
                self._set_visibility(message, 0)
                continue
            except PublishFailed as exc:
                logger.warning("RabbitMQ unavailable (%s); keeping %d message(s) in SQS",
                               exc, len(messages) - index)
                self._wait_for_broker()
                for pending in messages[index:]:
                    self._set_visibility(pending, 0)
                return deleted
            except Exception:
                logger.exception("message %s failed; it will be received again",
                                 message["MessageId"])
                self._set_visibility(message, self._retry_visibility)
                continue
            self._sqs.delete_message(QueueUrl=self._queue_url,
                                     ReceiptHandle=message["ReceiptHandle"])
            deleted += 1
        return deleted

    def _set_visibility(self, message: dict, seconds: int) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=seconds)
        except Exception as exc:  # noqa: BLE001 - the message reappears anyway
            logger.warning("could not change visibility of %s: %s", message["MessageId"], exc)

    def _wait_for_broker(self, max_wait: float = 30.0) -> None:
        """Receive nothing while RabbitMQ is down: every receive counts towards
        the dead-letter limit, and a good event must never end there."""
        delay = 0.5
        while not self._publisher.broker_reachable():
            time.sleep(delay)
            delay = min(delay * 2, max_wait)

    def run(self, stop: threading.Event) -> None:
        logger.info("bridge polling %s", self._queue_url)
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("receiving from SQS failed; retrying in 2 s")
                stop.wait(2)


def build_bridge(settings: Settings) -> Bridge:
    from infra.db import get_engine
    from infra.publisher import publisher_app

    publisher = TaskPublisher(publisher_app(settings), settings.celery_queue)
    return Bridge(settings, get_engine(settings), publisher)


def build(settings: Settings) -> tuple[Bridge, SqsPoller]:
    from infra.aws import sqs_client

    bridge = build_bridge(settings)
    publisher = bridge.publisher
    sqs = sqs_client(settings)
    queue_url = sqs.get_queue_url(QueueName=settings.ingest_queue_name)["QueueUrl"]
    return bridge, SqsPoller(bridge, sqs, queue_url, publisher)


def _build_when_ready(settings: Settings, stop: threading.Event) -> SqsPoller | None:
    """Wait for the ingest queue to exist (SQS may start after the bridge)."""
    delay = 1.0
    while not stop.is_set():
        try:
            return build(settings)[1]
        except Exception as exc:  # noqa: BLE001 - any failure here means "not yet"
            logger.warning("cannot reach the ingest queue %s yet (%s); retrying in %.0f s",
                           settings.ingest_queue_name, str(exc).splitlines()[0][:160], delay)
            stop.wait(delay)
            delay = min(delay * 2, 30.0)
    return None


def main() -> int:
    from infra.logs import configure_logging
    from infra.settings import SettingsError, get_settings

    configure_logging("bridge")
    try:
        settings = get_settings()
    except SettingsError as exc:
        logger.error("%s", exc)
        return 2
    stop = threading.Event()
    poller: SqsPoller | None = None

    def on_signal(*_args) -> None:
        stop.set()
        # A long poll can take WaitTimeSeconds to return; nothing is lost by
        # leaving it (no message is in hand), so leave at once.
        if poller is None or poller.receiving:
            raise SystemExit(0)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    poller = _build_when_ready(settings, stop)
    if poller is not None:
        poller.run(stop)
    logger.info("bridge stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
