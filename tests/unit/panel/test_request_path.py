"""The request path's pure parts: the database gate (admission without threads), the pool it is
sized for, and when a page of a list tells its own total."""

from __future__ import annotations

import asyncio
import threading

import pytest

from stellarstack.panel.db.gate import (
    BACKGROUND_CONNECTIONS,
    CONNECTIONS_PER_ADMISSION,
    DatabaseGate,
    pool_capacity,
)
from stellarstack.panel.services.server_lists import page_total


@pytest.mark.parametrize(
    ("page", "per_page", "found", "total"),
    [
        (1, 50, 0, 0),  # an empty first page: nothing at all
        (1, 50, 25, 25),  # not full: the last page
        (3, 10, 4, 24),  # a last page further on
        (1, 50, 50, None),  # full: more may follow, only a count tells
        (2, 50, 0, None),  # past the end: only a count tells where it is
    ],
)
def test_a_page_that_is_not_full_tells_the_total(
    page: int, per_page: int, found: int, total: int | None
) -> None:
    assert page_total(page, per_page, found) == total


@pytest.mark.parametrize("admissions", [1, 2, 10, 50])
def test_the_pool_serves_every_admission_and_the_background_without_waiting(
    admissions: int,
) -> None:
    pool_size, overflow = pool_capacity(admissions)
    assert pool_size == admissions
    assert pool_size + overflow == admissions * CONNECTIONS_PER_ADMISSION + BACKGROUND_CONNECTIONS


def test_the_gate_refuses_a_size_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DatabaseGate(0)


def test_the_gate_admits_at_most_its_size_first_come_first_served() -> None:
    gate = DatabaseGate(2)
    inside = 0
    most = 0
    order: list[int] = []

    async def work(number: int, hold: asyncio.Event) -> None:
        nonlocal inside, most
        async with gate.admitted():
            inside += 1
            most = max(most, inside)
            order.append(number)
            await hold.wait()
            inside -= 1

    async def main() -> None:
        holds = [asyncio.Event() for _ in range(6)]
        tasks = [asyncio.create_task(work(n, holds[n])) for n in range(6)]
        await asyncio.sleep(0)
        assert order == [0, 1]
        assert gate.waiting == 4
        for hold in holds:  # releasing one admits the next in line
            hold.set()
            await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)

    asyncio.run(main())
    assert most == 2
    assert order == [0, 1, 2, 3, 4, 5]
    assert gate.waiting == 0


def test_a_cancelled_waiter_gives_its_place_to_the_next() -> None:
    gate = DatabaseGate(1)

    async def main() -> None:
        await gate.acquire()
        cancelled = asyncio.create_task(gate.acquire())
        following = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        # Handed over and cancelled in the same turn: the place must not be lost.
        gate.release()
        cancelled.cancel()
        await asyncio.wait_for(following, timeout=10)
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        gate.release()
        # Nothing is held any more: the whole size is free again.
        await asyncio.wait_for(gate.acquire(), timeout=10)
        gate.release()
        assert gate.waiting == 0

    asyncio.run(main())


def test_one_gate_serves_event_loops_in_several_threads() -> None:
    gate = DatabaseGate(1)
    inside = 0
    most = 0
    lock = threading.Lock()
    failures: list[BaseException] = []

    async def visits() -> None:
        nonlocal inside, most
        for _ in range(50):
            async with gate.admitted():
                with lock:
                    inside += 1
                    most = max(most, inside)
                await asyncio.sleep(0)
                with lock:
                    inside -= 1

    def loop() -> None:
        try:
            asyncio.run(asyncio.wait_for(visits(), timeout=30))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert not any(thread.is_alive() for thread in threads)
    assert most == 1


def test_run_calls_the_function_in_a_thread_once_admitted() -> None:
    gate = DatabaseGate(1)
    main_thread = threading.get_ident()

    async def main() -> tuple[int, int]:
        return await gate.run(lambda a, b: (a + b, threading.get_ident()), 2, b=3)

    total, thread = asyncio.run(main())
    assert total == 5
    assert thread != main_thread
