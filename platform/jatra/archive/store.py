"""The archive bucket: created with Object Lock, every object written once under COMPLIANCE retention.

Versioning is on in an Object Lock bucket, so writing a key twice keeps both versions, and deleting one
without a version id only puts a delete marker on top. The archiver therefore never writes a key it has
written before (it looks first), and verify reads the versions to see what else was written.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass

from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention

from jatra.archive import layout
from jatra.infra.s3 import s3_client
from jatra.settings import Settings

CONTENT_TYPES = {".json": "application/json", ".gz": "application/gzip", ".pem": "application/x-pem-file"}


class StoreError(RuntimeError):
    """The bucket is not what the archive needs, or holds something it did not expect."""


@dataclass(frozen=True, slots=True)
class Version:
    key: str
    version_id: str
    latest: bool
    delete_marker: bool
    size: int | None


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    version_id: str
    lock_mode: str | None
    retain_until: dt.datetime | None
    legal_hold: bool


class ArchiveStore:
    def __init__(self, client: Minio, bucket: str, retention_days: int, legal_hold: bool) -> None:
        self.client = client
        self.bucket = bucket
        self.retention_days = retention_days
        self.legal_hold = legal_hold

    @classmethod
    def from_settings(cls, settings: Settings) -> ArchiveStore:
        return cls(
            s3_client(settings),
            settings.archive_bucket,
            settings.archive_retention_days,
            settings.archive_legal_hold,
        )

    # -- the bucket --------------------------------------------------------------------------------------
    def ensure_bucket(self) -> bool:
        """Create the bucket with Object Lock if it is missing (True if created); refuse one without."""
        if not self.client.bucket_exists(self.bucket):
            try:
                self.client.make_bucket(self.bucket, object_lock=True)
            except S3Error as exc:
                if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise
            else:
                return True
        try:
            self.client.get_object_lock_config(self.bucket)
        except S3Error as exc:
            if exc.code == "ObjectLockConfigurationNotFoundError":
                raise StoreError(
                    f"bucket {self.bucket} exists without Object Lock: the archive needs a bucket created "
                    "with it (it cannot be turned on later)"
                ) from None
            raise
        return False

    def exists(self) -> bool:
        return self.client.bucket_exists(self.bucket)

    # -- writing -------------------------------------------------------------------------------------------
    def retain_until(self, now: dt.datetime | None = None) -> dt.datetime:
        """When the retention of an object written ``now`` ends (S3 keeps it to the second)."""
        now = now or dt.datetime.now(dt.UTC)
        return (now + dt.timedelta(days=self.retention_days)).replace(microsecond=0)

    def put_locked(self, key: str, data: bytes, until: dt.datetime) -> str:
        """Write ``key`` under COMPLIANCE retention until ``until`` (and the legal hold if configured);
        returns the version id."""
        suffix = key[key.rfind(".") :]
        result = self.client.put_object(
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"),
            retention=Retention(COMPLIANCE, until),
            legal_hold=self.legal_hold,
        )
        if not result.version_id:
            raise StoreError(f"bucket {self.bucket} returned no version id for {key}: is versioning on?")
        return str(result.version_id)

    # -- reading ---------------------------------------------------------------------------------------------
    def versions(self, prefix: str) -> dict[str, list[Version]]:
        """Every version and delete marker under ``prefix``, by key."""
        found: dict[str, list[Version]] = {}
        for o in self.client.list_objects(self.bucket, prefix=prefix, recursive=True, include_version=True):
            if o.object_name is None:
                continue
            found.setdefault(o.object_name, []).append(
                Version(
                    key=o.object_name,
                    version_id=str(o.version_id),
                    latest=str(o.is_latest).lower() == "true",
                    delete_marker=bool(o.is_delete_marker),
                    size=o.size,
                )
            )
        return found

    def versions_of(self, key: str) -> list[Version]:
        return self.versions(key).get(key, [])

    def keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        """The keys under ``prefix`` a plain listing shows (not hidden by a delete marker), in order."""
        for o in self.client.list_objects(
            self.bucket, prefix=prefix, recursive=True, start_after=start_after
        ):
            if o.object_name is not None:
                yield o.object_name

    def sources(self) -> list[str]:
        """Every source with a segment or a manifest, delete markers or not."""
        found: set[str] = set()
        for top in (layout.SEGMENTS, layout.MANIFESTS):
            for o in self.client.list_objects(self.bucket, prefix=top, include_version=True):
                if o.is_dir and o.object_name:
                    found.add(o.object_name.removeprefix(top).rstrip("/"))
        return sorted(found)

    def get(self, key: str, version_id: str | None = None) -> Fetched | None:
        """The bytes of ``key`` (of ``version_id``, else the latest) and how they are locked; None if there
        is no such object or version (or a delete marker is on top)."""
        try:
            response = self.client.get_object(self.bucket, key, version_id=version_id)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchVersion", "InvalidArgument", "MethodNotAllowed"}:
                return None
            raise
        try:
            data = response.read()
            headers = response.headers
        finally:
            response.close()
            response.release_conn()
        until = headers.get("x-amz-object-lock-retain-until-date")
        return Fetched(
            data=data,
            version_id=str(headers.get("x-amz-version-id") or version_id or ""),
            lock_mode=headers.get("x-amz-object-lock-mode"),
            retain_until=dt.datetime.fromisoformat(until).astimezone(dt.UTC) if until else None,
            legal_hold=(headers.get("x-amz-object-lock-legal-hold") or "").upper() == "ON",
        )
