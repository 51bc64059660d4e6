"""`stellarstack panel serve` as real processes over one database (an SQLite file, a PostgreSQL
database): the background tasks (webhook delivery, node heartbeats, status sync) run in exactly
one process at a time — across replicas and across the workers of `--workers N` — and when
that process is killed (-9, no goodbye), another takes them over once its lease has run out."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from sqlalchemy import select

from stellarstack.panel.db.engine import make_engine, make_session_factory, transaction
from stellarstack.panel.db.models import Lease
from stellarstack.panel.services.lease import holder_of
from stellarstack.panel.workers import LEASE_NAME
from support.runtime_harness import free_port

CLI = Path(sys.executable).parent / "stellarstack"
LEASE_SECONDS = 3.0
# Taken over at most a lease after the holder's last renewal, plus one try of the others.
TAKEOVER_SECONDS = LEASE_SECONDS + LEASE_SECONDS / 3
STARTUP_SECONDS = 120.0
LEADER = re.compile(r"^stellarstack_panel_background_leader (\S+)$", re.MULTILINE)

T = TypeVar("T")


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def leads(self) -> bool:
        """Whether this process runs the background tasks now (its gauge)."""
        found = LEADER.search(httpx.get(f"{self.url}/metrics", timeout=10).text)
        assert found is not None, "the leader gauge is missing"
        return float(found.group(1)) == 1.0


def wait_for(check: Callable[[], T | None], what: str, within: float) -> T:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(httpx.HTTPError):
            found = check()
            if found:
                return found
        assert time.monotonic() < deadline, f"{what}: not within {within:.0f} s"
        time.sleep(0.2)


@contextlib.contextmanager
def panel_process(tmp_path: Path, database_url: str, *, workers: int = 1) -> Iterator[Served]:
    port = free_port()
    env = {
        **os.environ,
        "STELLARSTACK_PANEL_ENVIRONMENT": "production",
        "STELLARSTACK_PANEL_SECRET_KEY": secrets.token_hex(32),
        "STELLARSTACK_PANEL_DATABASE_URL": database_url,
        "STELLARSTACK_PANEL_DATA_DIR": str(tmp_path),
        "STELLARSTACK_PANEL_PORT": str(port),
        "STELLARSTACK_PANEL_BACKGROUND_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    log = tmp_path / f"panel-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [CLI, "panel", "serve", "--workers", str(workers)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:

        def answers() -> bool:
            assert process.poll() is None, log.read_text()[-3000:]
            return httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200

        wait_for(answers, "the panel answering", STARTUP_SECONDS)
        yield served
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def lease_holder_pid(database_url: str) -> int | None:
    """The pid in the current holder's identity (`host:pid:random`), if it has not run out."""
    engine = make_engine(database_url, admissions=1)
    try:
        with transaction(make_session_factory(engine)) as db:
            holder = holder_of(db, LEASE_NAME)
            rows = db.scalars(select(Lease)).all()
            assert len(rows) <= 1, rows
    finally:
        engine.dispose()
    return None if holder is None else int(holder.split(":")[1])


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


def test_one_replica_runs_the_background_tasks_and_another_takes_over_when_it_dies(
    tmp_path: Path, panel_db_url: str
) -> None:
    # The second starts once the first answers (it has migrated the database by then).
    with (
        panel_process(tmp_path, panel_db_url) as first,
        panel_process(tmp_path, panel_db_url) as second,
    ):
        replicas = (first, second)
        leader = wait_for(
            lambda: next((r for r in replicas if r.leads()), None),
            "a replica running the background tasks",
            STARTUP_SECONDS,
        )
        follower = second if leader is first else first
        # Over several renewals: exactly one, always the same.
        for _ in range(6):
            assert leader.leads()
            assert not follower.leads()
            time.sleep(LEASE_SECONDS / 3)
        assert lease_holder_pid(panel_db_url) == leader.process.pid

        os.killpg(leader.process.pid, signal.SIGKILL)
        leader.process.wait(timeout=30)
        killed_at = time.monotonic()
        wait_for(follower.leads, "the other replica taking over", TAKEOVER_SECONDS + 10)
        took = time.monotonic() - killed_at
        assert took <= TAKEOVER_SECONDS + 5, took
        assert lease_holder_pid(panel_db_url) == follower.process.pid


def test_one_of_several_workers_runs_them_and_another_takes_over_when_it_is_killed(
    tmp_path: Path, panel_db_url: str
) -> None:
    with panel_process(tmp_path, panel_db_url, workers=2) as served:
        workers = wait_for(
            lambda: found if len(found := children_of(served.process.pid)) >= 2 else None,
            "two workers",
            STARTUP_SECONDS,
        )
        holder = wait_for(
            lambda: lease_holder_pid(panel_db_url), "a worker holding the lease", STARTUP_SECONDS
        )
        assert holder in workers
        os.kill(holder, signal.SIGKILL)
        killed_at = time.monotonic()
        successor = wait_for(
            lambda: pid if (pid := lease_holder_pid(panel_db_url)) not in {None, holder} else None,
            "another worker taking over",
            TAKEOVER_SECONDS + 10,
        )
        assert time.monotonic() - killed_at <= TAKEOVER_SECONDS + 5
        assert successor in children_of(served.process.pid)
        # The surviving worker serves meanwhile.
        assert httpx.get(f"{served.url}/healthz", timeout=10).status_code == 200
