"""The node's file layer: every path confined to a server root, archives, quota, deny-list.

`SafeRoot` is the only way in; `FileError.code` (a `FileErrorCode`) says what went wrong and
`HTTP_STATUS` is the one table that turns it into an HTTP status.
"""

from .errors import HTTP_STATUS, FileError, FileErrorCode
from .paths import Denylist, archive_entry_parts, split_path
from .quota import Quota
from .root import (
    AtomicWriter,
    CopyReport,
    DiskUsage,
    FileInfo,
    FileReader,
    FileType,
    SafeRoot,
    SearchLimits,
    SearchMatch,
    SearchResult,
)

__all__ = [
    "HTTP_STATUS",
    "AtomicWriter",
    "CopyReport",
    "Denylist",
    "DiskUsage",
    "FileError",
    "FileErrorCode",
    "FileInfo",
    "FileReader",
    "FileType",
    "Quota",
    "SafeRoot",
    "SearchLimits",
    "SearchMatch",
    "SearchResult",
    "archive_entry_parts",
    "split_path",
]
