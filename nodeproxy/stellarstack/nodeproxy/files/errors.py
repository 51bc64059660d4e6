"""One vocabulary of file errors, and the one table that turns them into HTTP statuses."""

from __future__ import annotations

import enum
import errno
from http import HTTPStatus
from typing import Final


class FileErrorCode(enum.Enum):
    """Why a file operation was refused or failed; each code maps to one HTTP status."""

    BAD_PATH = "bad_path"
    """The path is malformed: `..`, NUL, too long, or names the root where it may not."""
    NOT_FOUND = "not_found"
    """Nothing exists at the path (or a parent of it)."""
    EXISTS = "exists"
    """Something already exists where the operation would create or move to."""
    NOT_A_DIRECTORY = "not_a_directory"
    """A directory was needed (as a parent or as the target) and something else is there."""
    IS_A_DIRECTORY = "is_a_directory"
    """A file was needed and a directory is there."""
    NOT_A_REGULAR_FILE = "not_a_regular_file"
    """The target is a device, FIFO or socket; those are never opened."""
    DENIED = "denied"
    """The path matches the blueprint's file deny-list."""
    SYMLINK_REFUSED = "symlink_refused"
    """The path goes through (or ends in) a symbolic link; links are never followed."""
    QUOTA_EXCEEDED = "quota_exceeded"
    """The server's disk quota would be exceeded; nothing was left behind."""
    TOO_LARGE = "too_large"
    """A size limit was hit: an archive's total size or compression ratio, a file too big."""
    LIMIT_REACHED = "limit_reached"
    """A count limit was hit: archive entries, directory depth."""
    BAD_ARCHIVE = "bad_archive"
    """The archive is corrupt, lies about its sizes, is encrypted or has an unknown format."""
    UNSAFE_ARCHIVE = "unsafe_archive"
    """An archive entry is a link, device or FIFO, or escapes the destination."""
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    """The requested byte range lies outside the file."""
    NO_SPACE = "no_space"
    """The node's filesystem itself is full."""
    IO_ERROR = "io_error"
    """Any other operating-system failure."""


# The single code -> HTTP status table; the node API maps every FileError through it.
HTTP_STATUS: Final[dict[FileErrorCode, HTTPStatus]] = {
    FileErrorCode.BAD_PATH: HTTPStatus.BAD_REQUEST,
    FileErrorCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
    FileErrorCode.EXISTS: HTTPStatus.CONFLICT,
    FileErrorCode.NOT_A_DIRECTORY: HTTPStatus.BAD_REQUEST,
    FileErrorCode.IS_A_DIRECTORY: HTTPStatus.BAD_REQUEST,
    FileErrorCode.NOT_A_REGULAR_FILE: HTTPStatus.BAD_REQUEST,
    FileErrorCode.DENIED: HTTPStatus.FORBIDDEN,
    FileErrorCode.SYMLINK_REFUSED: HTTPStatus.FORBIDDEN,
    FileErrorCode.QUOTA_EXCEEDED: HTTPStatus.INSUFFICIENT_STORAGE,
    FileErrorCode.TOO_LARGE: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    FileErrorCode.LIMIT_REACHED: HTTPStatus.UNPROCESSABLE_ENTITY,
    FileErrorCode.BAD_ARCHIVE: HTTPStatus.UNPROCESSABLE_ENTITY,
    FileErrorCode.UNSAFE_ARCHIVE: HTTPStatus.UNPROCESSABLE_ENTITY,
    FileErrorCode.RANGE_NOT_SATISFIABLE: HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
    FileErrorCode.NO_SPACE: HTTPStatus.INSUFFICIENT_STORAGE,
    FileErrorCode.IO_ERROR: HTTPStatus.INTERNAL_SERVER_ERROR,
}


class FileError(Exception):
    """A refused or failed file operation: a `code`, the (relative) `path` and a message."""

    def __init__(self, code: FileErrorCode, path: str, message: str = "") -> None:
        self.code = code
        self.path = path
        self.message = message or code.value.replace("_", " ")
        super().__init__(f"{self.message}: {path!r}" if path else self.message)

    @property
    def http_status(self) -> HTTPStatus:
        """The HTTP status the node API answers with."""
        return HTTP_STATUS[self.code]


# errno values that have a precise meaning for a caller; everything else is IO_ERROR.
_ERRNO_CODES: Final[dict[int, FileErrorCode]] = {
    errno.ENOENT: FileErrorCode.NOT_FOUND,
    errno.EEXIST: FileErrorCode.EXISTS,
    errno.ENOTEMPTY: FileErrorCode.EXISTS,
    errno.ENOTDIR: FileErrorCode.NOT_A_DIRECTORY,
    errno.EISDIR: FileErrorCode.IS_A_DIRECTORY,
    errno.ELOOP: FileErrorCode.SYMLINK_REFUSED,
    errno.ENAMETOOLONG: FileErrorCode.BAD_PATH,
    errno.EINVAL: FileErrorCode.BAD_PATH,
    errno.EXDEV: FileErrorCode.BAD_PATH,
    errno.ENOSPC: FileErrorCode.NO_SPACE,
    errno.EDQUOT: FileErrorCode.QUOTA_EXCEEDED,
    errno.EFBIG: FileErrorCode.TOO_LARGE,
}


def code_for_errno(err: int | None) -> FileErrorCode:
    """The file error code for an `OSError.errno` (IO_ERROR when it has no closer meaning)."""
    if err is None:
        return FileErrorCode.IO_ERROR
    return _ERRNO_CODES.get(err, FileErrorCode.IO_ERROR)


def from_oserror(exc: OSError, path: str) -> FileError:
    """Translate an `OSError` into a `FileError` about `path` (never leaking host paths)."""
    code = code_for_errno(exc.errno)
    return FileError(code, path, exc.strerror or code.value.replace("_", " "))
