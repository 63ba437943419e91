"""The Celery worker: download, read, validate, clean and load trip files.

Pure modules (no I/O): ``schema_map``, ``cleaning``, ``encode``, ``errors``.
Modules that do I/O: ``ingest`` (S3, Postgres, temporary files), ``load``
(Postgres COPY), ``tasks`` and ``celery_app`` (RabbitMQ).
"""
