"""The node's SFTP server (asyncssh): every operation confined to a server root by `SafeRoot`.

See docs/sftp.md for the user name format, permission nodes and what is refused.
"""

from .auth import (
    LocalAuthenticator,
    Permission,
    SftpAuthenticator,
    SftpGrant,
    SftpLogin,
    hash_password,
    parse_username,
    verify_password,
)
from .handler import ConfinedSFTPServer, client_path, relative_path
from .server import LoginLimits, LoginRateLimiter, SftpService, load_or_create_host_key
from .status import SFTP_STATUS, sftp_error

__all__ = [
    "SFTP_STATUS",
    "ConfinedSFTPServer",
    "LocalAuthenticator",
    "LoginLimits",
    "LoginRateLimiter",
    "Permission",
    "SftpAuthenticator",
    "SftpGrant",
    "SftpLogin",
    "SftpService",
    "client_path",
    "hash_password",
    "load_or_create_host_key",
    "parse_username",
    "relative_path",
    "sftp_error",
    "verify_password",
]
