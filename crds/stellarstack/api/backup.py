"""Backup: an archive of one GameServer's data volume, and the request to restore it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from stellarstack.api.common import ApiModel, DnsSubdomain, Resource
from stellarstack.api.states import BackupPhase


class Compression(StrEnum):
    """Archive compression."""

    ZSTD = "zstd"
    """tar + zstd: fast, small (the default)."""
    GZIP = "gzip"
    """tar + gzip: readable everywhere."""
    NONE = "none"
    """Plain tar."""


class StorageTarget(StrEnum):
    """Where archives are kept."""

    LOCAL = "Local"
    """On the node (Docker nodes) or on a backups volume in the namespace (Kubernetes)."""
    S3 = "S3"
    """An S3-compatible bucket."""


class S3Target(ApiModel):
    """An S3-compatible bucket."""

    bucket: str = Field(min_length=3, max_length=63)
    """Bucket name."""
    endpoint: str | None = Field(default=None, max_length=1024)
    """Endpoint URL for S3-compatible stores; AWS when unset."""
    region: str | None = Field(default=None, max_length=64)
    """Bucket region."""
    prefix: str = Field(default="", max_length=512)
    """Key prefix for this server's archives."""
    credentials_secret: DnsSubdomain
    """Secret (same namespace) with `accessKeyId` and `secretAccessKey`."""


class BackupStorage(ApiModel):
    """Where the archive is written."""

    type: StorageTarget = StorageTarget.LOCAL
    """Local or S3."""
    s3: S3Target | None = None
    """Bucket settings for `type: S3`."""

    @model_validator(mode="after")
    def _s3_settings(self) -> BackupStorage:
        if self.type is StorageTarget.S3 and self.s3 is None:
            raise ValueError("s3: required when type is S3")
        return self


class BackupSpec(ApiModel):
    """What to back up and how."""

    game_server: DnsSubdomain
    """Name of the GameServer (same namespace) whose data volume is archived."""
    compression: Compression = Compression.ZSTD
    """zstd, gzip or none."""
    storage: BackupStorage = Field(default_factory=BackupStorage)
    """Where the archive goes."""
    ignore: list[str] = Field(default_factory=list, max_length=256)
    """Glob patterns of paths left out of the archive (like `.pteroignore`)."""
    locked: bool = False
    """Locked backups are never deleted by retention and cannot be deleted until unlocked."""
    restore_request: str | None = Field(default=None, max_length=64)
    """Set to a new value to restore this backup into the server once (it is stopped first)."""
    delete_files_before_restore: bool = False
    """Remove the server's current files before restoring (otherwise the archive overlays)."""


class RestoreResult(ApiModel):
    """Outcome of the last restore request."""

    request: str
    """The `spec.restoreRequest` value it answered."""
    result: Literal["Succeeded", "Failed"]
    """Succeeded or Failed."""
    message: str = ""
    """Why it failed (e.g. the checksum did not match; live data was left untouched)."""
    finished_at: datetime | None = None
    """When it finished."""


class BackupStatus(ApiModel):
    """What the runtime last observed."""

    phase: BackupPhase = BackupPhase.PENDING
    """Where the backup is in its lifecycle."""
    size_bytes: int | None = None
    """Archive size."""
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """SHA-256 of the archive, hashed while it was written."""
    location: str | None = None
    """Where the archive is (a node path or an S3 URL)."""
    started_at: datetime | None = None
    """When writing started."""
    completed_at: datetime | None = None
    """When the archive was complete."""
    message: str = ""
    """Why the backup failed, when it did."""
    last_restore: RestoreResult | None = None
    """Outcome of the last restore request."""
    observed_generation: int | None = None
    """The generation this status describes."""


class Backup(Resource):
    """An archive of a GameServer's data volume."""

    KIND: ClassVar[str] = "Backup"
    PLURAL: ClassVar[str] = "backups"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("gsbackup",)

    kind: Literal["Backup"] = "Backup"
    spec: BackupSpec
    """What to back up and how."""
    status: BackupStatus | None = None
    """Set by the runtime."""
