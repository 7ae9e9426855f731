"""The S3 client: the official ``minio`` client, for SeaweedFS locally and MinIO in compose and Kubernetes."""

from __future__ import annotations

from minio import Minio

from jatra.infra.secrets import s3_secret_key
from jatra.settings import Settings


def s3_client(settings: Settings) -> Minio:
    """A client for the configured endpoint; it is synchronous (call it from a thread in async code)."""
    return Minio(
        settings.s3,
        access_key=settings.s3_access_key,
        secret_key=s3_secret_key(settings),
        secure=settings.s3_secure,
        region="us-east-1",  # a fixed region: no GetBucketLocation round trip before every request
    )
