"""Disk usage of server data directories, measured rarely and shared by every reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from stellarstack.api.runtime import ServerKey


class DiskUsageCache:
    """Bytes each server's data occupies, re-measured at most once per `ttl`.

    A full walk of a large world takes seconds, so neither the reconcile loop nor every file
    upload may do one each time; both read this cache instead.
    """

    def __init__(self, ttl: timedelta = timedelta(seconds=30)) -> None:
        self._ttl = ttl
        self._measured: dict[ServerKey, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def get(self, key: ServerKey, measure: Callable[[], int]) -> int:
        """The cached figure when fresh; otherwise `measure()` (blocking) and remember it."""
        now = time.monotonic()
        with self._lock:
            cached = self._measured.get(key)
        if cached is not None and now - cached[0] < self._ttl.total_seconds():
            return cached[1]
        value = measure()
        with self._lock:
            self._measured[key] = (time.monotonic(), value)
        return value

    def forget(self, key: ServerKey) -> None:
        """Drop a server's figure (after large changes, or when it is deleted)."""
        with self._lock:
            self._measured.pop(key, None)
