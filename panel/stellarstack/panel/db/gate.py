"""Admission to the database: at most `size` pieces of request work hold pooled connections at
once, and the rest wait in the event loop, never in a worker thread.

Why: a request's database work is spread over several thread hand-offs (its dependencies, the
route, the commit). If threads waited for pooled connections, a burst of requests could fill
every worker thread with waiters while the requests that hold the connections wait for a thread
to finish in: nothing moves until the pool's checkout times out. Behind the gate only admitted
work asks for connections, and the pool is sized so that admitted work never waits for one
(see `pool_capacity`).

The gate is thread-safe and serves several event loops at once (each test client runs its own
loop over one shared engine); waiters are served first come, first served."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import ParamSpec, TypeVar

from anyio import to_thread

P = ParamSpec("P")
T = TypeVar("T")

CONNECTIONS_PER_ADMISSION = 2
"""Connections one admitted piece of work holds at most at once: its own transaction and one
short transaction of its own beside it (the last-used time of a read, a route's status write)."""
BACKGROUND_CONNECTIONS = 4
"""Connections kept for the background tasks (webhook delivery, node heartbeats, status sync,
and the lease that decides which process runs them), which do not pass the gate."""


def pool_capacity(admissions: int) -> tuple[int, int]:
    """(pool_size, max_overflow) of an engine whose gate admits `admissions` at once: the
    steady pool serves the admissions' own transactions; the overflow covers their short
    side transactions and the background tasks, so no checkout ever waits."""
    return admissions, admissions * (CONNECTIONS_PER_ADMISSION - 1) + BACKGROUND_CONNECTIONS


class DatabaseGate:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the database gate needs a size of at least 1")
        self.size = size
        self._lock = threading.Lock()
        self._free = size
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        """How many are queued for admission right now."""
        return len(self._waiters)

    async def acquire(self) -> None:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            entry = (loop, waiter)
            self._waiters.append(entry)
        try:
            await waiter
        except BaseException:
            with self._lock:
                try:
                    self._waiters.remove(entry)
                    handed_over = False
                except ValueError:
                    handed_over = True
            if handed_over:
                # `release` chose this waiter just as it was cancelled: pass the place on.
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(_admit, waiter)
                except RuntimeError:
                    continue  # that waiter's loop has closed; it no longer waits
                return
            self._free += 1

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args)` in a worker thread once admitted: database work that acquires and
        releases its connections within the call."""
        async with self.admitted():
            return await to_thread.run_sync(lambda: function(*args, **kwargs))


def _admit(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
