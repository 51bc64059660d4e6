"""Archives of a server's files: create tar.gz / tar.zst / zip, extract tar(.gz/.zst/.xz/.bz2)
and zip - both confined to a `SafeRoot`.

Decisions:

- Links are never archived: creation skips symlinks (and devices, FIFOs, sockets) and reports
  them in `CreateReport.skipped`. Extraction refuses links, so this keeps "what we create we can
  extract" true, and an archive can never carry a link into another server's root.
- Denied paths are skipped (and reported) when creating; an archive holding an entry whose
  destination is denied is refused as a whole when extracting (nothing is written).
- Extraction refuses the *whole* archive, naming the first offending entry, for: absolute
  names, `..`, backslashes, symlinks, hardlinks, devices, FIFOs, sparse files, encrypted zip
  entries, duplicate entries, sizes that lie, and the limits in `ExtractLimits`.
  setuid/setgid/sticky bits are masked off (not refused); the owner always keeps rw(x).
- Everything is extracted into a fresh staging directory inside the destination (same
  filesystem), checked entry by entry while streaming, then merged into place with renames
  (new top-level names move as whole subtrees). A refusal or crash before the merge leaves the
  destination exactly as it was; the staging directory is removed on failure.
"""

from __future__ import annotations

import bz2
import contextlib
import enum
import errno
import gzip
import lzma
import os
import secrets
import stat
import tarfile
import time
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol, cast

import zstandard

from .errors import FileError, FileErrorCode, from_oserror
from .paths import Parts, archive_entry_parts, join_parts, masked_mode
from .quota import QuotaBudget
from .root import (
    _O_DIR_PATH,
    _O_DIR_READ,
    CHUNK_SIZE,
    TEMP_PREFIX,
    FileType,
    SafeRoot,
    _proc_fd_path,
    _scan,
    _write_all,
    file_type,
    rename_noreplace,
)

KIB: Final = 1024
MIB: Final = 1024 * KIB
GIB: Final = 1024 * MIB

# Per-entry allowance for tar headers, pax records and padding on top of the file data.
_TAR_ENTRY_OVERHEAD: Final = 3 * 512


class ArchiveFormat(enum.Enum):
    """Archive formats: all of them can be extracted; `CREATABLE` ones can be created."""

    TAR = "tar"
    TAR_GZ = "tar.gz"
    TAR_ZST = "tar.zst"
    TAR_XZ = "tar.xz"
    TAR_BZ2 = "tar.bz2"
    ZIP = "zip"


CREATABLE: Final = frozenset({ArchiveFormat.TAR_GZ, ArchiveFormat.TAR_ZST, ArchiveFormat.ZIP})


@dataclass(frozen=True)
class ExtractLimits:
    """Bounds that make decompression bombs fail early instead of filling the disk."""

    max_total_bytes: int = 8 * GIB
    """Sum of all extracted file sizes."""
    max_entries: int = 100_000
    max_ratio: float = 100.0
    """Uncompressed bytes per archive byte; checked once past `ratio_grace_bytes`."""
    ratio_grace_bytes: int = 16 * MIB
    """Small archives may compress very well (a few text files); only bigger output is judged
    by ratio."""
    max_depth: int = 64
    """Directory nesting of entry names."""


@dataclass(frozen=True)
class CreateReport:
    """What went into a new archive, and what was left out (links, specials, denied)."""

    entries: int
    bytes: int
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtractReport:
    """What an extraction wrote."""

    entries: int
    bytes: int


# -- pure rules ------------------------------------------------------------------------------


def detect_format(head: bytes) -> ArchiveFormat | None:
    """The archive format from its first 512+ bytes (magic numbers, not file names)."""
    if head.startswith(b"\x1f\x8b"):
        return ArchiveFormat.TAR_GZ
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return ArchiveFormat.TAR_ZST
    if head.startswith(b"\xfd7zXZ\x00"):
        return ArchiveFormat.TAR_XZ
    if head.startswith(b"BZh"):
        return ArchiveFormat.TAR_BZ2
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return ArchiveFormat.ZIP
    if head[257:262] == b"ustar":
        return ArchiveFormat.TAR
    return None


@dataclass(frozen=True)
class PlannedEntry:
    """An archive member that passed the checks: where it goes and what it becomes."""

    name: str
    """The member name as the archive spells it (for error messages)."""
    parts: Parts
    type: FileType
    """FILE or DIRECTORY; nothing else is ever planned."""
    mode: int
    """Already masked."""
    size: int
    mtime: float


def _unsafe(name: str, why: str) -> FileError:
    return FileError(FileErrorCode.UNSAFE_ARCHIVE, name[:200], f"unsafe archive entry: {why}")


def plan_tar_member(member: tarfile.TarInfo, limits: ExtractLimits) -> PlannedEntry | None:
    """Check one tar member; `None` for the archive's own `./` directory entry."""
    name = member.name
    if member.issym() or member.islnk():
        raise _unsafe(name, "links are not extracted")
    if member.ischr() or member.isblk() or member.isfifo():
        raise _unsafe(name, "devices and FIFOs are not extracted")
    if member.type == tarfile.GNUTYPE_SPARSE or member.issparse():
        raise _unsafe(name, "sparse files are not extracted")
    parts = archive_entry_parts(name, max_depth=limits.max_depth)
    if member.isdir():
        kind = FileType.DIRECTORY
    elif member.isreg():
        kind = FileType.FILE
    else:
        raise _unsafe(name, f"unsupported entry type {member.type!r}")
    if not parts:
        if kind is FileType.DIRECTORY:
            return None
        raise _unsafe(name, "file without a name")
    directory = kind is FileType.DIRECTORY
    return PlannedEntry(
        name=name,
        parts=parts,
        type=kind,
        mode=masked_mode(member.mode, directory=directory),
        size=0 if directory else member.size,
        mtime=float(max(member.mtime, 0)),
    )


_ZIP_UNIX: Final = 3


def plan_zip_member(info: zipfile.ZipInfo, limits: ExtractLimits) -> PlannedEntry | None:
    """Check one zip member (encryption, type bits, declared sizes and ratio)."""
    name = info.filename
    if info.flag_bits & 0x1:
        raise FileError(FileErrorCode.BAD_ARCHIVE, name[:200], "encrypted entries are refused")
    unix_mode = info.external_attr >> 16 if info.create_system == _ZIP_UNIX else 0
    fmt = stat.S_IFMT(unix_mode)
    if stat.S_ISLNK(unix_mode):
        raise _unsafe(name, "links are not extracted")
    if fmt and not (stat.S_ISREG(unix_mode) or stat.S_ISDIR(unix_mode)):
        raise _unsafe(name, "devices and FIFOs are not extracted")
    parts = archive_entry_parts(name, max_depth=limits.max_depth)
    directory = info.is_dir() or stat.S_ISDIR(unix_mode)
    if not parts:
        if directory:
            return None
        raise _unsafe(name, "file without a name")
    if directory and info.file_size:
        raise FileError(FileErrorCode.BAD_ARCHIVE, name[:200], "directory entry with data")
    if info.file_size > limits.ratio_grace_bytes and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        raise FileError(FileErrorCode.TOO_LARGE, name[:200], "compression ratio too high")
    perms = stat.S_IMODE(unix_mode) or (0o755 if directory else 0o644)
    try:
        mtime = time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        mtime = 0.0
    return PlannedEntry(
        name=name,
        parts=parts,
        type=FileType.DIRECTORY if directory else FileType.FILE,
        mode=masked_mode(perms, directory=directory),
        size=0 if directory else info.file_size,
        mtime=max(mtime, 0.0),
    )


class ExtractionGuard:
    """Running totals of one extraction, refusing as soon as a limit is passed (pure)."""

    def __init__(self, limits: ExtractLimits, archive_size: int) -> None:
        self.limits = limits
        self.archive_size = max(archive_size, 1)
        self.entries = 0
        self.data_bytes = 0
        self.stream_bytes = 0

    def _ratio_exceeded(self, produced: int) -> bool:
        return (
            produced > self.limits.ratio_grace_bytes
            and produced > self.limits.max_ratio * self.archive_size
        )

    def entry(self, name: str) -> None:
        """Count one more member."""
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise FileError(
                FileErrorCode.LIMIT_REACHED,
                name[:200],
                f"archive has more than {self.limits.max_entries} entries",
            )

    def declared(self, name: str, total: int) -> None:
        """Refuse up front when declared sizes (zip central directory) already break limits."""
        if total > self.limits.max_total_bytes or self._ratio_exceeded(total):
            raise FileError(FileErrorCode.TOO_LARGE, name[:200], "archive expands too much")

    def data(self, name: str, nbytes: int) -> None:
        """Account extracted file data."""
        self.data_bytes += nbytes
        if self.data_bytes > self.limits.max_total_bytes or self._ratio_exceeded(self.data_bytes):
            raise FileError(FileErrorCode.TOO_LARGE, name[:200], "archive expands too much")

    def stream(self, nbytes: int) -> None:
        """Account decompressed bytes of a tar stream (headers too: a pax header can be huge)."""
        self.stream_bytes += nbytes
        cap = self.limits.max_total_bytes + self.limits.max_entries * _TAR_ENTRY_OVERHEAD
        if self.stream_bytes > cap or self._ratio_exceeded(self.stream_bytes):
            raise FileError(FileErrorCode.TOO_LARGE, "", "archive expands too much")


# -- creation --------------------------------------------------------------------------------


class Writable(Protocol):
    """Where an archive is streamed to: anything with `write(bytes)`."""

    def write(self, data: bytes, /) -> Any: ...


class _Sink:
    """Adapts any `Writable` to what tarfile/gzip/zipfile expect; counts bytes written."""

    def __init__(self, out: Writable) -> None:
        self._out = out
        self.written = 0

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self.written += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def _selection(root: SafeRoot, paths: Sequence[str], base: str) -> tuple[Parts, list[Parts]]:
    base_parts = root._parts(base, allow_root=True)
    selected = []
    for path in paths:
        parts = root._parts(path)
        if parts[: len(base_parts)] != base_parts or len(parts) == len(base_parts):
            raise FileError(FileErrorCode.BAD_PATH, path, "selection must lie under the base")
        selected.append(parts)
    return base_parts, selected


def _iter_selection(
    root: SafeRoot, selected: list[Parts], skipped: list[str]
) -> Iterator[tuple[Parts, os.stat_result, int]]:
    """(parts, lstat, parent fd) of every selected entry and everything under selected
    directories; links, specials, denied paths and our own temp files go to `skipped`."""
    for parts in selected:
        path = join_parts(parts)
        with root._parent(parts, path) as pfd:
            st = root._lstat(pfd, parts[-1], path)
            kind = file_type(st.st_mode)
            if kind not in (FileType.FILE, FileType.DIRECTORY):
                skipped.append(path)
                continue
            yield parts, st, pfd
            if kind is not FileType.DIRECTORY:
                continue
            sub = root._open_subdir(pfd, parts[-1], path)
            try:
                with contextlib.closing(root._walk(sub, parts, st.st_dev)) as entries:
                    pruned: list[Parts] = []
                    for entry in entries:
                        if any(entry.parts[: len(p)] == p for p in pruned):
                            continue
                        rel = join_parts(entry.parts)
                        ekind = file_type(entry.st.st_mode)
                        if (
                            entry.name.startswith(TEMP_PREFIX)
                            or root.denylist.is_denied(entry.parts)
                            or ekind not in (FileType.FILE, FileType.DIRECTORY)
                        ):
                            skipped.append(rel)
                            if ekind is FileType.DIRECTORY:
                                pruned.append(entry.parts)
                            continue
                        yield entry.parts, entry.st, entry.parent_fd
            finally:
                os.close(sub)


def _zip_date(mtime: float) -> tuple[int, int, int, int, int, int]:
    t = time.localtime(max(mtime, 315532800.0))  # zip cannot express dates before 1980
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def create_archive(
    root: SafeRoot,
    paths: Sequence[str],
    out: Writable,
    fmt: ArchiveFormat,
    *,
    base: str = "",
    level: int | None = None,
) -> CreateReport:
    """Stream an archive of `paths` (files or directories, all under `base`) to `out`.

    Member names are relative to `base`. Nothing is followed: see the module docstring for
    what is skipped. `level` overrides the compressor's level.
    """
    if fmt not in CREATABLE:
        raise FileError(FileErrorCode.BAD_ARCHIVE, "", f"cannot create {fmt.value} archives")
    base_parts, selected = _selection(root, paths, base)
    skipped: list[str] = []
    entries = 0
    data = 0
    sink = _Sink(out)
    with contextlib.ExitStack() as stack:
        tar: tarfile.TarFile | None = None
        zf: zipfile.ZipFile | None = None
        if fmt is ArchiveFormat.ZIP:
            zf = stack.enter_context(
                zipfile.ZipFile(
                    cast(IO[bytes], sink),
                    "w",
                    compression=zipfile.ZIP_DEFLATED,
                    compresslevel=6 if level is None else level,
                )
            )
        else:
            if fmt is ArchiveFormat.TAR_GZ:
                stream: Any = stack.enter_context(
                    gzip.GzipFile(
                        fileobj=cast(IO[bytes], sink),
                        mode="wb",
                        compresslevel=6 if level is None else level,
                        mtime=0,
                    )
                )
            else:
                compressor = zstandard.ZstdCompressor(level=3 if level is None else level)
                stream = stack.enter_context(
                    compressor.stream_writer(cast(IO[bytes], sink), closefd=False)
                )
            tar = stack.enter_context(
                tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT)
            )
        for parts, st, parent_fd in _iter_selection(root, selected, skipped):
            arcname = join_parts(parts[len(base_parts) :])
            rel = join_parts(parts)
            directory = stat.S_ISDIR(st.st_mode)
            fd = -1
            if not directory:
                try:
                    fd, st = root._open_regular(parent_fd, parts[-1], rel)
                except FileError as exc:
                    if exc.code is FileErrorCode.NOT_FOUND:
                        continue  # deleted while archiving
                    raise
            try:
                if zf is not None:
                    _add_zip(zf, arcname, st, fd)
                else:
                    assert tar is not None
                    _add_tar(tar, arcname, st, fd, rel)
            except OSError as exc:
                raise from_oserror(exc, rel) from exc
            finally:
                if fd >= 0:
                    os.close(fd)
            entries += 1
            data += 0 if directory else st.st_size
    return CreateReport(entries, data, tuple(skipped))


def _add_tar(tar: tarfile.TarFile, arcname: str, st: os.stat_result, fd: int, rel: str) -> None:
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if fd < 0:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        return
    info.size = st.st_size
    with os.fdopen(os.dup(fd), "rb") as src:
        try:
            tar.addfile(info, src)
        except OSError as exc:
            if "unexpected end of data" in str(exc):
                raise FileError(FileErrorCode.IO_ERROR, rel, "file shrank while archiving") from exc
            raise


def _add_zip(zf: zipfile.ZipFile, arcname: str, st: os.stat_result, fd: int) -> None:
    if fd < 0:
        info = zipfile.ZipInfo(arcname + "/", _zip_date(st.st_mtime))
        info.external_attr = (stat.S_IFDIR | stat.S_IMODE(st.st_mode)) << 16 | 0x10
        zf.writestr(info, b"")
        return
    info = zipfile.ZipInfo(arcname, _zip_date(st.st_mtime))
    info.external_attr = (stat.S_IFREG | stat.S_IMODE(st.st_mode)) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size = st.st_size
    offset = 0
    with zf.open(info, "w", force_zip64=st.st_size > 2 * GIB) as dst:
        while offset < st.st_size and (chunk := os.pread(fd, CHUNK_SIZE, offset)):
            dst.write(chunk)
            offset += len(chunk)


def create_archive_file(
    root: SafeRoot,
    paths: Sequence[str],
    dest: str,
    fmt: ArchiveFormat,
    *,
    base: str = "",
    overwrite: bool = False,
) -> CreateReport:
    """Create an archive as a file inside the root: atomic (temp + rename), quota-charged."""
    with root.open_write(dest, overwrite=overwrite) as writer:
        return create_archive(root, paths, writer, fmt, base=base)


# -- extraction ------------------------------------------------------------------------------


class _CountingReader:
    """A decompressed tar stream, every byte counted against the guard before tarfile sees it."""

    def __init__(self, raw: Any, guard: ExtractionGuard) -> None:
        self._raw = raw
        self._guard = guard

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._raw.read(n if n >= 0 else CHUNK_SIZE)
        self._guard.stream(len(data))
        return data


class _Staging:
    """Writes planned entries below a staging directory fd, never through a link (the
    staging directory lives in the server's volume, so a game server could race into it)."""

    def __init__(self, root: SafeRoot, fd: int, budget: QuotaBudget, guard: ExtractionGuard):
        self.root = root
        self.fd = fd
        self.budget = budget
        self.guard = guard

    def _dir(self, parts: Parts, name: str) -> int:
        fd = os.dup(self.fd)
        try:
            for part in parts:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                    if self.root.owner is not None:
                        os.chown(part, *self.root.owner, dir_fd=fd, follow_symlinks=False)
                try:
                    child = os.open(part, _O_DIR_PATH, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                        raise _unsafe(name, "entry below a file of the same name") from exc
                    raise from_oserror(exc, name) from exc
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def add_dir(self, entry: PlannedEntry) -> None:
        fd = self._dir(entry.parts, entry.name)
        try:
            os.chmod(_proc_fd_path(fd), entry.mode)
            if self.root.owner is not None:
                os.chown(_proc_fd_path(fd), *self.root.owner)
        finally:
            os.close(fd)

    def add_file(self, entry: PlannedEntry, source: IO[bytes]) -> None:
        parent = self._dir(entry.parts[:-1], entry.name)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fd = os.open(entry.parts[-1], flags, 0o600, dir_fd=parent)
            except FileExistsError as exc:
                raise _unsafe(entry.name, "duplicate entry") from exc
            except OSError as exc:
                raise from_oserror(exc, entry.name) from exc
        finally:
            os.close(parent)
        try:
            written = 0
            while chunk := source.read(CHUNK_SIZE):
                written += len(chunk)
                if written > entry.size:
                    raise FileError(
                        FileErrorCode.BAD_ARCHIVE, entry.name[:200], "entry larger than declared"
                    )
                self.guard.data(entry.name, len(chunk))
                self.budget.charge(len(chunk))
                _write_all(fd, chunk)
            if written != entry.size:
                raise FileError(
                    FileErrorCode.BAD_ARCHIVE, entry.name[:200], "entry smaller than declared"
                )
            os.fchmod(fd, entry.mode)
            if self.root.owner is not None:
                os.fchown(fd, *self.root.owner)
            os.utime(fd, (entry.mtime, entry.mtime))
        finally:
            os.close(fd)


def _plan_merge(root: SafeRoot, src_fd: int, dst_fd: int, dest: Parts, overwrite: bool) -> None:
    """Refuse before moving anything if staged entries collide with the destination."""
    for name, st in _scan(src_fd):
        rel = join_parts((*dest, name))
        try:
            dst_st = os.stat(name, dir_fd=dst_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        staged_dir = stat.S_ISDIR(st.st_mode)
        if staged_dir and stat.S_ISDIR(dst_st.st_mode):
            sub_src = os.open(name, _O_DIR_READ, dir_fd=src_fd)
            try:
                sub_dst = root._open_subdir(dst_fd, name, rel)
                try:
                    _plan_merge(root, sub_src, sub_dst, (*dest, name), overwrite)
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
        elif staged_dir or not stat.S_ISREG(dst_st.st_mode) or not overwrite:
            raise FileError(FileErrorCode.EXISTS, rel, "archive entry collides with this path")


def _merge(root: SafeRoot, src_fd: int, dst_fd: int, dest: Parts) -> None:
    """Move staged entries into place: new names as whole subtrees, files over files."""
    for name, st in _scan(src_fd):
        rel = join_parts((*dest, name))
        try:
            try:
                rename_noreplace(src_fd, name, dst_fd, name)
                continue
            except FileExistsError:
                pass
            if stat.S_ISDIR(st.st_mode):
                sub_src = os.open(name, _O_DIR_READ, dir_fd=src_fd)
                try:
                    sub_dst = root._open_subdir(dst_fd, name, rel)
                    try:
                        _merge(root, sub_src, sub_dst, (*dest, name))
                    finally:
                        os.close(sub_dst)
                finally:
                    os.close(sub_src)
            else:
                # Replaces a regular file (checked by _plan_merge); never follows a link.
                os.rename(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        except OSError as exc:
            raise from_oserror(exc, rel) from exc


@contextlib.contextmanager
def _open_tar(
    fmt: ArchiveFormat, raw: IO[bytes], guard: ExtractionGuard
) -> Iterator[tarfile.TarFile]:
    """A streaming tar reader whose decompressed bytes are all counted by `guard`."""
    with contextlib.ExitStack() as stack:
        decompressed: Any
        if fmt is ArchiveFormat.TAR:
            decompressed = raw
        elif fmt is ArchiveFormat.TAR_GZ:
            decompressed = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        elif fmt is ArchiveFormat.TAR_BZ2:
            decompressed = stack.enter_context(bz2.BZ2File(raw, "rb"))
        elif fmt is ArchiveFormat.TAR_XZ:
            decompressed = stack.enter_context(lzma.LZMAFile(raw, "rb"))
        else:
            dctx = zstandard.ZstdDecompressor()
            decompressed = stack.enter_context(
                dctx.stream_reader(raw, read_across_frames=True, closefd=False)
            )
        counted = cast(IO[bytes], _CountingReader(decompressed, guard))
        with tarfile.open(fileobj=counted, mode="r|") as tar:
            yield tar


_ARCHIVE_ERRORS: Final = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
    NotImplementedError,
    gzip.BadGzipFile,
)


def extract_archive(
    root: SafeRoot,
    archive: str,
    dest: str = "",
    *,
    limits: ExtractLimits | None = None,
    overwrite: bool = True,
) -> ExtractReport:
    """Extract the archive file `archive` into the directory `dest` (created if missing).

    Every entry is checked (see the module docstring); any refusal refuses the whole archive
    and leaves `dest` unchanged. Existing files are replaced when `overwrite`, otherwise a
    collision refuses the archive (EXISTS); a file never replaces a directory or vice versa.
    """
    limits = limits or ExtractLimits()
    dest_parts = root._parts(dest, allow_root=True)
    with root.open_read(archive) as reader:
        fmt = detect_format(reader.read(1024))
        if fmt is None:
            raise FileError(FileErrorCode.BAD_ARCHIVE, archive, "unknown archive format")
        guard = ExtractionGuard(limits, reader.size)
        first_missing = _first_missing(root, dest_parts)
        dest_fd = root._open_dir(dest_parts, dest, create=True)
        try:
            staging = f"{TEMP_PREFIX}staging-{secrets.token_hex(8)}"
            try:
                os.mkdir(staging, 0o700, dir_fd=dest_fd)
            except OSError as exc:
                raise from_oserror(exc, dest) from exc
            try:
                stage_fd = root._open_subdir(dest_fd, staging, dest)
                try:
                    budget = root.quota.start(dest)
                    staged = _Staging(root, stage_fd, budget, guard)
                    with os.fdopen(os.dup(reader.fileno()), "rb") as raw:
                        try:
                            if fmt is ArchiveFormat.ZIP:
                                _extract_zip(raw, staged, dest_parts, limits)
                            else:
                                _extract_tar(fmt, raw, staged, dest_parts, limits)
                        except _ARCHIVE_ERRORS as exc:
                            raise FileError(
                                FileErrorCode.BAD_ARCHIVE, archive, f"corrupt archive: {exc}"
                            ) from exc
                    _plan_merge(root, stage_fd, dest_fd, dest_parts, overwrite)
                    _merge(root, stage_fd, dest_fd, dest_parts)
                finally:
                    os.close(stage_fd)
            finally:
                root._remove_tree_quietly(dest_fd, staging)
        except BaseException:
            if first_missing is not None:
                _remove_created_dirs(root, dest_parts, first_missing)
            raise
        finally:
            os.close(dest_fd)
    return ExtractReport(guard.entries, guard.data_bytes)


def _first_missing(root: SafeRoot, parts: Parts) -> int | None:
    """Index of the first component of `parts` that does not exist yet (None: all exist)."""
    for end in range(1, len(parts) + 1):
        try:
            os.close(root._open_dir(parts[:end], join_parts(parts[:end])))
        except FileError as exc:
            if exc.code is FileErrorCode.NOT_FOUND:
                return end - 1
            raise
    return None


def _remove_created_dirs(root: SafeRoot, parts: Parts, first: int) -> None:
    """Undo the `mkdir -p` of a refused extraction: rmdir (only if empty) deepest first."""
    for end in range(len(parts), first, -1):
        try:
            with root._parent(parts[:end], join_parts(parts[:end])) as pfd:
                os.rmdir(parts[end - 1], dir_fd=pfd)
        except (OSError, FileError):
            return


def _check_dest(staged: _Staging, dest: Parts, entry: PlannedEntry) -> None:
    target = (*dest, *entry.parts)
    if staged.root.denylist.is_denied(target):
        raise FileError(FileErrorCode.DENIED, entry.name[:200], "archive entry is on the deny-list")
    if len(join_parts(target).encode("utf-8", "surrogateescape")) > 4096:
        raise _unsafe(entry.name, "path too long")


def _extract_tar(
    fmt: ArchiveFormat, raw: IO[bytes], staged: _Staging, dest: Parts, limits: ExtractLimits
) -> None:
    with _open_tar(fmt, raw, staged.guard) as tar:
        for member in tar:
            staged.guard.entry(member.name)
            entry = plan_tar_member(member, limits)
            if entry is None:
                continue
            _check_dest(staged, dest, entry)
            if entry.type is FileType.DIRECTORY:
                staged.add_dir(entry)
                continue
            staged.guard.declared(entry.name, staged.guard.data_bytes + entry.size)
            source = tar.extractfile(member)
            if source is None:
                raise _unsafe(entry.name, "unreadable entry")
            with source:
                staged.add_file(entry, source)


def _extract_zip(raw: IO[bytes], staged: _Staging, dest: Parts, limits: ExtractLimits) -> None:
    with zipfile.ZipFile(raw) as zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise FileError(
                FileErrorCode.LIMIT_REACHED,
                "",
                f"archive has more than {limits.max_entries} entries",
            )
        planned: list[tuple[zipfile.ZipInfo, PlannedEntry]] = []
        declared = 0
        # Everything the central directory says is checked before a byte is written.
        for info in infos:
            entry = plan_zip_member(info, limits)
            if entry is None:
                continue
            _check_dest(staged, dest, entry)
            declared += entry.size
            staged.guard.declared(entry.name, declared)
            planned.append((info, entry))
        staged.budget.ensure_fits(declared)
        for info, entry in planned:
            staged.guard.entry(entry.name)
            if entry.type is FileType.DIRECTORY:
                staged.add_dir(entry)
                continue
            with zf.open(info) as source:
                staged.add_file(entry, source)
