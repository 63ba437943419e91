"""Create what the pipeline needs in S3 and SQS, idempotently: the bucket with
CORS for browser uploads, the ingest queue and its dead-letter queue, the
queue policy, and the ObjectCreated notification for raw trip files.

The same function runs in every mode: ``python -m infra.provision`` on the
host, the LocalStack ready hook in ``localstack-init/`` inside compose, and a
deploy step on AWS. It needs boto3 and the standard library only, so the hook
can import it inside LocalStack's own interpreter.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass

import boto3
from botocore.config import Config

logger = logging.getLogger(__name__)

#: Suffixes that start an ingest: what the worker can read (TLC parquet, and
#: the CSV form TLC published until 2022, plain or gzip-compressed).
INGEST_SUFFIXES = (".parquet", ".csv", ".csv.gz")


@dataclass(frozen=True)
class Resources:
    bucket: str
    raw_prefix: str
    queue_name: str
    dlq_name: str
    max_receive_count: int
    visibility_timeout: int
    region: str
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, env=os.environ) -> Resources:
        """Read the variables the typed settings read, with the same defaults;
        used where pydantic is not importable (inside LocalStack)."""
        return cls(
            bucket=env.get("S3_BUCKET", "taxi-ingest"),
            raw_prefix=env.get("RAW_PREFIX", "raw/"),
            queue_name=env.get("INGEST_QUEUE_NAME", "taxi-ingest-events"),
            dlq_name=env.get("INGEST_DLQ_NAME", "taxi-ingest-events-dlq"),
            max_receive_count=int(env.get("INGEST_MAX_RECEIVE_COUNT", "5")),
            visibility_timeout=int(env.get("INGEST_VISIBILITY_TIMEOUT_SECONDS", "60")),
            region=env.get("AWS_REGION", "us-east-1"),
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        )


def provision(res: Resources, *, cors_origins: tuple[str, ...] = ("*",)) -> dict:
    session = boto3.session.Session()
    config = Config(retries={"max_attempts": 5, "mode": "standard"},
                    s3={"addressing_style": "path"})
    s3 = session.client("s3", endpoint_url=res.endpoint_url, region_name=res.region,
                        config=config)
    sqs = session.client("sqs", endpoint_url=res.endpoint_url, region_name=res.region,
                         config=config)

    _ensure_bucket(s3, res)
    s3.put_bucket_cors(Bucket=res.bucket, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": list(cors_origins),
        "AllowedMethods": ["PUT", "POST", "GET", "HEAD"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 3000,
    }]})

    dlq_url = sqs.create_queue(QueueName=res.dlq_name, Attributes={
        "MessageRetentionPeriod": str(14 * 24 * 3600)})["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    queue_url = sqs.create_queue(QueueName=res.queue_name)["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={
        "VisibilityTimeout": str(res.visibility_timeout),
        "ReceiveMessageWaitTimeSeconds": "20",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": str(res.max_receive_count)}),
        "Policy": json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{res.bucket}"}},
            }],
        }),
    })

    s3.put_bucket_notification_configuration(
        Bucket=res.bucket,
        NotificationConfiguration={"QueueConfigurations": [
            {
                "Id": "ingest" + suffix.replace(".", "-"),
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [
                    {"Name": "prefix", "Value": res.raw_prefix},
                    {"Name": "suffix", "Value": suffix},
                ]}},
            }
            for suffix in INGEST_SUFFIXES
        ]},
    )
    logger.info("provisioned bucket %s, queue %s (dead letters: %s after %d receives)",
                res.bucket, res.queue_name, res.dlq_name, res.max_receive_count)
    return {"bucket": res.bucket, "queue_url": queue_url, "dlq_url": dlq_url}


def _ensure_bucket(s3, res: Resources) -> None:
    try:
        s3.head_bucket(Bucket=res.bucket)
        return
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    kwargs = {"Bucket": res.bucket}
    if res.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": res.region}
    s3.create_bucket(**kwargs)


def _queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]


def main() -> int:
    from infra.logs import configure_logging

    configure_logging("provision")
    print(json.dumps(provision(Resources.from_env())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
