"""What `docker inspect` shows for a game server, and that limits hold against real abuse."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from stellarstack.api.runtime import ProcessPhase, ServerKey
from stellarstack.api.workload import WorkloadSettings
from stellarstack.nodeproxy.runtime.containers import DockerSettings, container_name
from stellarstack.nodeproxy.runtime.docker import DockerRuntime
from support.runtime_harness import RuntimeHarness

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]


@pytest.fixture
async def docker_harness(docker_client: Any, toy_image: str, tmp_path: Path) -> Any:
    settings = DockerSettings(
        data_root=tmp_path / "servers",
        agent_id=f"test-{uuid.uuid4().hex[:8]}",
        bind_address="127.0.0.1",
        workload=WorkloadSettings(),
    )
    harness = RuntimeHarness(
        runtime=DockerRuntime(docker_client, settings),
        namespace="containment",
        data_dir=settings.data_dir,
        created=[],
    )
    yield harness
    for key in harness.created:
        await harness.runtime.destroy(key, keep_data=False)


async def test_inspect_shows_limits_and_no_privileges(
    docker_harness: RuntimeHarness, docker_client: Any
) -> None:
    workload = docker_harness.workload()
    await docker_harness.runtime.ensure(workload)
    attrs = docker_client.containers.get(
        container_name(ServerKey("containment", workload.name))
    ).attrs
    host, config = attrs["HostConfig"], attrs["Config"]
    assert host["Memory"] == 128 * 2**20
    assert host["MemorySwap"] == 128 * 2**20  # no swap beyond the limit
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 64
    assert host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"]
    assert not host.get("CapAdd")
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["NetworkMode"] == "bridge"
    assert host.get("PidMode", "") == ""
    assert host["Init"] is True
    assert config["User"] == "1000:1000"
    assert config["OpenStdin"] is True
    assert config["StdinOnce"] is False
    mounts = attrs["Mounts"]
    assert [(m["Source"], m["Destination"]) for m in mounts] == [
        (str(docker_harness.data_dir(ServerKey("containment", workload.name))), "/home/container")
    ]
    assert not any("docker.sock" in m["Source"] for m in mounts)
    assert config["Labels"]["stellarstack.io/gameserver"] == workload.name


async def run_script(h: RuntimeHarness, script: str, **resources: Any) -> tuple[Any, ServerKey]:
    workload = h.workload(
        blueprint_spec={
            "startupCommands": [{"name": "Default", "command": f"sh -c '{script}'"}],
        },
        resources={"cpu": "500m", "memory": "64Mi", "disk": "1Gi", "pids": 32, **resources},
    )
    server = ServerKey(workload.namespace or "default", workload.name)
    await h.runtime.ensure(workload)
    await h.runtime.start(server)
    return workload, server


async def test_a_fork_bomb_hits_the_pid_limit(
    docker_harness: RuntimeHarness, docker_client: Any
) -> None:
    # 200 background sleepers against a limit of 32 processes, in a subshell (a shell whose
    # fork fails exits); the main shell then replaces itself without forking and stays up.
    script = "(i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; wait); exec sleep 60"
    _, server = await run_script(docker_harness, script)
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        text = "\n".join(await docker_harness.runtime.logs(server, tail=50))
        if "can't fork" in text:
            break
        assert asyncio.get_running_loop().time() < deadline, text
        await asyncio.sleep(0.5)
    container = docker_client.containers.get(container_name(server))
    stats = container.stats(stream=False, one_shot=True)
    container.reload()
    assert container.status == "running", stats
    pids = stats["pids_stats"]["current"]
    assert 0 < pids <= 32
    await docker_harness.runtime.kill(server)


async def test_a_memory_hog_is_oom_killed(docker_harness: RuntimeHarness) -> None:
    # Doubling a shell variable until the cgroup's 64 MiB limit stops it.
    script = "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"
    _, server = await run_script(docker_harness, script)
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        status = await docker_harness.runtime.status(server)
        if status.phase is ProcessPhase.EXITED:
            break
        assert asyncio.get_running_loop().time() < deadline, "the hog was not stopped"
        await asyncio.sleep(0.5)
    assert status.oom_killed or status.exit_code == 137


async def test_a_console_flood_is_throttled_and_the_loop_stays_responsive(
    docker_harness: RuntimeHarness,
) -> None:
    # 300k lines as fast as the shell can print them, then quiet.
    _, server = await run_script(
        docker_harness, "i=0; while [ $i -lt 300000 ]; do echo flood $i; i=$((i+1)); done; sleep 60"
    )
    received = 0
    notices: list[str] = []
    lags: list[float] = []
    loop = asyncio.get_running_loop()

    async def watch_loop() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)

    watcher = asyncio.create_task(watch_loop())
    async with docker_harness.runtime.attach(server, backlog=0) as console:
        lines = console.lines()
        deadline = loop.time() + 8
        while loop.time() < deadline:
            try:
                line = await asyncio.wait_for(anext(lines), max(0.01, deadline - loop.time()))
            except TimeoutError:
                break
            received += 1
            if "console lines skipped" in line:
                notices.append(line)
    watcher.cancel()
    assert notices, f"no throttling notice after {received} lines"
    # 500 lines/s with a burst of 1000, over about 8 s.
    assert received < 500 * 8 + 1000 + len(notices) + 100
    assert max(lags) < 0.5, f"the event loop stalled for {max(lags):.2f} s"
    await docker_harness.runtime.kill(server)
