"""Console fan-out through the panel, against the node's own console in the same run.

Starts what `make run` starts (`stellarstack panel local`: the panel, a node agent, the example
blueprints), creates a toy server through the panel API and starts it. Then, for 1, 4 and 8
watchers of the one server, a command is sent and the time until the *last* watcher sees its
output is measured (`--rounds` times):

- through the panel: `WS /api/servers/{id}/console` (API key), which proxies to the node;
- baseline: the node's console WebSocket directly (node token), the same fan-out.

Reported: p50/p99 of both and panel ÷ node. 8 is the per-server connection cap of both.
Needs Docker and `localhost/stellarstack/toy:1` (`make images`); prints why and exits 0 when
either is missing. Usage: python bench/panel_console.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[1]
TOY_IMAGE = "localhost/stellarstack/toy:1"
FANOUT = (1, 4, 8)
PANEL_PROTOCOL = "stellarstack.console.v1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def toy_image_present() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.images.get(TOY_IMAGE)
    except Exception as exc:  # no engine, no image: the bench cannot run here
        return f"{type(exc).__name__}: {exc}"
    return None


def container_exists(name: str) -> bool:
    import docker
    from docker.errors import NotFound

    client = docker.from_env(timeout=5)
    try:
        client.containers.get(name)
    except NotFound:
        return False
    finally:
        client.close()
    return True


def wait_until(check: Any, what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.3)
    raise SystemExit(f"timed out waiting for {what}")


def is_output(message: dict[str, Any], token: str) -> bool:
    # The panel sends {"type": "output", "line": ...}; the node {"type": "line", "data": ...}.
    return token in str(message.get("line") or message.get("data") or "")


async def settle(ws: ClientConnection, seconds: float = 0.5) -> None:
    """Drain the backlog and greeting messages a fresh console sends."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            return


async def fanout_round(sockets: list[ClientConnection], send: Any) -> float:
    token = secrets.token_hex(4)

    async def seen(ws: ClientConnection) -> None:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if is_output(message, token):
                return

    waiters = [asyncio.create_task(seen(ws)) for ws in sockets]
    started = time.perf_counter()
    await send(sockets[0], token)
    await asyncio.gather(*waiters)
    return (time.perf_counter() - started) * 1000


async def measure(urls_and_headers: Any, send: Any, watchers: int, rounds: int) -> list[float]:
    url, options = urls_and_headers
    sockets = [await connect(url, **options) for _ in range(watchers)]
    try:
        for ws in sockets:
            await settle(ws)
        return [await fanout_round(sockets, send) for _ in range(rounds)]
    finally:
        for ws in sockets:
            await ws.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(
    args: argparse.Namespace,
    panel: str,
    key: str,
    server: dict[str, Any],
    node: str,
    node_token: str,
) -> None:
    panel_ws = panel.replace("http", "ws") + f"/api/servers/{server['id']}/console"
    panel_options = {"subprotocols": [PANEL_PROTOCOL, f"stellarstack.bearer.{key}"]}
    node_ws = node.replace("http", "ws") + (
        f"/api/v1/namespaces/{server['namespace']}/gameservers/{server['resource_name']}/console"
    )
    node_options = {"additional_headers": {"Authorization": f"Bearer {node_token}"}}

    async def command(ws: ClientConnection, token: str) -> None:
        await ws.send(json.dumps({"type": "command", "line": f"say {token}"}))

    print(f"console fan-out, last watcher sees the output ({args.rounds} rounds each):")
    for watchers in FANOUT:
        through_panel = await measure((panel_ws, panel_options), command, watchers, args.rounds)
        direct = await measure((node_ws, node_options), command, watchers, args.rounds)
        p50, p99 = percentile(through_panel, 0.5), percentile(through_panel, 0.99)
        b50, b99 = percentile(direct, 0.5), percentile(direct, 0.99)
        print(
            f"  {watchers} watcher(s): panel p50 {p50:6.1f} ms p99 {p99:6.1f} ms | node p50 "
            f"{b50:6.1f} ms p99 {b99:6.1f} ms | ratio p50 {p50 / b50:.2f}x p99 {p99 / b99:.2f}x"
        )
    print(f"  mean over all rounds through the panel: {statistics.fmean(through_panel):.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    missing = toy_image_present()
    if missing is not None:
        print(f"panel_console: skipped: needs Docker and {TOY_IMAGE} ({missing})")
        return 0
    command = Path(sys.executable).with_name("stellarstack")
    with tempfile.TemporaryDirectory(prefix="stellarstack-bench-") as scratch:
        state = Path(scratch) / "state"
        port, node_port = free_port(), free_port()
        log = Path(scratch) / "panel.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    str(command),
                    "panel",
                    "local",
                    "--state",
                    str(state),
                    "--port",
                    str(port),
                    "--node-port",
                    str(node_port),
                    "--examples",
                    str(REPO / "examples"),
                ],
                stdout=output,
                stderr=output,
                env=dict(os.environ),
            )
        panel = f"http://127.0.0.1:{port}"
        node = f"http://127.0.0.1:{node_port}"
        try:
            wait_until(lambda: httpx.get(f"{panel}/healthz").status_code == 200, "the panel")
            with httpx.Client(base_url=panel, timeout=30) as client:
                setup = client.post(
                    "/api/auth/setup",
                    json={
                        "email": "bench@example.com",
                        "name": "Bench",
                        "password": secrets.token_hex(8),
                    },
                )
                setup.raise_for_status()
                client.headers["X-CSRF-Token"] = setup.json()["csrf_token"]
                key = client.post(
                    "/api/account/api-keys", json={"name": "bench", "scopes": ["*"]}
                ).json()["key"]
                node_id = wait_until(
                    lambda: [n["id"] for n in client.get("/api/admin/nodes").json() if n["online"]],
                    "the local node online",
                )[0]
                created = client.post(
                    "/api/servers",
                    json={
                        "name": "Console bench",
                        "blueprint": "toy",
                        "node_id": node_id,
                        "resources": {"cpu": "500m", "memory": "128Mi", "disk": "1Gi", "pids": 64},
                        "ports": [
                            {"name": "status", "port": 7777, "protocol": "TCP"},
                            {"name": "query", "port": 7778, "protocol": "UDP"},
                        ],
                    },
                )
                if created.status_code != 201:
                    raise SystemExit(f"create failed: {created.text}")
                server = created.json()
                last: dict[str, Any] = {}

                def running() -> bool:
                    last.update(client.get(f"/api/servers/{server['id']}").json())
                    return last.get("state") == "Running"

                try:
                    wait_until(running, "the server Running")
                except SystemExit:
                    raise SystemExit(f"the server did not reach Running: {last}") from None
                node_token = json.loads((state / "secrets.json").read_text())["node_token"]
                asyncio.run(run(args, panel, key, server, node, node_token))
                client.delete(f"/api/servers/{server['id']}")
                # The node removes the container after the panel forgot the server: wait for
                # it, so that stopping the node leaves nothing running.
                wait_until(
                    lambda: not container_exists(f"stellarstack-default-{server['resource_name']}"),
                    "the container removed",
                    timeout=60,
                )
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
