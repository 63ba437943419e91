"""Code shared by the API and the worker.

Modules that do I/O: ``aws`` (S3, SQS clients), ``db`` (Postgres engine),
``jobs`` (the job repository), ``bridge`` (SQS to RabbitMQ), ``provision``
(bucket, queues, notification), ``zones`` (zone lookup loader) and
``migrate``. ``settings``, ``events`` and ``schema`` are pure.

Nothing here imports pandas or pyarrow: the API package must stay within
Lambda's size limit.
"""
