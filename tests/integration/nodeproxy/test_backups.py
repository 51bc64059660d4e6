"""Backups and restores on a Docker node, with the toy server's real data directory."""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from stellarstack.api.backup import Backup, BackupStatus
from stellarstack.api.blueprint import Blueprint
from stellarstack.api.runtime import ServerKey
from stellarstack.api.states import BackupPhase
from stellarstack.api.states import GameServerState as G
from support.node_agent import Node, converge, state_is, toy_server
from support.runtime_harness import TOY_BLUEPRINT

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]


def backup(name: str, server: str, **spec: Any) -> Backup:
    return Backup.model_validate(
        {
            "kind": "Backup",
            "metadata": {"name": name, "namespace": "agent"},
            "spec": {"gameServer": server, **spec},
        }
    )


async def backup_done(node: Node, name: str, *, within: int = 60) -> BackupStatus:
    for _ in range(within * 2):
        await node.agent.reconcile_all()
        stored = node.store.get(Backup, "agent", name)
        assert stored is not None
        status = stored.status
        finished = status is not None and status.phase in {
            BackupPhase.COMPLETED,
            BackupPhase.FAILED,
        }
        answered = not stored.spec.restore_request or (
            status is not None
            and status.last_restore is not None
            and status.last_restore.request == stored.spec.restore_request
        )
        if finished and answered:
            assert status is not None
            return status
    raise AssertionError(f"backup {name} did not finish")


def members(archive: Path) -> set[str]:
    with (
        archive.open("rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as plain,
        tarfile.open(fileobj=plain, mode="r|") as tar,
    ):
        return {member.name for member in tar}


async def test_backup_then_restore_over_changed_data(node_factory: Callable[[], Node]) -> None:
    node = node_factory()
    node.store.put(Blueprint.model_validate(TOY_BLUEPRINT))
    node.store.put(toy_server("saved"))
    await converge(node, "saved", state_is(G.RUNNING))
    data = node.settings.data_dir(ServerKey("agent", "saved"))
    (data / "world").mkdir()
    (data / "world" / "level.dat").write_text("original world")
    (data / "cache.tmp").write_text("not worth keeping")

    node.store.put(backup("nightly", "saved", ignore=["*.tmp"]))
    status = await backup_done(node, "nightly")
    assert status.phase is BackupPhase.COMPLETED, status.message
    archive = Path(status.location or "")
    assert archive.name == "nightly.tar.zst"
    assert not archive.with_name(archive.name + ".partial").exists()
    assert status.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert status.size_bytes == archive.stat().st_size
    assert {"world/level.dat", "installed.txt", "boots"} <= members(archive)
    assert "cache.tmp" not in members(archive)

    (data / "world" / "level.dat").write_text("griefed world")
    (data / "world" / "new.dat").write_text("added after the backup")
    node.store.put(
        backup(
            "nightly",
            "saved",
            ignore=["*.tmp"],
            restoreRequest="r-1",
            deleteFilesBeforeRestore=True,
        )
    )
    status = await backup_done(node, "nightly")
    assert status.last_restore is not None
    assert status.last_restore.result == "Succeeded", status.last_restore.message
    assert (data / "world" / "level.dat").read_text() == "original world"
    assert not (data / "world" / "new.dat").exists()
    assert not any(p.name.startswith(".stellarstack-") for p in data.iterdir())
    # The server was stopped for the restore and comes back by itself.
    await converge(node, "saved", state_is(G.RUNNING))


async def test_a_tampered_archive_is_refused_and_live_data_untouched(
    node_factory: Callable[[], Node],
) -> None:
    node = node_factory()
    node.store.put(Blueprint.model_validate(TOY_BLUEPRINT))
    node.store.put(toy_server("tampered"))
    await converge(node, "tampered", state_is(G.RUNNING))
    data = node.settings.data_dir(ServerKey("agent", "tampered"))
    (data / "save.dat").write_text("live")
    node.store.put(backup("b1", "tampered"))
    status = await backup_done(node, "b1")
    archive = Path(status.location or "")
    with archive.open("r+b") as handle:
        handle.seek(0, 2)
        handle.write(b"tamper")
    (data / "save.dat").write_text("live and newer")
    node.store.put(backup("b1", "tampered", restoreRequest="r-2"))
    status = await backup_done(node, "b1")
    assert status.phase is BackupPhase.COMPLETED
    assert status.last_restore is not None
    assert status.last_restore.result == "Failed"
    assert "checksum mismatch" in status.last_restore.message
    assert (data / "save.dat").read_text() == "live and newer"
    await converge(node, "tampered", state_is(G.RUNNING))


async def test_backup_of_a_missing_server_fails_with_a_reason(
    node_factory: Callable[[], Node],
) -> None:
    node = node_factory()
    node.store.put(backup("orphan", "nobody"))
    status = await backup_done(node, "orphan")
    assert status.phase is BackupPhase.FAILED
    assert "does not exist" in status.message


async def test_deleting_a_backup_removes_its_archive(node_factory: Callable[[], Node]) -> None:
    node = node_factory()
    node.store.put(Blueprint.model_validate(TOY_BLUEPRINT))
    node.store.put(toy_server("pruned"))
    await converge(node, "pruned", state_is(G.RUNNING))
    node.store.put(backup("old", "pruned"))
    archive = Path((await backup_done(node, "old")).location or "")
    assert archive.exists()
    node.store.mark_deleting(Backup, "agent", "old")
    await node.agent.reconcile_all()
    assert not archive.exists()
    assert node.store.get(Backup, "agent", "old") is None
