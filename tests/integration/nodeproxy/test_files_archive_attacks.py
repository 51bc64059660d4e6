"""Hostile archives: zip slip, absolute names, links, devices, bombs, lying sizes. Each one is
refused as a whole, the destination is left exactly as it was and nothing outside changes."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zstandard

from stellarstack.nodeproxy.files import Denylist, FileError, FileErrorCode, SafeRoot
from stellarstack.nodeproxy.files.archives import ExtractLimits, extract_archive
from support.files_sandbox import Sandbox

MIB = 1024 * 1024
COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "tar": lambda b: b,
    "tar.gz": gzip.compress,
    "tar.zst": lambda b: zstandard.ZstdCompressor().compress(b),
    "tar.xz": lzma.compress,
    "tar.bz2": bz2.compress,
}


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], compress: str = "tar") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return COMPRESSORS[compress](buf.getvalue())


def reg(name: str, data: bytes = b"data", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def zip_bytes(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def zinfo(name: str, unix_mode: int = 0) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = unix_mode << 16
    return info


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[Sandbox, SafeRoot]]:
    box = Sandbox.create(tmp_path)
    (box.root / "dest").mkdir()
    (box.root / "dest" / "existing.txt").write_bytes(b"keep me\n")
    (box.root / "dest" / "sub").mkdir()
    with SafeRoot(box.root, denylist=Denylist.of(["*.secret"]), quota_bytes=256 * MIB) as root:
        yield box, root


def assert_refused(
    box: Sandbox,
    root: SafeRoot,
    payload: bytes,
    code: FileErrorCode,
    *,
    limits: ExtractLimits | None = None,
    name: str = "evil.archive",
) -> FileError:
    (box.root / name).write_bytes(payload)
    before_root = box.snapshot_root()
    before_outside = box.snapshot_outside()
    with pytest.raises(FileError) as caught:
        extract_archive(root, name, "dest", limits=limits)
    assert caught.value.code is code, caught.value
    assert box.snapshot_root() == before_root
    assert box.snapshot_outside() == before_outside
    assert not list(box.root.rglob(".stellarstack-*"))
    return caught.value


TAR_ATTACKS: dict[str, tuple[list[tuple[tarfile.TarInfo, bytes | None]], FileErrorCode]] = {
    "dotdot": ([reg("ok.txt"), reg("../outside/canary.txt")], FileErrorCode.UNSAFE_ARCHIVE),
    "dotdot_deep": ([reg("a/b/../../../x")], FileErrorCode.UNSAFE_ARCHIVE),
    "absolute": ([reg("ok.txt"), reg("/tmp/evil.txt")], FileErrorCode.UNSAFE_ARCHIVE),
    # Client paths may start with `/` (the server root); archive member names still may not.
    "absolute_root": ([reg("/")], FileErrorCode.UNSAFE_ARCHIVE),
    "double_slash": ([reg("ok.txt"), reg("//etc/passwd")], FileErrorCode.UNSAFE_ARCHIVE),
    "absolute_dotdot": ([reg("/../outside/canary.txt")], FileErrorCode.UNSAFE_ARCHIVE),
    "backslash": ([reg("..\\..\\evil.txt")], FileErrorCode.UNSAFE_ARCHIVE),
    "symlink": ([special("ln", tarfile.SYMTYPE, "/")], FileErrorCode.UNSAFE_ARCHIVE),
    "symlink_then_file": (
        [reg("ok.txt"), special("ln", tarfile.SYMTYPE, "../outside"), reg("ln/canary.txt")],
        FileErrorCode.UNSAFE_ARCHIVE,
    ),
    "hardlink": (
        [reg("ok.txt"), special("hl", tarfile.LNKTYPE, "../outside/canary.txt")],
        FileErrorCode.UNSAFE_ARCHIVE,
    ),
    "char_device": ([special("null", tarfile.CHRTYPE)], FileErrorCode.UNSAFE_ARCHIVE),
    "block_device": ([special("sda", tarfile.BLKTYPE)], FileErrorCode.UNSAFE_ARCHIVE),
    "fifo": ([special("pipe", tarfile.FIFOTYPE)], FileErrorCode.UNSAFE_ARCHIVE),
    "duplicate": ([reg("a.txt"), reg("a.txt", b"again")], FileErrorCode.UNSAFE_ARCHIVE),
    "file_then_child": ([reg("a"), reg("a/b")], FileErrorCode.UNSAFE_ARCHIVE),
    "denied": ([reg("ok.txt"), reg("conf/db.secret")], FileErrorCode.DENIED),
    "collides_with_dir": ([reg("ok.txt"), reg("sub")], FileErrorCode.EXISTS),
    "nul_free_control_char": ([reg("a\nb")], FileErrorCode.UNSAFE_ARCHIVE),
}


@pytest.mark.parametrize("compress", sorted(COMPRESSORS))
@pytest.mark.parametrize("attack", sorted(TAR_ATTACKS))
def test_hostile_tar_is_refused_whole(
    sandbox: tuple[Sandbox, SafeRoot], attack: str, compress: str
) -> None:
    box, root = sandbox
    members, code = TAR_ATTACKS[attack]
    assert_refused(box, root, tar_bytes(members, compress), code)


def test_tar_bomb_by_ratio(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    zeros = b"\x00" * (8 * MIB)
    limits = ExtractLimits(ratio_grace_bytes=MIB, max_ratio=100)
    payload = tar_bytes([reg("zeros.bin", zeros)], "tar.zst")
    assert len(payload) * 100 < len(zeros)
    assert_refused(box, root, payload, FileErrorCode.TOO_LARGE, limits=limits)


def test_tar_bomb_by_total_size(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    limits = ExtractLimits(max_total_bytes=2 * MIB)
    members = [reg(f"f{i}.bin", bytes(MIB)) for i in range(3)]
    assert_refused(box, root, tar_bytes(members, "tar.gz"), FileErrorCode.TOO_LARGE, limits=limits)


def test_tar_declaring_a_huge_size_is_refused_before_reading(
    sandbox: tuple[Sandbox, SafeRoot],
) -> None:
    box, root = sandbox
    header = tarfile.TarInfo("huge.bin")
    header.size = 64 * 1024**3
    # Only the header: the data that would follow is never there.
    payload = gzip.compress(header.tobuf(format=tarfile.PAX_FORMAT) + bytes(1024))
    assert_refused(box, root, payload, FileErrorCode.TOO_LARGE)


def test_tar_with_too_many_entries(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    members = [reg(f"f{i}", b"") for i in range(60)]
    limits = ExtractLimits(max_entries=50)
    assert_refused(
        box, root, tar_bytes(members, "tar.gz"), FileErrorCode.LIMIT_REACHED, limits=limits
    )


def test_tar_too_deep(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    payload = tar_bytes([reg("/".join(["d"] * 10) + "/f")])
    assert_refused(
        box, root, payload, FileErrorCode.UNSAFE_ARCHIVE, limits=ExtractLimits(max_depth=5)
    )


def test_truncated_tar(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    payload = tar_bytes([reg("a.bin", bytes(100_000))])
    assert_refused(box, root, gzip.compress(payload[:20_000]), FileErrorCode.BAD_ARCHIVE)


def test_setuid_bits_are_masked_not_kept(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    dir_info = tarfile.TarInfo("bin")
    dir_info.type = tarfile.DIRTYPE
    dir_info.mode = 0o1777
    payload = tar_bytes([(dir_info, None), reg("bin/suid", b"#!/bin/sh\n", mode=0o6755)])
    (box.root / "a.tar").write_bytes(payload)
    extract_archive(root, "a.tar", "dest")
    assert stat.S_IMODE((box.root / "dest/bin/suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((box.root / "dest/bin").stat().st_mode) == 0o777


def test_read_only_modes_keep_owner_write(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    (box.root / "a.tar").write_bytes(tar_bytes([reg("ro.txt", mode=0o000)]))
    extract_archive(root, "a.tar", "dest")
    assert stat.S_IMODE((box.root / "dest/ro.txt").stat().st_mode) == 0o600


ZIP_ATTACKS: dict[str, tuple[list[tuple[zipfile.ZipInfo | str, bytes]], FileErrorCode]] = {
    "dotdot": ([("ok.txt", b"x"), ("../outside/canary.txt", b"x")], FileErrorCode.UNSAFE_ARCHIVE),
    "absolute": ([("/etc/evil", b"x")], FileErrorCode.UNSAFE_ARCHIVE),
    "backslash": ([("..\\evil.txt", b"x")], FileErrorCode.UNSAFE_ARCHIVE),
    "drive_letter": ([("C:/evil.txt", b"x")], FileErrorCode.UNSAFE_ARCHIVE),
    "symlink": (
        [("ok.txt", b"x"), (zinfo("ln", stat.S_IFLNK | 0o777), b"../outside")],
        FileErrorCode.UNSAFE_ARCHIVE,
    ),
    "symlink_then_file": (
        [(zinfo("ln", stat.S_IFLNK | 0o777), b"../outside"), ("ln/canary.txt", b"x")],
        FileErrorCode.UNSAFE_ARCHIVE,
    ),
    "device": ([(zinfo("dev", stat.S_IFCHR | 0o666), b"")], FileErrorCode.UNSAFE_ARCHIVE),
    "fifo": ([(zinfo("pipe", stat.S_IFIFO | 0o666), b"")], FileErrorCode.UNSAFE_ARCHIVE),
    "duplicate": ([("a.txt", b"x"), ("a.txt", b"y")], FileErrorCode.UNSAFE_ARCHIVE),
    "denied": ([("ok.txt", b"x"), ("x/db.secret", b"y")], FileErrorCode.DENIED),
    "collides_with_dir": ([("ok.txt", b"x"), ("sub", b"y")], FileErrorCode.EXISTS),
}


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
@pytest.mark.parametrize("attack", sorted(ZIP_ATTACKS))
def test_hostile_zip_is_refused_whole(sandbox: tuple[Sandbox, SafeRoot], attack: str) -> None:
    box, root = sandbox
    entries, code = ZIP_ATTACKS[attack]
    assert_refused(box, root, zip_bytes(entries), code)


def test_encrypted_zip_entry_is_refused(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    # zipfile cannot write encrypted entries; set the "encrypted" flag bit in every header.
    data = bytearray(zip_bytes([("enc.txt", b"secret")]))
    struct.pack_into("<H", data, 6, struct.unpack_from("<H", data, 6)[0] | 0x1)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<H", data, central + 8, struct.unpack_from("<H", data, central + 8)[0] | 0x1)
    assert_refused(box, root, bytes(data), FileErrorCode.BAD_ARCHIVE)


def test_zip_bomb_by_ratio(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    limits = ExtractLimits(ratio_grace_bytes=MIB, max_ratio=100)
    payload = zip_bytes([("zeros.bin", bytes(16 * MIB))])
    assert_refused(box, root, payload, FileErrorCode.TOO_LARGE, limits=limits)


def test_zip_bomb_by_many_small_entries(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    payload = zip_bytes([(f"f{i}", b"") for i in range(60)])
    assert_refused(
        box, root, payload, FileErrorCode.LIMIT_REACHED, limits=ExtractLimits(max_entries=50)
    )


def _patch_sizes(payload: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size in the (first) local header and central directory."""
    data = bytearray(payload)
    assert data[:4] == b"PK\x03\x04"
    struct.pack_into("<I", data, 22, size)
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, size)
    return bytes(data)


@pytest.mark.parametrize("declared", [100, 2 * MIB, 0xFFFF_FFFE])
def test_zip_with_lying_sizes(sandbox: tuple[Sandbox, SafeRoot], declared: int) -> None:
    box, root = sandbox
    payload = _patch_sizes(zip_bytes([("a.bin", b"A" * MIB)]), declared)
    limits = ExtractLimits(max_total_bytes=64 * MIB, ratio_grace_bytes=4 * MIB)
    code = FileErrorCode.TOO_LARGE if declared > 64 * MIB else FileErrorCode.BAD_ARCHIVE
    assert_refused(box, root, payload, code, limits=limits)


def test_a_good_prefix_is_not_left_behind(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    members = [reg(f"good{i}.txt") for i in range(20)]
    members.append(special("ln", tarfile.SYMTYPE, "/"))
    assert_refused(box, root, tar_bytes(members, "tar.gz"), FileErrorCode.UNSAFE_ARCHIVE)


def test_extraction_over_quota_leaves_nothing(tmp_path: Path) -> None:
    box = Sandbox.create(tmp_path)
    (box.root / "dest").mkdir()
    with SafeRoot(box.root, quota_bytes=3 * MIB) as root:
        members = [reg(f"f{i}.bin", bytes(MIB)) for i in range(4)]
        assert_refused(box, root, tar_bytes(members, "tar.gz"), FileErrorCode.QUOTA_EXCEEDED)
        assert_refused(
            box,
            root,
            zip_bytes([(f"f{i}", bytes(MIB)) for i in range(4)]),
            FileErrorCode.QUOTA_EXCEEDED,
            name="z.zip",
        )


def test_unknown_format(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    assert_refused(box, root, b"not an archive at all" * 100, FileErrorCode.BAD_ARCHIVE)


def test_a_refused_extraction_into_a_new_directory_leaves_no_directory(
    sandbox: tuple[Sandbox, SafeRoot],
) -> None:
    box, root = sandbox
    (box.root / "evil.tar").write_bytes(tar_bytes([reg("ok"), special("ln", tarfile.SYMTYPE, "/")]))
    with pytest.raises(FileError):
        extract_archive(root, "evil.tar", "new/deeper/dest")
    assert not (box.root / "new").exists()


def test_implied_directories_are_created_traversable(sandbox: tuple[Sandbox, SafeRoot]) -> None:
    box, root = sandbox
    (box.root / "a.zip").write_bytes(zip_bytes([("x/y/z.txt", b"z")]))
    extract_archive(root, "a.zip", "dest")
    assert stat.S_IMODE((box.root / "dest/x/y").stat().st_mode) & 0o755 == 0o755


@pytest.mark.parametrize("destination", ["/../outside", "//..", "/dest/../../outside", "/.."])
def test_a_destination_climbing_out_is_refused_with_a_leading_slash(
    sandbox: tuple[Sandbox, SafeRoot], destination: str
) -> None:
    box, root = sandbox
    (box.root / "good.tar").write_bytes(tar_bytes([reg("canary.txt", b"overwritten")]))
    before_root, before_outside = box.snapshot_root(), box.snapshot_outside()
    with pytest.raises(FileError) as caught:
        extract_archive(root, "/good.tar", destination)
    assert caught.value.code is FileErrorCode.BAD_PATH
    assert box.snapshot_root() == before_root
    assert box.snapshot_outside() == before_outside


def test_hostile_archive_named_with_a_leading_slash_is_refused_whole(
    sandbox: tuple[Sandbox, SafeRoot],
) -> None:
    box, root = sandbox
    payload = tar_bytes([reg("ok.txt"), reg("../outside/canary.txt")], "tar.gz")
    (box.root / "evil.tar.gz").write_bytes(payload)
    before_root, before_outside = box.snapshot_root(), box.snapshot_outside()
    for destination in ("/dest", "//dest/", "/", ""):
        with pytest.raises(FileError) as caught:
            extract_archive(root, "/evil.tar.gz", destination)
        assert caught.value.code is FileErrorCode.UNSAFE_ARCHIVE
    assert box.snapshot_root() == before_root
    assert box.snapshot_outside() == before_outside


@pytest.mark.parametrize("destination", ["/", "", ".", "/dest", "//dest/"])
def test_a_leading_slash_destination_is_below_the_root(
    sandbox: tuple[Sandbox, SafeRoot], destination: str
) -> None:
    box, root = sandbox
    (box.root / "good.zip").write_bytes(zip_bytes([("unpacked/x.txt", b"x")]))
    extract_archive(root, "/good.zip", destination)
    below = box.root / destination.strip("/.") / "unpacked" / "x.txt"
    assert below.read_bytes() == b"x"
