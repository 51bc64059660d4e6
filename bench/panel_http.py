"""The panel's API under load, against a bare FastAPI endpoint in the same run.

`wrk` drives `GET /api/servers` (the caller's server list, 25 servers, API key auth, SQLite)
on the real panel process (`stellarstack panel serve`, one uvicorn worker), then a hello-world
FastAPI app served the same way; the figures are reported as ratios, because the machine is
shared and noisy:

- requests/s: panel ÷ bare (higher is better; 1.0 would mean the panel costs nothing),
- p99 latency: panel ÷ bare (lower is better).

Needs `wrk` (Debian package); prints why and exits 0 without it. Every run is bounded
(`--seconds` each). Usage: python bench/panel_http.py [--seconds 8] [--connections 16]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

SERVERS = 25


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve(command: list[str], env: dict[str, str], url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(url, timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"server did not answer: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wrk(
    url: str, *, seconds: int, connections: int, headers: dict[str, str]
) -> tuple[float, float]:
    """Requests/s and p99 latency (ms) of one wrk run."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        [*command, url], check=True, capture_output=True, text=True, timeout=seconds + 30
    ).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"wrk saw errors:\n{output}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99_match = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    assert p99_match is not None, output
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_match.group(2)]
    return rps, float(p99_match.group(1)) * scale


def seed(panel_url: str) -> str:
    """The admin, an API key, and servers owned by the admin; returns the key."""
    from stellarstack.panel.context import build_context
    from stellarstack.panel.db.engine import transaction
    from stellarstack.panel.db.models import Server, TargetKind, User
    from stellarstack.panel.settings import PanelSettings

    with httpx.Client(base_url=panel_url) as client:
        setup = client.post(
            "/api/auth/setup",
            json={"email": "bench@example.com", "name": "Bench", "password": secrets.token_hex(8)},
        )
        setup.raise_for_status()
        created = client.post(
            "/api/account/api-keys",
            json={"name": "bench", "scopes": ["servers:read"]},
            headers={"X-CSRF-Token": setup.json()["csrf_token"]},
        )
        created.raise_for_status()
        key: str = created.json()["key"]
    context = build_context(PanelSettings())
    with transaction(context.sessions) as db:
        owner = db.query(User).filter_by(email="bench@example.com").one()
        for index in range(SERVERS):
            db.add(
                Server(
                    name=f"Server {index}",
                    owner_id=owner.id,
                    target_kind=TargetKind.KUBERNETES,
                    namespace="bench",
                    resource_name=f"server-{index}",
                    blueprint="toy",
                    state="Running",
                )
            )
    context.engine.dispose()
    return key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("panel_http: skipped: `wrk` is not installed (Debian package wrk)")
        return 0
    command = Path(sys.executable).with_name("stellarstack")
    with tempfile.TemporaryDirectory(prefix="stellarstack-bench-") as scratch:
        state = Path(scratch)
        panel_port, bare_port = free_port(), free_port()
        env = {
            **os.environ,
            "STELLARSTACK_PANEL_ENVIRONMENT": "development",
            "STELLARSTACK_PANEL_SECRET_KEY": secrets.token_hex(32),
            "STELLARSTACK_PANEL_DATABASE_URL": f"sqlite:///{state}/panel.db",
            "STELLARSTACK_PANEL_DATA_DIR": str(state),
            "STELLARSTACK_PANEL_PORT": str(panel_port),
        }
        os.environ.update({k: v for k, v in env.items() if k.startswith("STELLARSTACK_PANEL_")})
        bare_app = state / "bare.py"
        bare_app.write_text(
            textwrap.dedent(
                """
                from fastapi import FastAPI
                app = FastAPI()

                @app.get("/hello")
                def hello() -> dict[str, str]:
                    return {"hello": "world"}
                """
            )
        )
        panel_url = f"http://127.0.0.1:{panel_port}"
        bare_url = f"http://127.0.0.1:{bare_port}/hello"
        with serve([str(command), "panel", "serve"], env, f"{panel_url}/healthz", state / "p.log"):
            key = seed(panel_url)
            auth = {"Authorization": f"Bearer {key}"}
            check = httpx.get(f"{panel_url}/api/servers", headers=auth)
            check.raise_for_status()
            listed = check.json()
            count = listed["total"] if isinstance(listed, dict) else len(listed)
            assert count == SERVERS, listed
            wrk(f"{panel_url}/api/servers", seconds=2, connections=4, headers=auth)  # warm-up
            panel_rps, panel_p99 = wrk(
                f"{panel_url}/api/servers",
                seconds=args.seconds,
                connections=args.connections,
                headers=auth,
            )
        bare_command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(state),
            "bare:app",
            "--port",
            str(bare_port),
            "--log-level",
            "warning",
        ]
        with serve(bare_command, env, bare_url, state / "b.log"):
            wrk(bare_url, seconds=2, connections=4, headers={})
            bare_rps, bare_p99 = wrk(
                bare_url, seconds=args.seconds, connections=args.connections, headers={}
            )
    print(f"GET /api/servers ({SERVERS} servers, API key, SQLite), {args.connections} connections:")
    print(f"  panel {panel_rps:8.0f} req/s  p99 {panel_p99:7.1f} ms")
    print(f"  bare  {bare_rps:8.0f} req/s  p99 {bare_p99:7.1f} ms  (FastAPI hello-world)")
    print(f"  ratio req/s {panel_rps / bare_rps:.2f}x  p99 {panel_p99 / bare_p99:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
