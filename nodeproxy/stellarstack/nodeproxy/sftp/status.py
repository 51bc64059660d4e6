"""The one table that turns a `FileError` into an SFTP status code.

Only SFTP version 3 codes are used: version 3 is what OpenSSH and most clients speak, and the
server negotiates nothing newer, so a finer code (quota, exists) would be folded into
FX_FAILURE on the wire anyway. The `FileError` message travels as the status text.
"""

from __future__ import annotations

from typing import Final

import asyncssh

from stellarstack.nodeproxy.files import FileError, FileErrorCode

SFTP_STATUS: Final[dict[FileErrorCode, int]] = {
    FileErrorCode.NOT_FOUND: asyncssh.FX_NO_SUCH_FILE,
    FileErrorCode.DENIED: asyncssh.FX_PERMISSION_DENIED,
    FileErrorCode.SYMLINK_REFUSED: asyncssh.FX_PERMISSION_DENIED,
    FileErrorCode.NOT_A_REGULAR_FILE: asyncssh.FX_PERMISSION_DENIED,
    FileErrorCode.BAD_PATH: asyncssh.FX_FAILURE,
    FileErrorCode.EXISTS: asyncssh.FX_FAILURE,
    FileErrorCode.NOT_A_DIRECTORY: asyncssh.FX_FAILURE,
    FileErrorCode.IS_A_DIRECTORY: asyncssh.FX_FAILURE,
    FileErrorCode.QUOTA_EXCEEDED: asyncssh.FX_FAILURE,
    FileErrorCode.NO_SPACE: asyncssh.FX_FAILURE,
    FileErrorCode.TOO_LARGE: asyncssh.FX_FAILURE,
    FileErrorCode.LIMIT_REACHED: asyncssh.FX_FAILURE,
    FileErrorCode.BAD_ARCHIVE: asyncssh.FX_FAILURE,
    FileErrorCode.UNSAFE_ARCHIVE: asyncssh.FX_FAILURE,
    FileErrorCode.RANGE_NOT_SATISFIABLE: asyncssh.FX_FAILURE,
    FileErrorCode.IO_ERROR: asyncssh.FX_FAILURE,
}


def sftp_error(exc: FileError) -> asyncssh.SFTPError:
    """The SFTP error a client receives for a refused or failed file operation."""
    return asyncssh.SFTPError(SFTP_STATUS[exc.code], str(exc))


def unsupported(what: str) -> asyncssh.SFTPError:
    """FX_OP_UNSUPPORTED for an SFTP request this server deliberately does not implement."""
    return asyncssh.SFTPError(asyncssh.FX_OP_UNSUPPORTED, f"{what} is not supported")


def permission_denied(permission: str) -> asyncssh.SFTPError:
    """FX_PERMISSION_DENIED for an operation the user's grant does not cover."""
    return asyncssh.SFTPError(asyncssh.FX_PERMISSION_DENIED, f"missing permission {permission}")
