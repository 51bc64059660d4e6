"""A throwaway PostgreSQL server for the panel's tests (pytest plugin).

The session starts one server from the Debian `postgresql` binaries in a temporary directory, on
a free loopback port, and migrates a template database once; each test then gets a fresh database
copied from that template (`CREATE DATABASE ... TEMPLATE`, milliseconds). PostgreSQL refuses to
run as root, so as root the server runs as the `postgres` system user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.required import POSTGRES, unavailable


def _binaries() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str) -> str:
        return (
            f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{database}"
        )

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        ) as connection:
            connection.execute(sql)  # type: ignore[arg-type]


@contextlib.contextmanager
def run_postgres() -> Iterator[PostgresServer]:
    binaries = _binaries()
    if binaries is None:
        unavailable("PostgreSQL is not installed (Debian package `postgresql`)", POSTGRES)
    as_root = os.geteuid() == 0
    runner: list[str] = []
    if as_root:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and no `postgres` user exists", POSTGRES)
        runner = ["runuser", "-u", "postgres", "--"]
    workdir = Path(tempfile.mkdtemp(prefix="stellarstack-pg-"))
    data = workdir / "data"
    password = secrets.token_hex(16)
    password_file = workdir / "password"
    password_file.write_text(password)
    if as_root:
        shutil.chown(workdir, "postgres")
        shutil.chown(password_file, "postgres")
    port = _free_port()
    subprocess.run(
        [
            *runner,
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "stellarstack",
            "--auth=scram-sha-256",
            f"--pwfile={password_file}",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    log = workdir / "server.log"
    subprocess.run(
        [
            *runner,
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {workdir} -c fsync=off -c max_connections=200",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        server = PostgresServer("127.0.0.1", port, "stellarstack", password)
        deadline = time.monotonic() + 30
        while True:
            try:
                server.admin("SELECT 1")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        subprocess.run(
            [*runner, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with run_postgres() as server:
        yield server
