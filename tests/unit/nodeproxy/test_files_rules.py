"""Pure file-layer rules: path splitting, deny-list globs, archive entry names and members,
mode masks, bomb accounting, the error -> HTTP table."""

from __future__ import annotations

import errno
import stat
import tarfile
import zipfile
from http import HTTPStatus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stellarstack.nodeproxy.files import (
    HTTP_STATUS,
    Denylist,
    FileError,
    FileErrorCode,
    Quota,
    archive_entry_parts,
    split_path,
)
from stellarstack.nodeproxy.files.archives import (
    ArchiveFormat,
    ExtractionGuard,
    ExtractLimits,
    detect_format,
    plan_tar_member,
    plan_zip_member,
)
from stellarstack.nodeproxy.files.errors import code_for_errno, from_oserror
from stellarstack.nodeproxy.files.paths import chmod_mode, masked_mode
from stellarstack.nodeproxy.files.root import FileType


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        # Every spelling of the server root.
        ("", ()),
        (".", ()),
        ("/", ()),
        ("//", ()),
        ("/.", ()),
        ("./", ()),
        ("/./", ()),
        # A leading `/` is the server root, never the host's.
        ("/a", ("a",)),
        ("/a/b", ("a", "b")),
        ("/plugins/x.jar", ("plugins", "x.jar")),
        ("//etc/passwd", ("etc", "passwd")),
        ("a", ("a",)),
        ("./a", ("a",)),
        ("a//b", ("a", "b")),
        ("a/b/", ("a", "b")),
        ("/a/b/", ("a", "b")),
        ("a//b/./c/", ("a", "b", "c")),
        ("..a/b..", ("..a", "b..")),
        ("/...", ("...",)),
        ("with space/ü", ("with space", "ü")),
        ("x" * 255, ("x" * 255,)),
        ("/" + "a/" * 2047, ("a",) * 2047),
    ],
)
def test_split_path_accepts(path: str, parts: tuple[str, ...]) -> None:
    assert split_path(path) == parts


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("..", "'..'"),
        ("/..", "'..'"),
        ("/../etc/passwd", "'..'"),
        ("//../etc", "'..'"),
        ("a/../b", "'..'"),
        ("a/..", "'..'"),
        ("/a/../../x", "'..'"),
        ("a\x00b", "NUL"),
        ("/\x00", "NUL"),
        ("x" * 256, "name too long"),
        ("/" + "x" * 256, "name too long"),
        ("a/" * 2049, "path too long"),
        ("/" * 4097, "path too long"),
    ],
)
def test_split_path_refuses(path: str, why: str) -> None:
    with pytest.raises(FileError) as caught:
        split_path(path)
    assert caught.value.code is FileErrorCode.BAD_PATH
    assert why in caught.value.message


@given(st.text(max_size=300))
def test_split_path_never_yields_an_escape(path: str) -> None:
    try:
        parts = split_path(path)
    except FileError as exc:
        code: FileErrorCode | None = exc.code
        parts = ()
    else:
        code = None
    assert code in (None, FileErrorCode.BAD_PATH)
    assert all(p not in ("", ".", "..") and "/" not in p and "\x00" not in p for p in parts)


@given(st.text(max_size=300))
def test_a_leading_slash_names_the_same_path_below_the_root(path: str) -> None:
    # "/x" and "x" are one path; a refusal of one is a refusal of the other.
    outcomes = []
    for spelling in (path, "/" + path.lstrip("/")):
        try:
            outcomes.append(split_path(spelling))
        except FileError as exc:
            outcomes.append(exc.code)
    assert outcomes[0] == outcomes[1]


DENY = Denylist.of(["*.jar", "config/secret.yml", "/logs/", "plugins/**/*.key", " ", "data?.db"])


@pytest.mark.parametrize(
    ("path", "denied"),
    [
        ("server.jar", True),
        ("mods/deep/x.jar", True),
        ("server.jar/inside.txt", True),  # a directory named like the pattern
        ("server.jarx", False),
        ("config/secret.yml", True),
        ("other/config/secret.yml", False),  # patterns with / are anchored at the root
        ("config/secret.yml.bak", False),
        ("logs", True),
        ("logs/latest.log", True),
        ("plugins/a/b/c.key", True),
        ("plugins/c.key", True),
        ("data1.db", True),
        ("data12.db", False),
        ("readme.txt", False),
        ("", False),
    ],
)
def test_denylist(path: str, denied: bool) -> None:
    assert DENY.is_denied(split_path(path)) is denied


def test_denylist_check_and_empty_patterns() -> None:
    assert DENY.patterns == ("*.jar", "config/secret.yml", "logs", "plugins/**/*.key", "data?.db")
    with pytest.raises(FileError) as caught:
        DENY.check(("a.jar",))
    assert caught.value.code is FileErrorCode.DENIED
    Denylist().check(("a.jar",))
    assert Denylist.of(["[ab].txt"]).is_denied(("a.txt",))
    assert not Denylist.of(["[!ab].txt"]).is_denied(("a.txt",))


@pytest.mark.parametrize(
    ("name", "parts"),
    [("./a/b", ("a", "b")), ("dir/", ("dir",)), ("./", ()), ("a/./b", ("a", "b"))],
)
def test_archive_entry_parts_accepts(name: str, parts: tuple[str, ...]) -> None:
    assert archive_entry_parts(name) == parts


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a/..",
        "..\\x",
        "a\\b",
        "C:/x",
        "c:x",
        "a\x00b",
        "a\nb",
        "x" * 256,
        "d/" * 65 + "f",
    ],
)
def test_archive_entry_parts_refuses(name: str) -> None:
    with pytest.raises(FileError) as caught:
        archive_entry_parts(name)
    assert caught.value.code is FileErrorCode.UNSAFE_ARCHIVE


@pytest.mark.parametrize(
    ("mode", "directory", "expected"),
    [
        (0o4755, False, 0o755),
        (0o2777, True, 0o777),
        (0o1777, True, 0o777),
        (0o000, False, 0o600),
        (0o000, True, 0o700),
        (0o444, False, 0o644),
    ],
)
def test_masked_mode(mode: int, directory: bool, expected: int) -> None:
    assert masked_mode(mode, directory=directory) == expected


def test_chmod_mode_drops_special_bits() -> None:
    assert chmod_mode(0o7777) == 0o777
    assert chmod_mode(0o400) == 0o400


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\x1f\x8b\x08", ArchiveFormat.TAR_GZ),
        (b"\x28\xb5\x2f\xfd", ArchiveFormat.TAR_ZST),
        (b"\xfd7zXZ\x00", ArchiveFormat.TAR_XZ),
        (b"BZh9", ArchiveFormat.TAR_BZ2),
        (b"PK\x03\x04", ArchiveFormat.ZIP),
        (b"PK\x05\x06", ArchiveFormat.ZIP),
        (bytes(257) + b"ustar\x0000", ArchiveFormat.TAR),
        (b"hello world", None),
        (b"", None),
    ],
)
def test_detect_format(head: bytes, fmt: ArchiveFormat | None) -> None:
    assert detect_format(head) is fmt


def _member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = 10 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    "kind",
    [
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.FIFOTYPE,
        tarfile.GNUTYPE_SPARSE,
    ],
)
def test_plan_tar_member_refuses_non_regular(kind: bytes) -> None:
    with pytest.raises(FileError) as caught:
        plan_tar_member(_member("x", kind), ExtractLimits())
    assert caught.value.code is FileErrorCode.UNSAFE_ARCHIVE
    assert caught.value.path == "x"


def test_plan_tar_member() -> None:
    planned = plan_tar_member(_member("./a/b.sh", mode=0o4755), ExtractLimits())
    assert planned is not None
    assert (planned.parts, planned.type, planned.mode, planned.size) == (
        ("a", "b.sh"),
        FileType.FILE,
        0o755,
        10,
    )
    assert plan_tar_member(_member("./", tarfile.DIRTYPE), ExtractLimits()) is None


def _zinfo(name: str, mode: int = 0, size: int = 0, csize: int = 0) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    info.file_size = size
    info.compress_size = csize
    return info


def test_plan_zip_member() -> None:
    limits = ExtractLimits(ratio_grace_bytes=1000, max_ratio=10)
    planned = plan_zip_member(_zinfo("a/b", stat.S_IFREG | 0o6755, 50, 10), limits)
    assert planned is not None
    assert (planned.mode, planned.size, planned.type) == (0o755, 50, FileType.FILE)
    dir_plan = plan_zip_member(_zinfo("d/"), limits)
    assert dir_plan is not None
    assert dir_plan.type is FileType.DIRECTORY
    assert dir_plan.mode == 0o755
    for bad, code in [
        (_zinfo("l", stat.S_IFLNK | 0o777), FileErrorCode.UNSAFE_ARCHIVE),
        (_zinfo("c", stat.S_IFCHR | 0o666), FileErrorCode.UNSAFE_ARCHIVE),
        (_zinfo("bomb", stat.S_IFREG | 0o644, 10_000, 10), FileErrorCode.TOO_LARGE),
        (_zinfo("d/", stat.S_IFDIR | 0o755, 5, 5), FileErrorCode.BAD_ARCHIVE),
    ]:
        with pytest.raises(FileError) as caught:
            plan_zip_member(bad, limits)
        assert caught.value.code is code
    encrypted = _zinfo("e")
    encrypted.flag_bits |= 0x1
    with pytest.raises(FileError) as caught:
        plan_zip_member(encrypted, limits)
    assert caught.value.code is FileErrorCode.BAD_ARCHIVE


def test_extraction_guard() -> None:
    guard = ExtractionGuard(
        ExtractLimits(max_total_bytes=1000, max_entries=2, ratio_grace_bytes=100, max_ratio=5),
        archive_size=50,
    )
    guard.entry("a")
    guard.entry("b")
    with pytest.raises(FileError) as caught:
        guard.entry("c")
    assert caught.value.code is FileErrorCode.LIMIT_REACHED
    guard.data("a", 250)  # ratio 5 exactly: allowed
    with pytest.raises(FileError) as caught:
        guard.data("a", 1)
    assert caught.value.code is FileErrorCode.TOO_LARGE
    with pytest.raises(FileError) as caught:
        ExtractionGuard(ExtractLimits(max_total_bytes=10), 10**9).declared("x", 11)
    assert caught.value.code is FileErrorCode.TOO_LARGE


def test_quota_budget() -> None:
    budget = Quota(100, lambda: 60).start("f", freed=10)
    budget.ensure_fits(50)
    with pytest.raises(FileError):
        budget.ensure_fits(51)
    budget.charge(50)
    with pytest.raises(FileError) as caught:
        budget.charge(1)
    assert caught.value.code is FileErrorCode.QUOTA_EXCEEDED
    unlimited = Quota.unlimited().start("f")
    unlimited.charge(10**15)


def test_every_code_has_one_http_status() -> None:
    assert set(HTTP_STATUS) == set(FileErrorCode)
    assert HTTP_STATUS[FileErrorCode.DENIED] is HTTPStatus.FORBIDDEN
    assert HTTP_STATUS[FileErrorCode.QUOTA_EXCEEDED] is HTTPStatus.INSUFFICIENT_STORAGE
    assert FileError(FileErrorCode.NOT_FOUND, "x").http_status is HTTPStatus.NOT_FOUND


def test_errno_mapping() -> None:
    assert code_for_errno(errno.ENOENT) is FileErrorCode.NOT_FOUND
    assert code_for_errno(errno.ELOOP) is FileErrorCode.SYMLINK_REFUSED
    assert code_for_errno(errno.EIO) is FileErrorCode.IO_ERROR
    assert code_for_errno(None) is FileErrorCode.IO_ERROR
    err = from_oserror(OSError(errno.ENOSPC, "No space left", "/host/path/secret"), "rel/path")
    assert err.code is FileErrorCode.NO_SPACE
    assert "/host" not in str(err)
    assert err.path == "rel/path"
