"""Backups on a Docker node: archives of a server's data, and restores that verify first.

An archive is written to a `.partial` file while it is hashed, fsynced, then renamed into place,
so a crash never leaves a file that looks complete. A restore checks the archive's SHA-256
before touching anything: on a mismatch the server's live data stays as it was. The server is
stopped for a restore and its GameServer passes through the Restoring state.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from stellarstack.api.backup import Backup, BackupStatus, Compression, RestoreResult
from stellarstack.api.blueprint import Blueprint, StopMethod
from stellarstack.api.gameserver import GameServer, GameServerStatus
from stellarstack.api.runtime import ProcessPhase, ServerKey
from stellarstack.api.states import (
    BACKUP_MACHINE,
    GAMESERVER_MACHINE,
    BackupEvent,
    BackupPhase,
    GameServerEvent,
    GameServerState,
)
from stellarstack.nodeproxy.files import Denylist, FileError, SafeRoot
from stellarstack.nodeproxy.files.archives import ArchiveFormat, create_archive, extract_archive
from stellarstack.nodeproxy.runtime.docker import DockerRuntime
from stellarstack.nodeproxy.store import CLUSTER, Store

log = logging.getLogger(__name__)

FORMATS = {
    Compression.ZSTD: (ArchiveFormat.TAR_ZST, "tar.zst"),
    Compression.GZIP: (ArchiveFormat.TAR_GZ, "tar.gz"),
    Compression.NONE: (ArchiveFormat.TAR, "tar"),
}
_CHUNK = 1024 * 1024


class _HashingWriter:
    """Writes through to a file while hashing and counting what passes."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.target.write(data)


@dataclass(frozen=True)
class ArchiveResult:
    """A complete archive on disk."""

    path: Path
    size: int
    sha256: str


class BackupService:
    """Carries out the Backups stored on this node."""

    def __init__(self, store: Store, runtime: DockerRuntime, backups_root: Path) -> None:
        self._store = store
        self._runtime = runtime
        self._root = backups_root

    def archive_path(self, backup: Backup) -> Path:
        """Where a backup's archive lives (outside every server's data directory)."""
        _, extension = FORMATS[backup.spec.compression]
        namespace = backup.metadata.namespace or "default"
        return (
            self._root / namespace / backup.spec.game_server / f"{backup.metadata.name}.{extension}"
        )

    async def reconcile_all(self) -> None:
        """Delete what was deleted, then create pending archives and carry out restores."""
        for gone in self._store.deleting(Backup):
            self.archive_path(gone).unlink(missing_ok=True)
            self._store.forget(
                Backup, gone.metadata.namespace or "default", gone.metadata.name or ""
            )
        for backup in self._store.of_kind(Backup):
            try:
                await self.reconcile(backup)
            except Exception:  # one broken backup must not stop the others
                log.exception("backup %s failed unexpectedly", backup.metadata.name)

    async def reconcile(self, backup: Backup) -> None:
        """One backup: create it when pending (or interrupted), restore when requested."""
        status = backup.status or BackupStatus()
        if status.phase in {BackupPhase.PENDING, BackupPhase.RUNNING}:
            await self._create(backup, status)
            return
        request = backup.spec.restore_request
        answered = status.last_restore.request if status.last_restore else None
        if status.phase is BackupPhase.RESTORING or (
            status.phase is BackupPhase.COMPLETED and request and request != answered
        ):
            await self._restore(backup, status)

    async def _create(self, backup: Backup, status: BackupStatus) -> None:
        key = ServerKey(backup.metadata.namespace or "default", backup.spec.game_server)
        if self._store.get(GameServer, key.namespace, key.name) is None:
            self._save(backup, _fire(status, BackupEvent.FAILED, "the GameServer does not exist"))
            return
        if status.phase is BackupPhase.PENDING:
            status = _fire(status, BackupEvent.STARTED)
            status.started_at = datetime.now(UTC)
            self._save(backup, status)
        try:
            result = await asyncio.to_thread(self._write_archive, backup, key)
        except (OSError, FileError) as exc:
            self._save(
                backup, _fire(status, BackupEvent.FAILED, f"writing the archive failed: {exc}")
            )
            return
        status = _fire(status, BackupEvent.SUCCEEDED)
        status.size_bytes = result.size
        status.sha256 = result.sha256
        status.location = str(result.path)
        status.completed_at = datetime.now(UTC)
        self._save(backup, status)

    def _write_archive(self, backup: Backup, key: ServerKey) -> ArchiveResult:
        final = self.archive_path(backup)
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = final.with_name(final.name + ".partial")
        fmt, _ = FORMATS[backup.spec.compression]
        data = self._runtime.prepare_data_dir(key)
        try:
            # Ignore patterns are the backup's own; the blueprint's deny-list is about what users
            # may touch, and a restore must bring those files back too.
            with (
                SafeRoot(data, denylist=Denylist.of(backup.spec.ignore)) as root,
                partial.open("wb") as handle,
            ):
                writer = _HashingWriter(handle)
                names = [entry.name for entry in root.list_dir("") if not entry.denied]
                create_archive(root, names, writer, fmt)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, final)
            _fsync_directory(final.parent)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return ArchiveResult(final, writer.size, writer.sha256.hexdigest())

    async def _restore(self, backup: Backup, status: BackupStatus) -> None:
        request = backup.spec.restore_request or ""
        key = ServerKey(backup.metadata.namespace or "default", backup.spec.game_server)
        archive = self.archive_path(backup)
        if status.phase is BackupPhase.COMPLETED:
            status = _fire(status, BackupEvent.RESTORE_STARTED)
            self._save(backup, status)
        problem = await asyncio.to_thread(_verify, archive, status.sha256)
        if problem is None:
            problem = await self._restore_into_server(backup, key, archive)
        status = _fire(status, BackupEvent.RESTORE_FINISHED)
        status.last_restore = RestoreResult(
            request=request,
            result="Failed" if problem else "Succeeded",
            message=problem or "",
            finished_at=datetime.now(UTC),
        )
        self._save(backup, status)

    async def _restore_into_server(
        self, backup: Backup, key: ServerKey, archive: Path
    ) -> str | None:
        gameserver = self._store.get(GameServer, key.namespace, key.name)
        if gameserver is None:
            return "the GameServer does not exist"
        blueprint = self._store.get(Blueprint, CLUSTER, gameserver.spec.blueprint)
        if (await self._runtime.status(key)).phase is ProcessPhase.RUNNING:
            await self._runtime.stop(key, blueprint.spec.stop if blueprint else StopMethod())
        self._set_server_state(gameserver, restoring=True)
        try:
            user = self._runtime.workload_settings
            await asyncio.to_thread(
                _extract_into,
                self._runtime.prepare_data_dir(key),
                archive,
                backup.spec.delete_files_before_restore,
                (user.run_as_user, user.run_as_group),
            )
        except (OSError, FileError) as exc:
            return f"extracting the archive failed: {exc}"
        finally:
            current = self._store.get(GameServer, key.namespace, key.name)
            if current is not None:
                self._set_server_state(current, restoring=False)
        return None

    def _set_server_state(self, gameserver: GameServer, *, restoring: bool) -> None:
        status = (gameserver.status or GameServerStatus()).model_copy(deep=True)
        events: list[GameServerEvent] = []
        if restoring:
            if status.state in {GameServerState.STARTING, GameServerState.RUNNING}:
                events.append(GameServerEvent.STOP)
            if status.state in {
                GameServerState.STARTING,
                GameServerState.RUNNING,
                GameServerState.STOPPING,
            }:
                events.append(GameServerEvent.EXITED)
            if status.state is not GameServerState.RESTORING:
                events.append(GameServerEvent.RESTORE_STARTED)
        elif status.state is GameServerState.RESTORING:
            events.append(GameServerEvent.RESTORE_FINISHED)
        for event in events:
            if not GAMESERVER_MACHINE.allows(status.state, event):
                return  # e.g. suspended or in error: leave the state as it is
            status.state = GAMESERVER_MACHINE.next_state(status.state, event)
            status.state_since = datetime.now(UTC)
        if events:
            status.reason = "Restoring" if restoring else "Restored"
            status.message = ""
            self._store.set_status(gameserver, status)

    def _save(self, backup: Backup, status: BackupStatus) -> None:
        status.observed_generation = backup.metadata.generation
        self._store.set_status(backup, status)


def _fire(status: BackupStatus, event: BackupEvent, message: str = "") -> BackupStatus:
    updated = status.model_copy(deep=True)
    updated.phase = BACKUP_MACHINE.next_state(status.phase, event)
    updated.message = message
    return updated


def _verify(archive: Path, expected: str | None) -> str | None:
    """None when the archive's SHA-256 matches; otherwise why the restore is refused."""
    if expected is None:
        return "the backup has no checksum; refusing to restore it"
    digest = hashlib.sha256()
    try:
        with archive.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        return "the archive is missing"
    if digest.hexdigest() != expected:
        return "checksum mismatch: the archive changed since it was written; live data untouched"
    return None


def _extract_into(data: Path, archive: Path, wipe_first: bool, owner: tuple[int, int]) -> None:
    # The extractor reads archives from inside the root; a hard link (same filesystem) makes
    # the verified archive visible there without copying it.
    name = f".stellarstack-restore-{os.urandom(8).hex()}{''.join(archive.suffixes)}"
    # Restored files belong to the game's user, or the game could not write its own save.
    with SafeRoot(data, owner=owner) as root:
        if wipe_first:
            for entry in root.list_dir(""):
                root.delete(entry.path)
        try:
            os.link(archive, data / name)
        except OSError:
            # Another filesystem (or links refused): copy it in through the confined layer.
            with archive.open("rb") as source:
                root.write(name, iter(lambda: source.read(_CHUNK), b""))
        try:
            extract_archive(root, name, "", overwrite=True)
        finally:
            with contextlib.suppress(FileError):
                root.delete(name)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
