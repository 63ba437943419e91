"""A bridge that dies between publishing and deleting: it receives one SQS
message, publishes its task through the real ``Bridge``, and kills itself
with SIGKILL before the delete. Run by the fault tests as a process."""

from __future__ import annotations

import os
import signal
import sys

from infra.bridge import build
from infra.settings import get_settings


def main() -> int:
    bridge, poller = build(get_settings())
    sqs, queue_url = poller._sqs, poller._queue_url  # noqa: SLF001 - a test tool
    for _ in range(30):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1,
                                       WaitTimeSeconds=2).get("Messages", [])
        for message in messages:
            outcome = bridge.handle_body(message["Body"])
            if outcome.published:
                print("published; dying before the delete", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return 1


if __name__ == "__main__":
    sys.exit(main())
