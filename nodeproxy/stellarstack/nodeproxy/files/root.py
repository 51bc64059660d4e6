"""`SafeRoot`: every file operation of one server, confined to its root directory.

How confinement works (and why this way):

- The root is opened once as a directory fd. Every client path is split by the pure
  `split_path` (no `..`; a leading `/` is the server root, never the host's) and resolved one
  component at a time with `os.open(part, O_PATH | O_DIRECTORY | O_NOFOLLOW, dir_fd=parent)`.
  A symlink anywhere in the path makes that open fail, so links are never followed - not out
  of the root, not inside it.
- The last component is then acted on *relative to its parent's fd* with the no-follow form of
  each call (`unlinkat`, `renameat`, `fstatat(AT_SYMLINK_NOFOLLOW)`, `utimensat`, `O_NOFOLLOW`).
  Because the parent is held open, swapping a directory for a symlink half-way through an
  operation cannot redirect it: the fd still names the original directory.
- Files are opened as `O_PATH | O_NOFOLLOW` first, checked to be regular files with `fstat`, and
  only then reopened for I/O through `/proc/self/fd` (which names that same inode). A device
  node or FIFO planted in the volume is therefore never opened for reading.
- `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` would do the walk in one syscall, but it is
  missing on older kernels and blocked by some container seccomp profiles; the component walk
  works everywhere, so it is the only code path (one path, one set of tests).

Symlinks themselves are shown in listings (type `symlink` with their target text) and can be
deleted, renamed or have their times set - acting on the link, never on its target. Nothing
here ever creates a symlink.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import errno
import fnmatch
import os
import secrets
import stat
import time
from collections.abc import AsyncIterable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from .errors import FileError, FileErrorCode, from_oserror
from .paths import Denylist, Parts, chmod_mode, join_parts, masked_mode, split_path
from .quota import Quota, QuotaBudget

_O_DIR_PATH: Final = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_DIR_READ: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_NODE: Final = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC

CHUNK_SIZE: Final = 1024 * 1024
"""Default read/write chunk: large enough for throughput, small enough to stream."""
MAX_DEPTH: Final = 256
"""Deepest directory nesting any recursive walk descends into (fds held per level)."""
TEMP_PREFIX: Final = ".stellarstack-"
"""Prefix of the temporary files and staging directories this package creates."""
_RENAME_NOREPLACE: Final = 1


class FileType(enum.Enum):
    """What a directory entry is."""

    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    OTHER = "other"
    """Device, FIFO or socket: listed, never opened."""


def file_type(mode: int) -> FileType:
    """Classify an `st_mode`."""
    if stat.S_ISREG(mode):
        return FileType.FILE
    if stat.S_ISDIR(mode):
        return FileType.DIRECTORY
    if stat.S_ISLNK(mode):
        return FileType.SYMLINK
    return FileType.OTHER


@dataclass(frozen=True)
class FileInfo:
    """Metadata of one entry, as listings and `stat` report it (never following links)."""

    name: str
    path: str
    type: FileType
    size: int
    mode: int
    """Permission bits (`stat.S_IMODE`)."""
    mtime: float
    link_target: str | None = None
    """For symlinks: the link's text, shown and never resolved."""
    denied: bool = False
    """On the deny-list: listed (so the tree is honest) but no operation may touch it."""


@dataclass(frozen=True)
class DiskUsage:
    """Space used under the root: allocated bytes (`st_blocks * 512`), hard links once."""

    bytes: int
    files: int
    directories: int


@dataclass(frozen=True)
class SearchLimits:
    """Bounds on one search, so no query can scan a huge tree for long."""

    max_results: int = 200
    max_files: int = 20_000
    """Entries visited (names) or files opened (content)."""
    max_bytes_per_file: int = 1024 * 1024
    """Content search reads at most this much of each file."""
    time_budget_s: float = 5.0


@dataclass(frozen=True)
class SearchMatch:
    """One search hit; `line`/`preview` only for content searches."""

    path: str
    type: FileType
    line: int | None = None
    preview: str | None = None


@dataclass
class SearchResult:
    """Hits of a search and whether a limit cut it short."""

    matches: list[SearchMatch] = field(default_factory=list)
    truncated: bool = False


@dataclass(frozen=True)
class CopyReport:
    """What a copy did: the new entry, and links/special files it skipped (never copied)."""

    info: FileInfo
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Entry:
    """One node met by a walk: its parts from the root, the open parent fd and its lstat."""

    parts: Parts
    name: str
    parent_fd: int
    st: os.stat_result


def _load_renameat2() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()


def rename_noreplace(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    """`renameat2(RENAME_NOREPLACE)`: atomically refuse (EEXIST) when `dst` exists.

    Falls back to check-then-rename where renameat2 is unavailable; the fallback's race can
    only overwrite an entry inside the same root, never reach outside it.
    """
    if _renameat2 is not None:
        src_b = os.fsencode(src)
        dst_b = os.fsencode(dst)
        if _renameat2(src_fd, src_b, dst_fd, dst_b, _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err))
    try:
        os.stat(dst, dir_fd=dst_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        return
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))


def _reopen(node_fd: int, flags: int) -> int:
    """Open the inode behind an `O_PATH` fd for I/O without resolving any name again."""
    return os.open(f"/proc/self/fd/{node_fd}", flags | os.O_CLOEXEC)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class FileReader:
    """An open regular file (or a byte range of it) for streaming out; close it when done."""

    def __init__(self, fd: int, path: str, size: int, offset: int, length: int) -> None:
        self._fd = fd
        self.path = path
        self.size = size
        """Size of the whole file."""
        self.offset = offset
        """First byte of the range."""
        self.length = length
        """Bytes in the range."""
        self._pos = offset

    def fileno(self) -> int:
        """The fd (for `sendfile`); reading it directly ignores the range."""
        return self._fd

    def read(self, n: int = CHUNK_SIZE) -> bytes:
        """Up to `n` more bytes of the range (`b""` at its end)."""
        remaining = self.offset + self.length - self._pos
        if remaining <= 0:
            return b""
        data = os.pread(self._fd, min(n, remaining), self._pos)
        self._pos += len(data)
        return data

    def chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The rest of the range in chunks (stops early if the file shrinks meanwhile)."""
        while data := self.read(chunk_size):
            yield data

    def close(self) -> None:
        """Release the fd (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FileReader:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AtomicWriter:
    """A file being written: bytes go to a temp file beside the target, which is renamed over
    the target only on `commit`. Quota is charged per chunk; an abort (or any error) removes
    the temp file, so a refused or interrupted write leaves nothing behind."""

    def __init__(
        self,
        *,
        dir_fd: int,
        name: str,
        path: str,
        budget: QuotaBudget,
        mode: int,
        owner: tuple[int, int] | None,
        overwrite: bool,
    ) -> None:
        self.path = path
        self.written = 0
        self._dir_fd = dir_fd
        self._name = name
        self._budget = budget
        self._overwrite = overwrite
        self._tmp = f"{TEMP_PREFIX}upload-{secrets.token_hex(8)}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(self._tmp, flags, 0o600, dir_fd=dir_fd)
        self._done = False
        try:
            os.fchmod(self._fd, mode)
            if owner is not None:
                os.fchown(self._fd, *owner)
        except BaseException:
            # The caller still owns dir_fd until this constructor returns.
            os.close(self._fd)
            with contextlib.suppress(OSError):
                os.unlink(self._tmp, dir_fd=dir_fd)
            raise

    def write(self, data: bytes | memoryview) -> None:
        """Append a chunk (refused with QUOTA_EXCEEDED once the budget is spent)."""
        self._budget.charge(len(data))
        try:
            _write_all(self._fd, data)
        except OSError as exc:
            raise from_oserror(exc, self.path) from exc
        self.written += len(data)

    def copy_from(self, src_fd: int, size: int) -> None:
        """Append `size` bytes of `src_fd` from its start, in-kernel where possible."""
        offset = 0
        while offset < size:
            n = min(8 * CHUNK_SIZE, size - offset)
            self._budget.charge(n)
            try:
                copied = os.copy_file_range(src_fd, self._fd, n, offset)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise from_oserror(exc, self.path) from exc
                data = os.pread(src_fd, n, offset)
                _write_all(self._fd, data)
                copied = len(data)
            if copied == 0:  # the source shrank while we copied
                break
            self._budget.charge(copied - n)
            offset += copied
            self.written += copied

    def commit(self, *, durable: bool = False, mtime: float | None = None) -> None:
        """Move the finished file into place (atomically; refusing to replace unless allowed)."""
        try:
            if mtime is not None:
                os.utime(self._fd, (mtime, mtime))
            if durable:
                os.fsync(self._fd)
            if self._overwrite:
                os.rename(self._tmp, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            else:
                rename_noreplace(self._dir_fd, self._tmp, self._dir_fd, self._name)
        except OSError as exc:
            self.abort()
            raise from_oserror(exc, self.path) from exc
        self._done = True
        self._close()

    def abort(self) -> None:
        """Drop the temp file (idempotent)."""
        if getattr(self, "_done", False):
            return
        self._done = True
        with contextlib.suppress(OSError):
            os.unlink(self._tmp, dir_fd=self._dir_fd)
        self._close()

    def _close(self) -> None:
        for attr in ("_fd", "_dir_fd"):
            fd = getattr(self, attr, -1)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is None:
            self.commit()
        else:
            self.abort()


class SafeRoot:
    """One server's files, every operation confined to `root` (see the module docstring).

    Paths are strings relative to the root (`""` is the root). Errors are `FileError`s.
    `denylist` applies to every path operation; `quota` to everything that writes;
    `owner` (uid, gid), when given, owns every file and directory created here.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        denylist: Denylist | None = None,
        quota: Quota | None = None,
        quota_bytes: int | None = None,
        owner: tuple[int, int] | None = None,
    ) -> None:
        self._fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.denylist = denylist or Denylist()
        self.owner = owner
        if quota is None:
            quota = Quota(quota_bytes, lambda: self.disk_usage().bytes)
        self.quota = quota

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the root fd (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SafeRoot:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- resolution ---------------------------------------------------------------------------

    def _parts(self, path: str, *, allow_root: bool = False) -> Parts:
        parts = split_path(path)
        if not parts and not allow_root:
            raise FileError(FileErrorCode.BAD_PATH, path, "not allowed on the root itself")
        self.denylist.check(parts)
        return parts

    def _component_error(self, dir_fd: int, name: str, path: str, exc: OSError) -> FileError:
        """Explain why `name` could not be opened as a directory: a link, a file, or gone."""
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                return FileError(FileErrorCode.NOT_FOUND, path)
            if stat.S_ISLNK(st.st_mode):
                return FileError(FileErrorCode.SYMLINK_REFUSED, path, "path goes through a link")
            if stat.S_ISDIR(st.st_mode):
                # It was a link when opened and is a directory again now: a swap race.
                return FileError(FileErrorCode.SYMLINK_REFUSED, path, "path changed while opened")
            return FileError(FileErrorCode.NOT_A_DIRECTORY, path)
        return from_oserror(exc, path)

    def _open_dir(self, parts: Parts, path: str, *, create: bool = False) -> int:
        """An `O_PATH` fd of the directory `parts`, walked without following links (the
        caller closes it). With `create`, missing directories are made (like `mkdir -p`)."""
        fd = os.dup(self._fd)
        try:
            for part in parts:
                try:
                    child = os.open(part, _O_DIR_PATH, dir_fd=fd)
                except FileNotFoundError as exc:
                    if not create:
                        raise FileError(FileErrorCode.NOT_FOUND, path) from exc
                    self._mkdir_at(fd, part, path)
                    try:
                        child = os.open(part, _O_DIR_PATH, dir_fd=fd)
                    except OSError as exc2:
                        raise self._component_error(fd, part, path, exc2) from exc2
                except OSError as exc:
                    raise self._component_error(fd, part, path, exc) from exc
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _mkdir_at(self, dir_fd: int, name: str, path: str) -> None:
        try:
            os.mkdir(name, 0o755, dir_fd=dir_fd)
        except FileExistsError:
            return
        except OSError as exc:
            raise from_oserror(exc, path) from exc
        if self.owner is not None:
            # lchown semantics: if the name was swapped for a link meanwhile, only the link
            # changes owner.
            with contextlib.suppress(OSError):
                os.chown(name, *self.owner, dir_fd=dir_fd, follow_symlinks=False)

    @contextlib.contextmanager
    def _parent(self, parts: Parts, path: str) -> Iterator[int]:
        fd = self._open_dir(parts[:-1], path)
        try:
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _lstat(dir_fd: int, name: str, path: str) -> os.stat_result:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            raise from_oserror(exc, path) from exc

    @staticmethod
    def _open_regular(dir_fd: int, name: str, path: str) -> tuple[int, os.stat_result]:
        """Open a regular file for reading: `O_PATH|O_NOFOLLOW`, check, then reopen by fd."""
        try:
            node = os.open(name, _O_NODE, dir_fd=dir_fd)
        except OSError as exc:
            raise from_oserror(exc, path) from exc
        try:
            st = os.fstat(node)
            kind = file_type(st.st_mode)
            if kind is FileType.SYMLINK:
                raise FileError(FileErrorCode.SYMLINK_REFUSED, path, "path is a link")
            if kind is FileType.DIRECTORY:
                raise FileError(FileErrorCode.IS_A_DIRECTORY, path)
            if kind is not FileType.FILE:
                raise FileError(FileErrorCode.NOT_A_REGULAR_FILE, path)
            try:
                fd = _reopen(node, os.O_RDONLY | os.O_NOCTTY)
            except OSError as exc:
                raise from_oserror(exc, path) from exc
            return fd, st
        finally:
            os.close(node)

    def _info(self, parts: Parts, st: os.stat_result, dir_fd: int) -> FileInfo:
        kind = file_type(st.st_mode)
        target = None
        if kind is FileType.SYMLINK:
            with contextlib.suppress(OSError):
                target = os.fsdecode(os.readlink(parts[-1], dir_fd=dir_fd))
        return FileInfo(
            name=parts[-1] if parts else "",
            path=join_parts(parts),
            type=kind,
            size=st.st_size,
            mode=stat.S_IMODE(st.st_mode),
            mtime=st.st_mtime,
            link_target=target,
            denied=self.denylist.is_denied(parts),
        )

    # -- reading ------------------------------------------------------------------------------

    def stat(self, path: str) -> FileInfo:
        """Metadata of `path` itself (a link is reported as a link)."""
        parts = self._parts(path, allow_root=True)
        if not parts:
            return self._info(parts, os.fstat(self._fd), self._fd)
        with self._parent(parts, path) as dfd:
            return self._info(parts, self._lstat(dfd, parts[-1], path), dfd)

    def list_dir(self, path: str = "") -> list[FileInfo]:
        """Entries of the directory `path`, sorted by name; denied entries are included with
        `denied=True`, links with their target text."""
        parts = self._parts(path, allow_root=True)
        dfd = self._open_dir(parts, path)
        try:
            rfd = os.open(".", _O_DIR_READ, dir_fd=dfd)
        except OSError as exc:
            raise from_oserror(exc, path) from exc
        finally:
            os.close(dfd)
        try:
            out = []
            with os.scandir(rfd) as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    out.append(self._info((*parts, entry.name), st, rfd))
        except OSError as exc:
            raise from_oserror(exc, path) from exc
        finally:
            os.close(rfd)
        out.sort(key=lambda info: info.name)
        return out

    def open_read(self, path: str, *, offset: int = 0, length: int | None = None) -> FileReader:
        """Open a regular file for streaming out, optionally only `length` bytes from `offset`
        (RANGE_NOT_SATISFIABLE when the range starts past the end)."""
        parts = self._parts(path)
        with self._parent(parts, path) as dfd:
            fd, st = self._open_regular(dfd, parts[-1], path)
        size = st.st_size
        if offset < 0 or (length is not None and length < 0) or offset > size:
            os.close(fd)
            raise FileError(FileErrorCode.RANGE_NOT_SATISFIABLE, path, f"file has {size} bytes")
        available = size - offset
        return FileReader(
            fd, path, size, offset, available if length is None else min(length, available)
        )

    def read_bytes(self, path: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        """A whole (small) file; TOO_LARGE past `max_bytes` (use `open_read` to stream)."""
        with self.open_read(path) as reader:
            if reader.size > max_bytes:
                raise FileError(FileErrorCode.TOO_LARGE, path, f"file is over {max_bytes} bytes")
            return b"".join(reader.chunks())

    # -- writing ------------------------------------------------------------------------------

    def open_write(
        self,
        path: str,
        *,
        overwrite: bool = True,
        expected_size: int | None = None,
        mode: int | None = None,
    ) -> AtomicWriter:
        """Start writing `path` atomically (see `AtomicWriter`; use it as a context manager).

        A replaced file keeps its mode and owner unless `mode` is given; its size counts as
        freed for the quota. `expected_size` (e.g. Content-Length) is checked up front.
        """
        parts = self._parts(path)
        dfd = self._open_dir(parts[:-1], path)
        try:
            name = parts[-1]
            freed = 0
            owner = self.owner
            new_mode = 0o644
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise from_oserror(exc, path) from exc
            else:
                kind = file_type(st.st_mode)
                if kind is FileType.DIRECTORY:
                    raise FileError(FileErrorCode.IS_A_DIRECTORY, path)
                if kind is FileType.SYMLINK:
                    raise FileError(FileErrorCode.SYMLINK_REFUSED, path, "path is a link")
                if kind is not FileType.FILE:
                    raise FileError(FileErrorCode.NOT_A_REGULAR_FILE, path)
                if not overwrite:
                    raise FileError(FileErrorCode.EXISTS, path)
                freed = st.st_blocks * 512
                new_mode = stat.S_IMODE(st.st_mode)
                owner = (st.st_uid, st.st_gid) if owner is not None else None
            budget = self.quota.start(path, freed=freed)
            if expected_size is not None:
                budget.ensure_fits(expected_size)
            final_mode = masked_mode(new_mode if mode is None else mode, directory=False)
            try:
                return AtomicWriter(
                    dir_fd=dfd,
                    name=name,
                    path=path,
                    budget=budget,
                    mode=final_mode,
                    owner=owner,
                    overwrite=overwrite,
                )
            except OSError as exc:
                raise from_oserror(exc, path) from exc
        except BaseException:
            os.close(dfd)
            raise

    def write(
        self,
        path: str,
        chunks: Iterable[bytes],
        *,
        overwrite: bool = True,
        expected_size: int | None = None,
        mode: int | None = None,
    ) -> FileInfo:
        """Write `path` from an iterable of chunks, atomically (temp file + rename)."""
        with self.open_write(
            path, overwrite=overwrite, expected_size=expected_size, mode=mode
        ) as writer:
            for chunk in chunks:
                writer.write(chunk)
        return self.stat(path)

    async def write_async(
        self,
        path: str,
        chunks: AsyncIterable[bytes] | Iterable[bytes],
        *,
        overwrite: bool = True,
        expected_size: int | None = None,
        mode: int | None = None,
    ) -> FileInfo:
        """`write` for request bodies: consumes an async iterator, file I/O off the loop."""
        writer = await asyncio.to_thread(
            self.open_write, path, overwrite=overwrite, expected_size=expected_size, mode=mode
        )
        try:
            if isinstance(chunks, AsyncIterable):
                async for chunk in chunks:
                    await asyncio.to_thread(writer.write, chunk)
            else:
                for chunk in chunks:
                    await asyncio.to_thread(writer.write, chunk)
            await asyncio.to_thread(writer.commit)
        except BaseException:
            writer.abort()
            raise
        return await asyncio.to_thread(self.stat, path)

    def mkdir(self, path: str, *, parents: bool = True) -> FileInfo:
        """Create a directory; with `parents` missing parents too and an existing directory is
        fine (`mkdir -p`), without them EXISTS if anything is already there."""
        parts = self._parts(path)
        if parents:
            os.close(self._open_dir(parts, path, create=True))
        else:
            with self._parent(parts, path) as dfd:
                try:
                    os.mkdir(parts[-1], 0o755, dir_fd=dfd)
                except OSError as exc:
                    raise from_oserror(exc, path) from exc
                if self.owner is not None:
                    with contextlib.suppress(OSError):
                        os.chown(parts[-1], *self.owner, dir_fd=dfd, follow_symlinks=False)
        return self.stat(path)

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> FileInfo:
        """Move `src` to `dst` (both inside the root); a link is moved as a link. Refuses to
        replace an existing `dst` unless `overwrite` (and never replaces a directory)."""
        src_parts = self._parts(src)
        dst_parts = self._parts(dst)
        if dst_parts[: len(src_parts)] == src_parts:
            raise FileError(FileErrorCode.BAD_PATH, dst, "cannot move a directory into itself")
        with self._parent(src_parts, src) as sfd, self._parent(dst_parts, dst) as dfd:
            st = self._lstat(sfd, src_parts[-1], src)
            if stat.S_ISDIR(st.st_mode):
                # Moving a directory would carry denied paths out from under their pattern.
                self._check_tree_allowed(sfd, src_parts, st)
            try:
                if overwrite:
                    try:
                        dst_st = os.stat(dst_parts[-1], dir_fd=dfd, follow_symlinks=False)
                    except FileNotFoundError:
                        pass
                    else:
                        if stat.S_ISDIR(dst_st.st_mode):
                            raise FileError(FileErrorCode.IS_A_DIRECTORY, dst)
                    os.rename(src_parts[-1], dst_parts[-1], src_dir_fd=sfd, dst_dir_fd=dfd)
                else:
                    rename_noreplace(sfd, src_parts[-1], dfd, dst_parts[-1])
            except FileNotFoundError:
                raise FileError(FileErrorCode.NOT_FOUND, src) from None
            except OSError as exc:
                raise from_oserror(exc, dst) from exc
            return self._info(dst_parts, self._lstat(dfd, dst_parts[-1], dst), dfd)

    def copy(self, src: str, dst: str, *, overwrite: bool = False) -> CopyReport:
        """Copy a file, or a directory recursively (into a staging directory renamed into place
        at the end, so a failed copy leaves nothing). Links and special files are skipped,
        never followed; the copy is charged to the quota as it is written."""
        src_parts = self._parts(src)
        dst_parts = self._parts(dst)
        if dst_parts[: len(src_parts)] == src_parts:
            raise FileError(FileErrorCode.BAD_PATH, dst, "cannot copy a directory into itself")
        with self._parent(src_parts, src) as sfd:
            st = self._lstat(sfd, src_parts[-1], src)
            kind = file_type(st.st_mode)
            if kind is FileType.SYMLINK:
                raise FileError(FileErrorCode.SYMLINK_REFUSED, src, "path is a link")
            if kind is FileType.FILE:
                fd, st = self._open_regular(sfd, src_parts[-1], src)
                try:
                    with self.open_write(dst, overwrite=overwrite, mode=st.st_mode) as writer:
                        writer.copy_from(fd, st.st_size)
                finally:
                    os.close(fd)
                return CopyReport(self.stat(dst))
            if kind is not FileType.DIRECTORY:
                raise FileError(FileErrorCode.NOT_A_REGULAR_FILE, src)
            self._check_tree_allowed(sfd, src_parts, st)
            return self._copy_tree(sfd, src_parts, src, dst_parts, dst)

    def _copy_tree(
        self, sfd: int, src_parts: Parts, src: str, dst_parts: Parts, dst: str
    ) -> CopyReport:
        budget = self.quota.start(dst)
        skipped: list[str] = []
        with self._parent(dst_parts, dst) as dfd:
            staging = self._make_staging(dfd, "copy", dst)
            try:
                src_fd = self._open_subdir(sfd, src_parts[-1], src)
                stage_fd = self._open_subdir(dfd, staging, dst)
                try:
                    self._copy_dir_contents(src_fd, stage_fd, src_parts, budget, skipped, 0)
                    os.chmod(
                        _proc_fd_path(stage_fd),
                        masked_mode(os.fstat(src_fd).st_mode, directory=True),
                    )
                finally:
                    os.close(src_fd)
                    os.close(stage_fd)
                try:
                    rename_noreplace(dfd, staging, dfd, dst_parts[-1])
                except OSError as exc:
                    raise from_oserror(exc, dst) from exc
            except BaseException:
                self._remove_tree_quietly(dfd, staging)
                raise
        return CopyReport(self.stat(dst), tuple(skipped))

    def _copy_dir_contents(
        self,
        src_fd: int,
        dst_fd: int,
        parts: Parts,
        budget: QuotaBudget,
        skipped: list[str],
        depth: int,
    ) -> None:
        if depth >= MAX_DEPTH:
            raise FileError(FileErrorCode.LIMIT_REACHED, join_parts(parts), "tree too deep")
        for name, st in _scan(src_fd):
            child = (*parts, name)
            rel = join_parts(child)
            kind = file_type(st.st_mode)
            if kind is FileType.DIRECTORY:
                sub_src = self._open_subdir(src_fd, name, rel)
                try:
                    os.mkdir(name, 0o700, dir_fd=dst_fd)
                    sub_dst = self._open_subdir(dst_fd, name, rel)
                    try:
                        self._copy_dir_contents(sub_src, sub_dst, child, budget, skipped, depth + 1)
                        os.chmod(_proc_fd_path(sub_dst), masked_mode(st.st_mode, directory=True))
                        if self.owner is not None:
                            os.chown(_proc_fd_path(sub_dst), *self.owner)
                    finally:
                        os.close(sub_dst)
                finally:
                    os.close(sub_src)
            elif kind is FileType.FILE:
                fd, fst = self._open_regular(src_fd, name, rel)
                try:
                    writer = AtomicWriter(
                        dir_fd=os.dup(dst_fd),
                        name=name,
                        path=rel,
                        budget=budget,
                        mode=masked_mode(fst.st_mode, directory=False),
                        owner=self.owner,
                        overwrite=False,
                    )
                    with writer:
                        writer.copy_from(fd, fst.st_size)
                finally:
                    os.close(fd)
            else:
                skipped.append(rel)

    def delete(self, path: str) -> None:
        """Delete a file, link (the link itself) or directory tree, never following links.
        A tree holding a denied path is refused before anything is deleted."""
        parts = self._parts(path)
        with self._parent(parts, path) as dfd:
            st = self._lstat(dfd, parts[-1], path)
            if not stat.S_ISDIR(st.st_mode):
                try:
                    os.unlink(parts[-1], dir_fd=dfd)
                except OSError as exc:
                    raise from_oserror(exc, path) from exc
                return
            self._check_tree_allowed(dfd, parts, st)
            sub = self._open_subdir(dfd, parts[-1], path)
            try:
                self._remove_contents(sub, parts, 0)
            finally:
                os.close(sub)
            try:
                os.rmdir(parts[-1], dir_fd=dfd)
            except OSError as exc:
                raise from_oserror(exc, path) from exc

    def _remove_contents(self, dir_fd: int, parts: Parts, depth: int) -> None:
        if depth >= MAX_DEPTH:
            raise FileError(FileErrorCode.LIMIT_REACHED, join_parts(parts), "tree too deep")
        for name, st in _scan(dir_fd):
            child = (*parts, name)
            rel = join_parts(child)
            # Re-checked per entry: something denied may have appeared since the pre-scan.
            self.denylist.check(child)
            if stat.S_ISDIR(st.st_mode):
                try:
                    sub = os.open(name, _O_DIR_READ, dir_fd=dir_fd)
                except OSError as exc:
                    if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                        raise from_oserror(exc, rel) from exc
                    # Swapped for a link or file since the scan: remove that instead.
                    os.unlink(name, dir_fd=dir_fd)
                    continue
                try:
                    self._remove_contents(sub, child, depth + 1)
                finally:
                    os.close(sub)
                try:
                    os.rmdir(name, dir_fd=dir_fd)
                except OSError as exc:
                    raise from_oserror(exc, rel) from exc
            else:
                try:
                    os.unlink(name, dir_fd=dir_fd)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise from_oserror(exc, rel) from exc

    def chmod(self, path: str, mode: int) -> FileInfo:
        """Set permission bits (setuid/setgid/sticky are dropped). Links are refused: Linux
        cannot chmod a link, and following it is exactly what must not happen."""
        parts = self._parts(path)
        with self._parent(parts, path) as dfd:
            try:
                node = os.open(parts[-1], _O_NODE, dir_fd=dfd)
            except OSError as exc:
                raise from_oserror(exc, path) from exc
            try:
                if stat.S_ISLNK(os.fstat(node).st_mode):
                    raise FileError(FileErrorCode.SYMLINK_REFUSED, path, "path is a link")
                # The /proc magic link names the inode we just checked, so no race.
                os.chmod(_proc_fd_path(node), chmod_mode(mode))
            except OSError as exc:
                raise from_oserror(exc, path) from exc
            finally:
                os.close(node)
            return self._info(parts, self._lstat(dfd, parts[-1], path), dfd)

    def set_mtime(self, path: str, mtime: float) -> FileInfo:
        """Set access and modification time of `path` itself (a link's own times)."""
        parts = self._parts(path)
        with self._parent(parts, path) as dfd:
            try:
                os.utime(parts[-1], (mtime, mtime), dir_fd=dfd, follow_symlinks=False)
            except OSError as exc:
                raise from_oserror(exc, path) from exc
            return self._info(parts, self._lstat(dfd, parts[-1], path), dfd)

    # -- walking ------------------------------------------------------------------------------

    def _open_subdir(self, dir_fd: int, name: str, path: str) -> int:
        """A readable fd of the directory `name` under `dir_fd`, never through a link."""
        try:
            return os.open(name, _O_DIR_READ, dir_fd=dir_fd)
        except OSError as exc:
            raise self._component_error(dir_fd, name, path, exc) from exc

    def _make_staging(self, dir_fd: int, kind: str, path: str) -> str:
        name = f"{TEMP_PREFIX}{kind}-{secrets.token_hex(8)}"
        try:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
        except OSError as exc:
            raise from_oserror(exc, path) from exc
        if self.owner is not None:
            with contextlib.suppress(OSError):
                os.chown(name, *self.owner, dir_fd=dir_fd, follow_symlinks=False)
        return name

    def _remove_tree_quietly(self, dir_fd: int, name: str) -> None:
        """Best-effort removal of a staging tree we created (no deny-list: it is ours)."""
        with contextlib.suppress(OSError, FileError):
            sub = os.open(name, _O_DIR_READ, dir_fd=dir_fd)
            try:
                _remove_all(sub, 0)
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=dir_fd)

    def _check_tree_allowed(self, parent_fd: int, parts: Parts, st: os.stat_result) -> None:
        """Refuse (DENIED) if anything inside the directory `parts` is on the deny-list."""
        if not self.denylist.patterns:
            return
        sub = self._open_subdir(parent_fd, parts[-1], join_parts(parts))
        try:
            for entry in self._walk(sub, parts, st.st_dev):
                self.denylist.check(entry.parts)
        finally:
            os.close(sub)

    def _walk(
        self, dir_fd: int, parts: Parts, dev: int, depth: int = 0
    ) -> Generator[_Entry, None, None]:
        """Pre-order walk under an open directory: every entry lstat'ed, links and other
        filesystems (mount points) not descended into. Close the generator when stopping."""
        if depth >= MAX_DEPTH:
            raise FileError(FileErrorCode.LIMIT_REACHED, join_parts(parts), "tree too deep")
        for name, st in _scan(dir_fd):
            child = (*parts, name)
            yield _Entry(child, name, dir_fd, st)
            if stat.S_ISDIR(st.st_mode) and st.st_dev == dev:
                try:
                    sub = os.open(name, _O_DIR_READ, dir_fd=dir_fd)
                except OSError:
                    continue  # removed or swapped for a link since the scan
                try:
                    if os.fstat(sub).st_ino != st.st_ino:
                        continue  # replaced between scan and open
                    yield from self._walk(sub, child, dev, depth + 1)
                finally:
                    os.close(sub)

    def walk(self, path: str = "") -> Iterator[tuple[str, FileInfo]]:
        """Every entry under directory `path` (pre-order), skipping denied subtrees."""
        parts = self._parts(path, allow_root=True)
        dfd = self._open_dir(parts, path)
        try:
            rfd = os.open(".", _O_DIR_READ, dir_fd=dfd)
        finally:
            os.close(dfd)
        try:
            with contextlib.closing(self._walk(rfd, parts, os.fstat(rfd).st_dev)) as entries:
                for entry in entries:
                    if self.denylist.is_denied(entry.parts):
                        continue
                    info = self._info(entry.parts, entry.st, entry.parent_fd)
                    yield info.path, info
        finally:
            os.close(rfd)

    def disk_usage(self) -> DiskUsage:
        """Allocated bytes under the root: one walk by dir fds, links not followed, hard links
        counted once, other filesystems mounted below the root not counted."""
        rfd = os.open(".", _O_DIR_READ, dir_fd=self._fd)
        total = files = dirs = 0
        seen: set[tuple[int, int]] = set()
        try:
            st = os.fstat(rfd)
            total += st.st_blocks * 512
            with contextlib.closing(self._walk(rfd, (), st.st_dev)) as entries:
                for entry in entries:
                    est = entry.st
                    if est.st_dev != st.st_dev:
                        continue
                    if est.st_nlink > 1 and not stat.S_ISDIR(est.st_mode):
                        key = (est.st_dev, est.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                    total += est.st_blocks * 512
                    if stat.S_ISDIR(est.st_mode):
                        dirs += 1
                    else:
                        files += 1
        finally:
            os.close(rfd)
        return DiskUsage(total, files, dirs)

    def _search_walk(
        self, path: str, limits: SearchLimits, result: SearchResult
    ) -> Generator[_Entry, None, None]:
        """Entries to search: not denied, stopping (and marking truncated) at the bounds."""
        parts = self._parts(path, allow_root=True)
        dfd = self._open_dir(parts, path)
        try:
            rfd = os.open(".", _O_DIR_READ, dir_fd=dfd)
        finally:
            os.close(dfd)
        deadline = time.monotonic() + limits.time_budget_s
        visited = 0
        try:
            with contextlib.closing(self._walk(rfd, parts, os.fstat(rfd).st_dev)) as entries:
                for entry in entries:
                    if self.denylist.is_denied(entry.parts):
                        continue
                    visited += 1
                    if visited > limits.max_files or time.monotonic() > deadline:
                        result.truncated = True
                        return
                    yield entry
                    if len(result.matches) >= limits.max_results:
                        result.truncated = True
                        return
        finally:
            os.close(rfd)

    def search_names(
        self, pattern: str, *, path: str = "", limits: SearchLimits | None = None
    ) -> SearchResult:
        """Entries under `path` whose name matches the glob `pattern` (case-insensitive)."""
        limits = limits or SearchLimits()
        result = SearchResult()
        needle = pattern.lower()
        with contextlib.closing(self._search_walk(path, limits, result)) as entries:
            for entry in entries:
                if fnmatch.fnmatchcase(entry.name.lower(), needle):
                    result.matches.append(
                        SearchMatch(join_parts(entry.parts), file_type(entry.st.st_mode))
                    )
        return result

    def search_content(
        self, text: str, *, path: str = "", limits: SearchLimits | None = None
    ) -> SearchResult:
        """Lines containing `text` (case-insensitive) in regular files under `path`; reads at
        most `max_bytes_per_file` of each file and skips binary files (NUL in the first 8 KiB)."""
        limits = limits or SearchLimits()
        result = SearchResult()
        needle = text.encode().lower()
        if not needle:
            raise FileError(FileErrorCode.BAD_PATH, path, "empty search text")
        with contextlib.closing(self._search_walk(path, limits, result)) as entries:
            for entry in entries:
                if not stat.S_ISREG(entry.st.st_mode):
                    continue
                rel = join_parts(entry.parts)
                try:
                    fd, _ = self._open_regular(entry.parent_fd, entry.name, rel)
                except FileError:
                    continue  # changed since the scan
                try:
                    data = os.pread(fd, limits.max_bytes_per_file, 0)
                finally:
                    os.close(fd)
                if b"\x00" in data[:8192]:
                    continue
                for lineno, line in enumerate(data.split(b"\n"), start=1):
                    if needle in line.lower():
                        preview = line[:200].decode("utf-8", "replace")
                        result.matches.append(SearchMatch(rel, FileType.FILE, lineno, preview))
                        if len(result.matches) >= limits.max_results:
                            break
        return result


def _proc_fd_path(fd: int) -> str:
    """The `/proc` name of an open fd: chmod/chown through it act on that exact inode."""
    return f"/proc/self/fd/{fd}"


def _scan(dir_fd: int) -> list[tuple[str, os.stat_result]]:
    """Names and lstat results of one directory, read completely before the caller changes
    anything in it (deleting while iterating a directory stream may skip entries)."""
    out = []
    with os.scandir(dir_fd) as it:
        for entry in it:
            try:
                out.append((entry.name, entry.stat(follow_symlinks=False)))
            except FileNotFoundError:
                continue
    return out


def _remove_all(dir_fd: int, depth: int) -> None:
    """Remove everything inside a directory we own (staging), never following links."""
    if depth >= MAX_DEPTH:
        raise FileError(FileErrorCode.LIMIT_REACHED, "", "tree too deep")
    for name, st in _scan(dir_fd):
        if stat.S_ISDIR(st.st_mode):
            try:
                sub = os.open(name, _O_DIR_READ, dir_fd=dir_fd)
            except OSError:
                os.unlink(name, dir_fd=dir_fd)
                continue
            try:
                _remove_all(sub, depth + 1)
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=dir_fd)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
