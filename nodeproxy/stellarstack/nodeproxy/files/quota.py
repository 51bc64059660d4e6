"""Disk quota of one server root, consulted before and while anything is written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import FileError, FileErrorCode


@dataclass(frozen=True)
class Quota:
    """A byte limit and a provider of current usage.

    `usage` is called once per operation (it may walk the tree, so not per chunk); the
    operation then tracks what it has written itself and refuses as soon as
    `usage + written - freed` would pass `limit_bytes`. `limit_bytes=None` means unlimited.
    """

    limit_bytes: int | None
    usage: Callable[[], int]

    @classmethod
    def unlimited(cls) -> Quota:
        """A quota that never refuses."""
        return cls(None, lambda: 0)

    def start(self, path: str, *, freed: int = 0) -> QuotaBudget:
        """Begin a write: snapshot usage once; `freed` is what the write will replace."""
        if self.limit_bytes is None:
            return QuotaBudget(path, None)
        return QuotaBudget(path, self.limit_bytes - self.usage() + freed)


class QuotaBudget:
    """The bytes one operation may still add; `charge` raises once they are used up."""

    def __init__(self, path: str, remaining: int | None) -> None:
        self.path = path
        self.remaining = remaining

    def ensure_fits(self, nbytes: int) -> None:
        """Refuse up front when `nbytes` would not fit, without charging them (a declared
        upload or archive size is checked before a single byte is written)."""
        if self.remaining is not None and nbytes > self.remaining:
            raise FileError(FileErrorCode.QUOTA_EXCEEDED, self.path, "disk quota exceeded")

    def charge(self, nbytes: int) -> None:
        """Account for `nbytes` about to be written; refuse with QUOTA_EXCEEDED if over."""
        if self.remaining is None:
            return
        self.remaining -= nbytes
        if self.remaining < 0:
            raise FileError(FileErrorCode.QUOTA_EXCEEDED, self.path, "disk quota exceeded")
