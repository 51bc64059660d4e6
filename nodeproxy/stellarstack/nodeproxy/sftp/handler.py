"""The SFTP request handler: every request goes through the server's `SafeRoot`.

asyncssh's own `chroot` is not used: it maps paths by string and then calls the ordinary
`open`/`stat` of the host, which follow symlinks a game (or a user's upload of an archive)
planted inside the root out of it. Here every path is normalised to a relative path and given
to `SafeRoot`, which walks it one component at a time without following any link.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import asyncssh

from stellarstack.nodeproxy.files import (
    AtomicWriter,
    FileError,
    FileErrorCode,
    FileInfo,
    FileReader,
    FileType,
    SafeRoot,
)

from .auth import Permission, SftpGrant
from .status import permission_denied, sftp_error, unsupported

T = TypeVar("T")

MAX_READ: Final = 256 * 1024
"""Largest chunk one read request returns (clients ask for 32-256 KiB)."""
MAX_GAP: Final = 16 * 1024 * 1024
"""Largest hole a write past the current end may leave (filled with zeros); clients write
sequentially, so a bigger jump is a client bug or an attempt to burn disk and CPU."""
MAX_OPEN_FILES: Final = 64
"""Open file handles per session: each holds a file descriptor of the node agent."""
_ZEROS: Final = bytes(64 * 1024)
_TYPE_BITS: Final = {
    FileType.FILE: stat.S_IFREG,
    FileType.DIRECTORY: stat.S_IFDIR,
    FileType.SYMLINK: stat.S_IFLNK,
    FileType.OTHER: 0,
}
_SFTP_TYPES: Final = {
    FileType.FILE: asyncssh.FILEXFER_TYPE_REGULAR,
    FileType.DIRECTORY: asyncssh.FILEXFER_TYPE_DIRECTORY,
    FileType.SYMLINK: asyncssh.FILEXFER_TYPE_SYMLINK,
    FileType.OTHER: asyncssh.FILEXFER_TYPE_SPECIAL,
}


def client_path(path: bytes) -> str:
    """The normalised absolute spelling of a client path: `..` is resolved by name and never
    climbs above `/` (`/../../etc` is `/etc` of the server root). Relative paths are relative
    to `/`, the server root, which is every session's home directory."""
    text = path.decode("utf-8", "surrogateescape")
    if "\x00" in text:
        raise sftp_error(FileError(FileErrorCode.BAD_PATH, text, "NUL byte in path"))
    return posixpath.normpath(posixpath.join("/", text)).replace("//", "/")


def relative_path(path: bytes) -> str:
    """The path `SafeRoot` takes: `client_path` without its leading `/` (`""` is the root)."""
    return client_path(path).lstrip("/")


def attrs_of(info: FileInfo) -> asyncssh.SFTPAttrs:
    """SFTP attributes of an entry (never those of a link's target)."""
    mtime = int(info.mtime)
    return asyncssh.SFTPAttrs(
        type=_SFTP_TYPES[info.type],
        size=info.size,
        permissions=_TYPE_BITS[info.type] | info.mode,
        atime=mtime,
        mtime=mtime,
    )


@dataclass(eq=False)
class _Reading:
    path: str
    reader: FileReader


@dataclass(eq=False)
class _Writing:
    """An upload in progress: bytes go to a temp file that replaces `path` on close."""

    path: str
    writer: AtomicWriter
    mode: int
    append: bool
    pending_mode: int | None = None
    pending_mtime: float | None = None
    durable: bool = False
    failed: str | None = None
    """Why a write was refused; the temp file is gone and close must not commit."""


class ConfinedSFTPServer(asyncssh.SFTPServer):
    """One SFTP session on one server root, limited to what the grant permits.

    Uploads are atomic: a file opened for writing is written to a temporary file and moved
    into place when the client closes it; a session that ends with the file still open (a
    dropped connection) leaves nothing behind. Writes must therefore be sequential (every
    client's upload is); a write before the current end is refused as unsupported.
    """

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel[bytes],
        root: SafeRoot,
        grant: SftpGrant,
    ) -> None:
        super().__init__(chan)
        self._root = root
        self._grant = grant
        self._open: set[_Reading | _Writing] = set()

    # -- helpers ------------------------------------------------------------------------------

    def _need(self, permission: Permission) -> None:
        if not self._grant.allows(permission):
            raise permission_denied(permission.value)

    async def _run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking `SafeRoot` call off the event loop, mapping its `FileError`."""
        try:
            return await asyncio.to_thread(func, *args, **kwargs)
        except FileError as exc:
            raise sftp_error(exc) from None

    def _sync(self, func: Callable[..., T], *args: Any) -> T:
        """A short `SafeRoot` call where asyncssh needs an answer synchronously."""
        try:
            return func(*args)
        except FileError as exc:
            raise sftp_error(exc) from None

    async def _exists(self, path: str) -> FileInfo | None:
        try:
            return await asyncio.to_thread(self._root.stat, path)
        except FileError as exc:
            if exc.code is FileErrorCode.NOT_FOUND:
                return None
            raise sftp_error(exc) from None

    # -- paths --------------------------------------------------------------------------------

    def realpath(self, path: bytes) -> bytes:
        """Normalised by name only (no link is resolved, no lookup made)."""
        return client_path(path).encode("utf-8", "surrogateescape")

    async def readlink(self, path: bytes) -> bytes:
        """A link's text, for display; it is never resolved."""
        self._need(Permission.READ)
        rel = relative_path(path)
        info = await self._run(self._root.stat, rel)
        if info.type is not FileType.SYMLINK or info.link_target is None:
            raise sftp_error(FileError(FileErrorCode.BAD_PATH, rel, "not a symbolic link"))
        return info.link_target.encode("utf-8", "surrogateescape")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        """Refused: links are never created (they are how paths escape a root)."""
        raise sftp_error(FileError(FileErrorCode.SYMLINK_REFUSED, relative_path(newpath)))

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        """Refused: a hard link to a file outside the root's control is as bad as a symlink."""
        raise sftp_error(
            FileError(FileErrorCode.SYMLINK_REFUSED, relative_path(newpath), "links refused")
        )

    # -- metadata -----------------------------------------------------------------------------

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        """`stat` follows links, and links are never followed: a link is refused here
        (`lstat` and listings still show it as a link)."""
        self._need(Permission.READ)
        rel = relative_path(path)
        info = await self._run(self._root.stat, rel)
        if info.type is FileType.SYMLINK:
            raise sftp_error(FileError(FileErrorCode.SYMLINK_REFUSED, rel, "path is a link"))
        return attrs_of(info)

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        self._need(Permission.READ)
        return attrs_of(await self._run(self._root.stat, relative_path(path)))

    async def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        if isinstance(file_obj, _Writing):
            return asyncssh.SFTPAttrs(
                type=asyncssh.FILEXFER_TYPE_REGULAR,
                size=file_obj.writer.written,
                permissions=stat.S_IFREG | file_obj.mode,
            )
        assert isinstance(file_obj, _Reading)
        st = os.fstat(file_obj.reader.fileno())
        return asyncssh.SFTPAttrs(
            type=asyncssh.FILEXFER_TYPE_REGULAR,
            size=st.st_size,
            permissions=stat.S_IFREG | stat.S_IMODE(st.st_mode),
            atime=int(st.st_mtime),
            mtime=int(st.st_mtime),
        )

    async def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        """chmod (rwx bits only) and times; owner changes and truncation are refused."""
        self._need(Permission.UPDATE)
        rel = relative_path(path)
        info = await self._run(self._root.stat, rel)
        self._check_settable(attrs, info.size)
        if attrs.permissions is not None:
            await self._run(self._root.chmod, rel, attrs.permissions & 0o777)
        if attrs.mtime is not None:
            await self._run(self._root.set_mtime, rel, float(attrs.mtime))

    async def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        await self.setstat(path, attrs)

    async def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        self._need(Permission.UPDATE)
        if isinstance(file_obj, _Writing):
            # Applied when the upload is moved into place on close.
            self._check_settable(attrs, file_obj.writer.written)
            if attrs.permissions is not None:
                file_obj.pending_mode = attrs.permissions & 0o777
            if attrs.mtime is not None:
                file_obj.pending_mtime = float(attrs.mtime)
            return
        assert isinstance(file_obj, _Reading)
        await self.setstat(file_obj.path.encode("utf-8", "surrogateescape"), attrs)

    @staticmethod
    def _check_settable(attrs: asyncssh.SFTPAttrs, size: int) -> None:
        if attrs.uid is not None or attrs.gid is not None:
            raise asyncssh.SFTPError(
                asyncssh.FX_PERMISSION_DENIED, "file ownership is fixed by the server"
            )
        if attrs.size is not None and attrs.size != size:
            raise unsupported("truncating with setstat")

    # -- directories --------------------------------------------------------------------------

    def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        """Entries of a directory. The directory is checked here, synchronously, so opendir
        itself fails for a missing path or a link; denied entries are not shown (SFTP cannot
        mark them, and recursive downloads would stop at them)."""
        self._need(Permission.READ)
        rel = relative_path(path)
        info = self._sync(self._root.stat, rel)
        if info.type is FileType.SYMLINK:
            raise sftp_error(FileError(FileErrorCode.SYMLINK_REFUSED, rel, "path is a link"))
        if info.type is not FileType.DIRECTORY:
            raise sftp_error(FileError(FileErrorCode.NOT_A_DIRECTORY, rel))
        return self._entries(rel, info)

    async def _entries(self, rel: str, info: FileInfo) -> AsyncIterator[asyncssh.SFTPName]:
        entries = await self._run(self._root.list_dir, rel)
        yield asyncssh.SFTPName(b".", attrs=attrs_of(info))
        for entry in entries:
            if entry.denied:
                continue
            name = entry.name.encode("utf-8", "surrogateescape")
            yield asyncssh.SFTPName(name, attrs=attrs_of(entry))

    async def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._need(Permission.CREATE)
        rel = relative_path(path)
        await self._run(self._root.mkdir, rel, parents=False)
        if attrs.permissions is not None:
            await self._run(self._root.chmod, rel, (attrs.permissions & 0o777) | 0o700)

    async def rmdir(self, path: bytes) -> None:
        self._need(Permission.DELETE)
        rel = relative_path(path)
        info = await self._run(self._root.stat, rel)
        if info.type is not FileType.DIRECTORY:
            raise sftp_error(FileError(FileErrorCode.NOT_A_DIRECTORY, rel))
        if await self._run(self._root.list_dir, rel):
            raise sftp_error(FileError(FileErrorCode.EXISTS, rel, "directory not empty"))
        await self._run(self._root.delete, rel)

    # -- files --------------------------------------------------------------------------------

    async def remove(self, path: bytes) -> None:
        """Remove a file or link (the link itself); directories need rmdir."""
        self._need(Permission.DELETE)
        rel = relative_path(path)
        info = await self._run(self._root.stat, rel)
        if info.type is FileType.DIRECTORY:
            raise sftp_error(FileError(FileErrorCode.IS_A_DIRECTORY, rel))
        await self._run(self._root.delete, rel)

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        """SFTP v3 rename: refuses to replace an existing target."""
        self._need(Permission.UPDATE)
        await self._run(self._root.rename, relative_path(oldpath), relative_path(newpath))

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        """Rename that replaces a file at the target (which also needs files.delete)."""
        self._need(Permission.UPDATE)
        dst = relative_path(newpath)
        if await self._exists(dst) is not None:
            self._need(Permission.DELETE)
        await self._run(self._root.rename, relative_path(oldpath), dst, overwrite=True)

    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        rel = relative_path(path)
        if len(self._open) >= MAX_OPEN_FILES:
            raise asyncssh.SFTPError(asyncssh.FX_FAILURE, "too many open files in this session")
        if not pflags & asyncssh.FXF_WRITE:
            self._need(Permission.READ)
            reader = await self._run(self._root.open_read, rel)
            handle: _Reading | _Writing = _Reading(rel, reader)
        else:
            if pflags & asyncssh.FXF_READ:
                raise unsupported("opening a file for both reading and writing")
            handle = await self._open_write(rel, pflags, attrs)
        self._open.add(handle)
        return handle

    async def _open_write(self, rel: str, pflags: int, attrs: asyncssh.SFTPAttrs) -> _Writing:
        existing = await self._exists(rel)
        keep = False
        if existing is None:
            if not pflags & asyncssh.FXF_CREAT:
                raise sftp_error(FileError(FileErrorCode.NOT_FOUND, rel))
            self._need(Permission.CREATE)
        else:
            if pflags & asyncssh.FXF_EXCL:
                raise sftp_error(FileError(FileErrorCode.EXISTS, rel))
            self._need(Permission.UPDATE)
            # Without truncation the old content stays and writes continue after it.
            keep = not pflags & asyncssh.FXF_TRUNC
        mode = None if attrs.permissions is None else attrs.permissions & 0o777
        writer = await self._run(
            self._root.open_write,
            rel,
            # A user who may only create must not replace a file that appeared meanwhile.
            overwrite=existing is not None or self._grant.allows(Permission.UPDATE),
            mode=mode,
        )
        try:
            if keep:
                await self._run(self._copy_existing, rel, writer)
        except BaseException:
            writer.abort()
            raise
        final_mode = mode if mode is not None else (existing.mode if existing else 0o644)
        return _Writing(rel, writer, final_mode | 0o600, bool(pflags & asyncssh.FXF_APPEND))

    def _copy_existing(self, rel: str, writer: AtomicWriter) -> None:
        with self._root.open_read(rel) as reader:
            writer.copy_from(reader.fileno(), reader.size)

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        if not isinstance(file_obj, _Reading):
            raise asyncssh.SFTPError(asyncssh.FX_PERMISSION_DENIED, "not open for reading")
        fd = file_obj.reader.fileno()
        try:
            return await asyncio.to_thread(os.pread, fd, min(size, MAX_READ), offset)
        except OverflowError:
            return b""  # an offset past what the kernel takes is past the end of any file
        except OSError as exc:
            raise asyncssh.SFTPError(asyncssh.FX_FAILURE, exc.strerror or "read failed") from None

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        if not isinstance(file_obj, _Writing):
            raise asyncssh.SFTPError(asyncssh.FX_PERMISSION_DENIED, "not open for writing")
        if file_obj.failed is not None:
            # Clients pipeline writes; those after a refused one get the same answer.
            raise asyncssh.SFTPError(
                asyncssh.FX_FAILURE, f"upload refused, nothing saved: {file_obj.failed}"
            )
        writer = file_obj.writer
        if not file_obj.append:
            if offset < writer.written:
                raise unsupported("rewriting bytes before the end of an upload")
            gap = offset - writer.written
            if gap > MAX_GAP:
                raise unsupported("writing far past the end of an upload")
        else:
            gap = 0
        try:
            await self._run(self._fill_and_write, writer, gap, data)
        except BaseException as exc:
            # A refused write (quota) ends the upload: the temp file is gone, and the later
            # close reports the failure again instead of committing a truncated file.
            file_obj.failed = str(getattr(exc, "reason", "")) or "write failed"
            writer.abort()
            raise
        return len(data)

    @staticmethod
    def _fill_and_write(writer: AtomicWriter, gap: int, data: bytes) -> None:
        while gap > 0:
            chunk = _ZEROS[: min(gap, len(_ZEROS))]
            writer.write(chunk)
            gap -= len(chunk)
        writer.write(data)

    async def fsync(self, file_obj: object) -> None:
        """An upload asked to be durable is fsynced when it is moved into place."""
        if isinstance(file_obj, _Writing):
            file_obj.durable = True

    async def close(self, file_obj: object) -> None:
        if isinstance(file_obj, _Reading | _Writing):
            self._open.discard(file_obj)
        if isinstance(file_obj, _Reading):
            file_obj.reader.close()
            return
        assert isinstance(file_obj, _Writing)
        if self._ending():
            # asyncssh closes leftover handles when the session ends; an upload the client
            # never closed is incomplete, so it is dropped, never committed.
            file_obj.writer.abort()
            return
        await self._commit(file_obj)

    async def _commit(self, handle: _Writing) -> None:
        if handle.failed is not None:
            raise asyncssh.SFTPError(
                asyncssh.FX_FAILURE, f"upload refused, nothing saved: {handle.failed}"
            )
        await self._run(handle.writer.commit, durable=handle.durable, mtime=handle.pending_mtime)
        if handle.pending_mode is not None:
            await self._run(self._root.chmod, handle.path, handle.pending_mode)

    def _ending(self) -> bool:
        """Whether the request stream has ended (client EOF or a dropped connection): asyncssh
        then closes the handles the client left open, and those uploads are incomplete.
        asyncssh has no public flag for it, so the channel's receive state is read (with
        `is_closing` as the fallback should that attribute ever go away). A client that
        waits for the answer to its close - every client that wants to know the upload
        worked - is never affected."""
        recv_state = getattr(self.channel, "_recv_state", "open")
        return bool(self.channel.is_closing()) or recv_state != "open"

    def statvfs(self, path: bytes) -> asyncssh.SFTPVFSAttrs:
        """Refused: it would describe the host's filesystem, not the server's quota."""
        raise unsupported("statvfs")

    def fstatvfs(self, file_obj: object) -> asyncssh.SFTPVFSAttrs:
        raise unsupported("fstatvfs")

    def lock(self, file_obj: object, offset: int, length: int, flags: int) -> None:
        raise unsupported("byte-range locking")

    def unlock(self, file_obj: object, offset: int, length: int) -> None:
        raise unsupported("byte-range locking")

    def exit(self) -> None:
        """Drop uploads still open and release the root."""
        for handle in list(self._open):
            if isinstance(handle, _Writing):
                handle.writer.abort()
            else:
                handle.reader.close()
        self._open.clear()
        self._root.close()
