"""The Docker runtime against raw Docker, in the same run.

- start latency: `DockerRuntime.ensure` + `start` until the toy server prints "ready", versus
  the Docker SDK's own `containers.run` of the same image until the same line (the `docker run`
  CLI would add its own process start to the baseline); target <= 1.2x;
- console round trip: a command written through `send_command` until its output arrives on an
  attached console session, p50/p99 (target p99 < 50 ms);
- agent memory: this process's RSS before and after the agent reconciles N running servers.

Needs a Docker engine and `localhost/stellarstack/toy:1` (`make images`); prints why and exits 0
when either is missing. Every loop is bounded. Usage:
python bench/nodeproxy_runtime.py [--starts 10] [--round-trips 200] [--servers 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.runtime import ServerKey
from stellarstack.api.workload import Workload, WorkloadSettings, build_workload
from stellarstack.nodeproxy.agent import NodeAgent
from stellarstack.nodeproxy.runtime.containers import DockerSettings
from stellarstack.nodeproxy.runtime.docker import DockerRuntime
from stellarstack.nodeproxy.store import Store

IMAGE = "localhost/stellarstack/toy:1"
BLUEPRINT = Blueprint.model_validate(
    {
        "kind": "Blueprint",
        "metadata": {"name": "toy"},
        "spec": {
            "displayName": "Toy",
            "images": [{"name": "Toy", "image": IMAGE}],
            "startupCommands": [{"name": "Default", "command": "/usr/local/bin/toy"}],
            "variables": [{"env": "TOY_DATA", "name": "Data", "default": "/home/container"}],
            "stop": {"type": "Command", "command": "stop"},
            "readiness": {"consolePatterns": ["ready name="]},
        },
    }
)
READY_TIMEOUT = 30.0


def gameserver(name: str) -> GameServer:
    return GameServer.model_validate(
        {
            "kind": "GameServer",
            "metadata": {"name": name, "namespace": "bench"},
            "spec": {
                "blueprint": "toy",
                "resources": {"cpu": "250m", "memory": "64Mi", "disk": "1Gi", "pids": 64},
            },
        }
    )


def wait_ready(container: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while b"ready name=" not in container.logs():
        if time.monotonic() > deadline:
            raise TimeoutError("the toy server did not get ready")
        time.sleep(0.01)


def raw_start(client: Any, data: Path) -> float:
    start = time.perf_counter()
    container = client.containers.run(
        IMAGE,
        detach=True,
        stdin_open=True,
        user="1000:1000",
        init=True,
        environment={"TOY_DATA": "/home/container"},
        volumes={str(data): {"bind": "/home/container", "mode": "rw"}},
    )
    try:
        wait_ready(container)
        return time.perf_counter() - start
    finally:
        container.remove(force=True)


async def our_start(runtime: DockerRuntime, workload: Workload) -> float:
    key = ServerKey("bench", workload.name)
    start = time.perf_counter()
    await runtime.ensure(workload)
    await runtime.start(key)
    deadline = time.monotonic() + READY_TIMEOUT
    while not any("ready name=" in line for line in await runtime.logs(key, tail=20)):
        if time.monotonic() > deadline:
            raise TimeoutError("the toy server did not get ready")
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    await runtime.destroy(key, keep_data=False)
    return elapsed


async def round_trips(runtime: DockerRuntime, workload: Workload, count: int) -> list[float]:
    key = ServerKey("bench", workload.name)
    await runtime.ensure(workload)
    await runtime.start(key)
    timings: list[float] = []
    async with runtime.attach(key, backlog=1) as console:
        lines = console.lines()
        async for line in lines:  # wait for readiness first
            if "ready name=" in line:
                break
        for number in range(count):
            marker = f"rt-{number}"
            start = time.perf_counter()
            await console.send(f"say {marker}")
            async for line in lines:
                if marker in line:
                    timings.append(time.perf_counter() - start)
                    break
    await runtime.destroy(key, keep_data=False)
    return timings


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def agent_memory(runtime: DockerRuntime, root: Path, servers: int) -> tuple[float, float]:
    store = Store(root / "state.sqlite")
    agent = NodeAgent(store, runtime)
    store.put(BLUEPRINT)
    before = rss_mib()
    names = [f"mem-{index}" for index in range(servers)]
    for name in names:
        store.put(gameserver(name))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        await agent.reconcile_all()
        states = [s.status.state.value if s.status else "" for s in store.of_kind(GameServer)]
        if states.count("Running") == servers:
            break
        await asyncio.sleep(0.5)
    after = rss_mib()
    for name in names:
        await runtime.destroy(ServerKey("bench", name), keep_data=False)
    store.close()
    return before, after


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--servers", type=int, default=50)
    args = parser.parse_args()
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
        client.images.get(IMAGE)
    except Exception as exc:  # no engine or no image: say so, do not fail `make bench`
        print(f"skipped: Docker engine or {IMAGE} unavailable ({exc})")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        settings = DockerSettings(
            data_root=root / "servers",
            agent_id=f"bench-{uuid.uuid4().hex[:6]}",
            bind_address="127.0.0.1",
            workload=WorkloadSettings(),
        )
        runtime = DockerRuntime(client, settings)
        raw_data = root / "raw"
        raw_data.mkdir()
        os.chown(raw_data, 1000, 1000)
        raw: list[float] = []
        ours: list[float] = []
        for index in range(args.starts):  # interleaved, so machine noise hits both alike
            raw.append(raw_start(client, raw_data))
            workload = build_workload(gameserver(f"start-{index}"), BLUEPRINT)
            ours.append(await our_start(runtime, workload))
        raw_median, our_median = statistics.median(raw), statistics.median(ours)
        print(
            f"start latency: raw docker run {raw_median * 1000:.0f} ms, "
            f"DockerRuntime {our_median * 1000:.0f} ms, ratio {our_median / raw_median:.2f}x "
            "(target <= 1.2x)"
        )
        trips = await round_trips(
            runtime, build_workload(gameserver("console"), BLUEPRINT), args.round_trips
        )
        quantiles = statistics.quantiles(trips, n=100)
        print(
            f"console round trip over {len(trips)}: p50 {quantiles[49] * 1000:.1f} ms, "
            f"p99 {quantiles[98] * 1000:.1f} ms (target p99 < 50 ms)"
        )
        before, after = await agent_memory(runtime, root, args.servers)
        print(
            f"agent RSS: {before:.0f} MiB before, {after:.0f} MiB with {args.servers} running "
            "servers"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
