"""Symlink attacks on every file operation: links planted in the root that point outside it
(absolute, relative, `../../`, dangling, chained, in the middle of a path) and a directory
swapped for a link while operations run. Nothing outside the root may be read or changed."""

from __future__ import annotations

import asyncio
import ctypes
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stellarstack.nodeproxy.files import FileError, FileErrorCode, FileType, SafeRoot
from stellarstack.nodeproxy.files.archives import (
    ArchiveFormat,
    create_archive,
    create_archive_file,
    extract_archive,
)
from support.files_sandbox import SECRET, Sandbox

Op = Callable[[SafeRoot, str], object]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[Sandbox, SafeRoot]]:
    box = Sandbox.create(tmp_path)
    root, outside = box.root, box.outside
    (root / "inside.txt").write_bytes(b"inside\n")
    (root / "real").mkdir()
    # Directory links: every way of spelling "outside".
    (root / "abs_dir").symlink_to(outside)
    (root / "rel_dir").symlink_to("../outside")
    (root / "up_dir").symlink_to("../" * 12 + str(outside).lstrip("/"))
    (root / "chain_mid").symlink_to(outside)
    (root / "chain_dir").symlink_to("chain_mid")
    (root / "real" / "sub").symlink_to(outside)
    (root / "dangling_dir").symlink_to("../outside/missing")
    # File links.
    (root / "abs_file").symlink_to(outside / "canary.txt")
    (root / "rel_file").symlink_to("../outside/canary.txt")
    (root / "chain_file_mid").symlink_to("../outside/canary.txt")
    (root / "chain_file").symlink_to("chain_file_mid")
    (root / "dangling_file").symlink_to("../outside/missing.txt")
    with SafeRoot(root) as safe:
        extract_src = io.BytesIO()
        create_archive(safe, ["inside.txt"], extract_src, ArchiveFormat.TAR_GZ)
        (root / "good.tar.gz").write_bytes(extract_src.getvalue())
        yield box, safe


# A leading `/` names the server root, so "/abs_dir" is the same planted link as "abs_dir".
DIR_LINKS = [
    "abs_dir",
    "rel_dir",
    "up_dir",
    "chain_dir",
    "real/sub",
    "dangling_dir",
    "/abs_dir",
    "//rel_dir",
    "/./real/sub",
]
FILE_LINKS = [
    "abs_file",
    "rel_file",
    "chain_file",
    "dangling_file",
    "abs_dir",
    "real/sub",
    "/abs_file",
    "//chain_file",
]


def _write_async(r: SafeRoot, path: str) -> object:
    async def body() -> object:
        async def chunks() -> Iterator[bytes]:  # type: ignore[misc]
            yield b"pwned"

        return await r.write_async(path, chunks())

    return asyncio.run(body())


def _drain(result: object) -> object:
    """Consume lazy results (walk) and read opened files, so a leak would show."""
    if hasattr(result, "chunks"):
        with result:  # type: ignore[attr-defined]
            return b"".join(result.chunks())  # type: ignore[attr-defined]
    if hasattr(result, "__next__"):
        return list(result)  # type: ignore[call-overload]
    return result


# Each operation gets a directory link L and works on paths *through* it.
THROUGH_OPS: dict[str, Op] = {
    "stat": lambda r, link: r.stat(f"{link}/canary.txt"),
    "list_dir": lambda r, link: r.list_dir(f"{link}/dir"),
    "walk": lambda r, link: r.walk(f"{link}/dir"),
    "open_read": lambda r, link: r.open_read(f"{link}/canary.txt"),
    "open_read_range": lambda r, link: r.open_read(f"{link}/canary.txt", offset=2, length=4),
    "read_bytes": lambda r, link: r.read_bytes(f"{link}/canary.txt"),
    "write_existing": lambda r, link: r.write(f"{link}/canary.txt", [b"pwned"]),
    "write_new": lambda r, link: r.write(f"{link}/new.txt", [b"pwned"]),
    "write_async": lambda r, link: _write_async(r, f"{link}/canary.txt"),
    "mkdir_parents": lambda r, link: r.mkdir(f"{link}/newdir/deeper"),
    "mkdir": lambda r, link: r.mkdir(f"{link}/newdir", parents=False),
    "rename_from": lambda r, link: r.rename(f"{link}/canary.txt", "stolen.txt"),
    "rename_to": lambda r, link: r.rename("inside.txt", f"{link}/canary.txt", overwrite=True),
    "rename_to_new": lambda r, link: r.rename("inside.txt", f"{link}/new.txt"),
    "copy_from": lambda r, link: r.copy(f"{link}/canary.txt", "stolen.txt"),
    "copy_dir_from": lambda r, link: r.copy(f"{link}/dir", "stolen"),
    "copy_to": lambda r, link: r.copy("inside.txt", f"{link}/canary.txt", overwrite=True),
    "delete_file": lambda r, link: r.delete(f"{link}/canary.txt"),
    "delete_dir": lambda r, link: r.delete(f"{link}/dir"),
    "chmod": lambda r, link: r.chmod(f"{link}/canary.txt", 0o777),
    "set_mtime": lambda r, link: r.set_mtime(f"{link}/canary.txt", 0),
    "search_names": lambda r, link: r.search_names("*", path=f"{link}/dir"),
    "search_content": lambda r, link: r.search_content("CANARY", path=f"{link}/dir"),
    "archive_file": lambda r, link: create_archive(
        r, [f"{link}/canary.txt"], io.BytesIO(), ArchiveFormat.TAR_GZ
    ),
    "archive_dir": lambda r, link: create_archive(
        r, [f"{link}/dir"], io.BytesIO(), ArchiveFormat.ZIP
    ),
    "archive_dest": lambda r, link: create_archive_file(
        r, ["inside.txt"], f"{link}/out.tar.gz", ArchiveFormat.TAR_GZ
    ),
    "extract_into": lambda r, link: extract_archive(r, "good.tar.gz", f"{link}/dir"),
    "extract_from": lambda r, link: extract_archive(r, f"{link}/canary.txt", "x"),
}


@pytest.mark.parametrize("link", DIR_LINKS)
@pytest.mark.parametrize("op", sorted(THROUGH_OPS))
def test_no_operation_goes_through_a_link(
    sandbox: tuple[Sandbox, SafeRoot], op: str, link: str
) -> None:
    box, root = sandbox
    before = box.snapshot_outside()
    with pytest.raises(FileError) as caught:
        _drain(THROUGH_OPS[op](root, link))
    assert caught.value.code is FileErrorCode.SYMLINK_REFUSED, caught.value
    assert box.snapshot_outside() == before
    assert str(box.outside) not in str(caught.value)


@pytest.mark.parametrize("climb", ["..", "/..", "//..", "/./..", "/real/../.."])
@pytest.mark.parametrize("op", sorted(THROUGH_OPS))
def test_climbing_out_is_refused_however_it_is_spelled(
    sandbox: tuple[Sandbox, SafeRoot], op: str, climb: str
) -> None:
    box, root = sandbox
    before = box.snapshot_outside()
    with pytest.raises(FileError) as caught:
        _drain(THROUGH_OPS[op](root, f"{climb}/outside"))
    assert caught.value.code is FileErrorCode.BAD_PATH, caught.value
    assert box.snapshot_outside() == before


@pytest.mark.parametrize("op", sorted(THROUGH_OPS))
def test_the_hosts_own_absolute_path_names_a_path_inside_the_root(
    sandbox: tuple[Sandbox, SafeRoot], op: str
) -> None:
    """A client that sends the host path of the neighbour (`/tmp/.../outside`) names a path
    of that spelling below the server root, which does not exist: never the neighbour."""
    box, root = sandbox
    before = box.snapshot_outside()
    refusals: set[FileErrorCode] = set()
    for spelling in (str(box.outside), "/" + str(box.outside)):
        try:
            result = _drain(THROUGH_OPS[op](root, spelling))
        except FileError as exc:
            refusals.add(exc.code)
        else:
            assert SECRET not in repr(result).encode()
    assert refusals <= {FileErrorCode.NOT_FOUND}
    assert box.snapshot_outside() == before


# Operations on the link itself: either refused, or acting on the link and never its target.
FINAL_OPS: dict[str, tuple[Op, FileErrorCode | None]] = {
    "open_read": (lambda r, p: r.open_read(p), FileErrorCode.SYMLINK_REFUSED),
    "read_bytes": (lambda r, p: r.read_bytes(p), FileErrorCode.SYMLINK_REFUSED),
    "write": (lambda r, p: r.write(p, [b"pwned"]), FileErrorCode.SYMLINK_REFUSED),
    "write_no_overwrite": (
        lambda r, p: r.write(p, [b"pwned"], overwrite=False),
        FileErrorCode.SYMLINK_REFUSED,
    ),
    "write_async": (_write_async, FileErrorCode.SYMLINK_REFUSED),
    "chmod": (lambda r, p: r.chmod(p, 0o777), FileErrorCode.SYMLINK_REFUSED),
    "copy_from": (lambda r, p: r.copy(p, "stolen"), FileErrorCode.SYMLINK_REFUSED),
    "copy_over": (
        lambda r, p: r.copy("inside.txt", p, overwrite=True),
        FileErrorCode.SYMLINK_REFUSED,
    ),
    "list_dir": (lambda r, p: r.list_dir(p), FileErrorCode.SYMLINK_REFUSED),
    "walk": (lambda r, p: r.walk(p), FileErrorCode.SYMLINK_REFUSED),
    "search_names": (
        lambda r, p: r.search_names("*", path=p),
        FileErrorCode.SYMLINK_REFUSED,
    ),
    "search_content": (
        lambda r, p: r.search_content("CANARY", path=p),
        FileErrorCode.SYMLINK_REFUSED,
    ),
    "mkdir_parents": (lambda r, p: r.mkdir(p), FileErrorCode.SYMLINK_REFUSED),
    "mkdir": (lambda r, p: r.mkdir(p, parents=False), FileErrorCode.EXISTS),
    "extract_from": (lambda r, p: extract_archive(r, p, "x"), FileErrorCode.SYMLINK_REFUSED),
    "extract_into": (
        lambda r, p: extract_archive(r, "good.tar.gz", p),
        FileErrorCode.SYMLINK_REFUSED,
    ),
    "archive_dest": (
        lambda r, p: create_archive_file(r, ["inside.txt"], p, ArchiveFormat.TAR_GZ),
        FileErrorCode.SYMLINK_REFUSED,
    ),
    # These act on the link itself.
    "stat": (lambda r, p: r.stat(p), None),
    "delete": (lambda r, p: r.delete(p), None),
    "rename_link": (lambda r, p: r.rename(p, "moved-link"), None),
    "rename_over_link": (lambda r, p: r.rename("inside.txt", p, overwrite=True), None),
    "set_mtime": (lambda r, p: r.set_mtime(p, 0), None),
    "archive_select": (
        lambda r, p: create_archive(r, [p], io.BytesIO(), ArchiveFormat.TAR_ZST),
        None,
    ),
}


@pytest.mark.parametrize("link", FILE_LINKS)
@pytest.mark.parametrize("op", sorted(FINAL_OPS))
def test_operations_on_a_link_never_reach_its_target(
    sandbox: tuple[Sandbox, SafeRoot], op: str, link: str
) -> None:
    box, root = sandbox
    before = box.snapshot_outside()
    func, expected = FINAL_OPS[op]
    if expected is None:
        result = _drain(func(root, link))
        assert SECRET not in repr(result).encode()
    else:
        with pytest.raises(FileError) as caught:
            _drain(func(root, link))
        assert caught.value.code is expected, caught.value
    assert box.snapshot_outside() == before


def test_stat_and_listing_show_links_as_links(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    _, root = sandbox
    info = root.stat("rel_file")
    assert info.type is FileType.SYMLINK
    assert info.link_target == "../outside/canary.txt"
    listed = {i.name: i for i in root.list_dir("")}
    assert listed["abs_dir"].type is FileType.SYMLINK
    assert listed["dangling_dir"].link_target == "../outside/missing"


def test_delete_of_a_tree_holding_links_removes_only_the_links(
    sandbox: tuple[Sandbox, SafeRoot],
) -> None:
    box, root = sandbox
    before = box.snapshot_outside()
    root.delete("real")
    assert not (box.root / "real").exists()
    assert box.snapshot_outside() == before


def test_copy_and_archive_of_a_tree_skip_links(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    (box.root / "real" / "file.txt").write_bytes(b"ok")
    report = root.copy("real", "copied")
    assert report.skipped == ("real/sub",)
    assert sorted(p.name for p in (box.root / "copied").iterdir()) == ["file.txt"]
    out = io.BytesIO()
    created = create_archive(root, ["real"], out, ArchiveFormat.TAR_GZ)
    assert created.skipped == ("real/sub",)
    assert SECRET not in out.getvalue()


def test_a_device_or_fifo_in_the_root_is_never_opened(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    os.mkfifo(box.root / "pipe")
    # Opening a FIFO for reading would block forever; the O_PATH check refuses it first.
    with pytest.raises(FileError) as caught:
        root.open_read("pipe")
    assert caught.value.code is FileErrorCode.NOT_A_REGULAR_FILE
    with pytest.raises(FileError) as caught:
        root.write("pipe", [b"x"])
    assert caught.value.code is FileErrorCode.NOT_A_REGULAR_FILE
    result = root.search_content("x")
    assert result.matches == []


# -- the race: a directory swapped for a link while operations run ---------------------------

_RENAME_EXCHANGE = 2


def _exchange(dir_fd: int, a: str, b: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(dir_fd, a.encode(), dir_fd, b.encode(), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


RACE_OPS: dict[str, Op] = {
    "read": lambda r, p: r.read_bytes(f"{p}/f.txt"),
    "range": lambda r, p: r.open_read(f"{p}/f.txt", offset=1, length=8),
    "write": lambda r, p: r.write(f"{p}/f.txt", [b"pwned"]),
    "write_new": lambda r, p: r.write(f"{p}/new-{time.monotonic_ns()}", [b"pwned"]),
    "chmod": lambda r, p: r.chmod(f"{p}/f.txt", 0o777),
    "set_mtime": lambda r, p: r.set_mtime(f"{p}/f.txt", 0),
    "delete_file": lambda r, p: r.delete(f"{p}/canary.txt"),
    "delete_dir": lambda r, p: r.delete(f"{p}/dir"),
    "mkdir": lambda r, p: r.mkdir(f"{p}/made/deeper"),
    "list": lambda r, p: r.list_dir(p),
    "walk": lambda r, p: r.walk(p),
    "copy_dir": lambda r, p: r.copy(p, f"copy-{time.monotonic_ns()}"),
    "copy_file": lambda r, p: r.copy(f"{p}/f.txt", f"copyf-{time.monotonic_ns()}"),
    "rename_into": lambda r, p: r.rename("inside.txt", f"{p}/f.txt", overwrite=True),
    "search": lambda r, p: r.search_content("CANARY", path=p),
    "archive": lambda r, p: create_archive(r, [p], io.BytesIO(), ArchiveFormat.TAR_GZ),
    "extract": lambda r, p: extract_archive(r, "good.tar.gz", p),
}


@pytest.mark.parametrize("op", sorted(RACE_OPS))
def test_swapping_a_directory_for_a_link_mid_operation_never_escapes(
    sandbox: tuple[Sandbox, SafeRoot], op: str
) -> None:
    box, root = sandbox
    flip = box.root / "flip"

    def refill() -> None:
        # Whichever of flip/alt is the real directory gets its files back.
        for name in ("flip", "alt"):
            d = box.root / name
            if d.is_dir() and not d.is_symlink():
                (d / "dir").mkdir(exist_ok=True)
                for rel in ("f.txt", "canary.txt", "dir/f.txt"):
                    if not (d / rel).exists():
                        (d / rel).write_bytes(b"inside\n")
        if not (box.root / "inside.txt").exists():
            (box.root / "inside.txt").write_bytes(b"inside\n")

    flip.mkdir()
    (box.root / "alt").symlink_to(box.outside)
    refill()
    before = box.snapshot_outside()
    stop = threading.Event()
    swaps = 0
    root_fd = os.open(box.root, os.O_PATH | os.O_DIRECTORY)

    def swapper() -> None:
        nonlocal swaps
        deadline = time.monotonic() + 1.5
        while not stop.is_set() and swaps < 20_000 and time.monotonic() < deadline:
            _exchange(root_fd, "flip", "alt")
            swaps += 1

    thread = threading.Thread(target=swapper)
    thread.start()
    outcomes: dict[str, int] = {}
    try:
        for _ in range(300):
            if not thread.is_alive():
                break
            try:
                result = _drain(RACE_OPS[op](root, "flip"))
                assert SECRET not in repr(result).encode()
                outcomes["ok"] = outcomes.get("ok", 0) + 1
            except FileError as exc:
                outcomes[exc.code.value] = outcomes.get(exc.code.value, 0) + 1
            if outcomes.get("ok", 0) % 10 == 0:
                refill()
    finally:
        stop.set()
        thread.join(timeout=10)
        os.close(root_fd)
    assert swaps > 0
    assert box.snapshot_outside() == before, outcomes
    # Every failure was a typed refusal; while flip was a link, that is what happened.
    assert set(outcomes) <= {"ok", "symlink_refused", "not_found", "exists", "not_a_directory"}
