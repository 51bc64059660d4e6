"""What every GameServerRuntime must do, checked against a real engine with the toy server."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from stellarstack.api.blueprint import StopMethod
from stellarstack.api.runtime import (
    GameServerRuntime,
    ImageUnavailableError,
    ProcessPhase,
    ResourceStats,
    ServerKey,
    ServerNotFoundError,
    ServerNotRunningError,
)
from stellarstack.api.workload import Workload
from support.runtime_harness import RuntimeHarness

# The docker / kube marks come with the `harness` parameters (tests/contract/conftest.py).
pytestmark = [pytest.mark.timeout(240)]

# A toy that cannot be stopped by SIGTERM: a signal ignored when a shell starts stays ignored,
# so the toy's own trap cannot take it back. Only SIGKILL ends it (exit code 137).
IGNORES_SIGTERM = {
    "startupCommands": [{"name": "Default", "command": "trap '' TERM; exec /usr/local/bin/toy"}]
}


def key(workload: Workload) -> ServerKey:
    return ServerKey(workload.namespace or "default", workload.name)


async def wait_for_log(
    runtime: GameServerRuntime, server: ServerKey, text: str, *, within: float = 30
) -> list[str]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        lines = await runtime.logs(server, tail=200)
        if any(text in line for line in lines):
            return lines
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} not in the log of {server} within {within} s: {lines}")


async def wait_until_gone(path: Path, *, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while path.exists():
        assert time.monotonic() < deadline, f"{path} still exists after {within} s"
        await asyncio.sleep(0.2)


async def running_toy(h: RuntimeHarness, **spec: object) -> tuple[Workload, ServerKey]:
    workload = h.workload(**spec)
    server = key(workload)
    assert await h.runtime.ensure(workload) is True
    await h.runtime.start(server)
    await wait_for_log(h.runtime, server, "ready name=")
    return workload, server


async def test_lifecycle_create_start_stop_destroy(harness: RuntimeHarness) -> None:
    runtime = harness.runtime
    workload = harness.workload(variables={"TOY_NAME": "contract"})
    server = key(workload)
    assert (await runtime.status(server)).phase is ProcessPhase.ABSENT
    assert await runtime.ensure(workload) is True
    assert (await runtime.status(server)).phase is ProcessPhase.CREATED
    # Repeating ensure changes nothing.
    assert await runtime.ensure(workload) is True
    assert (await runtime.status(server)).phase is ProcessPhase.CREATED

    await runtime.start(server)
    await runtime.start(server)  # a no-op while running
    lines = await wait_for_log(runtime, server, "ready name=contract")
    assert (await runtime.status(server)).phase is ProcessPhase.RUNNING
    assert sum("ready name=" in line for line in lines) == 1

    stopped = await runtime.stop(server, workload.stop)
    assert stopped.phase is ProcessPhase.EXITED
    assert stopped.exit_code == 0
    await wait_for_log(runtime, server, "stopped (stop)")
    # Stopping a stopped server does nothing.
    assert (await runtime.stop(server, workload.stop)).exit_code == 0

    data = harness.data_dir(server)
    await runtime.destroy(server, keep_data=False)
    assert (await runtime.status(server)).phase is ProcessPhase.ABSENT
    # Kubernetes reclaims a deleted claim's volume asynchronously (its provisioner does).
    await wait_until_gone(data)
    await runtime.destroy(server, keep_data=False)  # a no-op when absent


async def test_console_command_and_attach_with_backlog(harness: RuntimeHarness) -> None:
    runtime = harness.runtime
    _, server = await running_toy(harness)
    await runtime.send_command(server, "say hello from the contract")
    await wait_for_log(runtime, server, "[say] hello from the contract")

    async with runtime.attach(server, backlog=50) as console:
        lines = console.lines()
        seen: list[str] = []

        async def read_until(text: str) -> None:
            async for line in lines:
                seen.append(line)
                if text in line:
                    return

        # The backlog replays what came before the client attached.
        await asyncio.wait_for(read_until("[say] hello from the contract"), 20)
        await console.send("say second")
        await asyncio.wait_for(read_until("[say] second"), 20)
    assert any("ready name=" in line for line in seen)

    # Detaching must not close the game's stdin: commands still arrive afterwards.
    await runtime.send_command(server, "say after detach")
    await wait_for_log(runtime, server, "[say] after detach")


async def test_published_port_answers_with_a_real_payload(harness: RuntimeHarness) -> None:
    workload, _ = await running_toy(harness, variables={"TOY_NAME": "porty"})
    tcp = next(p.host_port for p in workload.ports if p.protocol == "TCP")
    reply = b""
    deadline = time.monotonic() + 20
    while b"TOY name=porty" not in reply and time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", tcp), timeout=5) as conn:
            reply = conn.recv(4096)
        if b"TOY" not in reply:
            await asyncio.sleep(0.3)
    assert b"TOY name=porty" in reply


async def test_stop_by_signal(harness: RuntimeHarness) -> None:
    _, server = await running_toy(harness)
    status = await harness.runtime.stop(server, StopMethod(type="Signal", signal="SIGTERM"))
    assert (status.phase, status.exit_code) == (ProcessPhase.EXITED, 0)
    await wait_for_log(harness.runtime, server, "stopped (SIGTERM)")


async def test_stop_kills_after_the_grace_period(harness: RuntimeHarness) -> None:
    # The kill that ends the grace period is SIGKILL at once on Docker, but on Kubernetes the
    # kubelet always sends SIGTERM first (SIGKILL at most 2 s later): a toy that ignores SIGTERM
    # makes both end with SIGKILL's 137, which is what this contract item is about.
    _, server = await running_toy(harness, blueprint_spec=IGNORES_SIGTERM)
    ignored = StopMethod(type="Command", command="say not stopping", gracePeriodSeconds=2)
    started = time.monotonic()
    status = await harness.runtime.stop(server, ignored)
    assert time.monotonic() - started >= 2
    assert status.phase is ProcessPhase.EXITED
    assert status.exit_code == 137  # SIGKILL


async def test_kill(harness: RuntimeHarness) -> None:
    # Kubernetes cannot send SIGKILL first (see test_stop_kills_after_the_grace_period): what
    # both runtimes promise is that even a game that ignores SIGTERM is dead within seconds.
    _, server = await running_toy(harness, blueprint_spec=IGNORES_SIGTERM)
    started = time.monotonic()
    await harness.runtime.kill(server)
    assert time.monotonic() - started < 10
    status = await harness.runtime.status(server)
    assert (status.phase, status.exit_code) == (ProcessPhase.EXITED, 137)
    await harness.runtime.kill(server)  # a no-op when not running
    # A killed server starts again.
    await harness.runtime.start(server)
    await wait_for_log(harness.runtime, server, "boots=2")


async def test_data_survives_stop_and_start(harness: RuntimeHarness) -> None:
    workload, server = await running_toy(harness)
    await harness.runtime.stop(server, workload.stop)
    await harness.runtime.start(server)
    await wait_for_log(harness.runtime, server, "boots=2")


async def test_destroy_can_keep_the_data(harness: RuntimeHarness) -> None:
    workload, server = await running_toy(harness)
    await harness.runtime.stop(server, workload.stop)
    await harness.runtime.destroy(server, keep_data=True)
    assert (await harness.runtime.status(server)).phase is ProcessPhase.ABSENT
    assert (harness.data_dir(server) / "boots").read_text().strip() == "1"
    # Re-creating the server finds its data.
    await harness.runtime.ensure(workload)
    await harness.runtime.start(server)
    await wait_for_log(harness.runtime, server, "boots=2")


async def test_commands_need_a_running_process(harness: RuntimeHarness) -> None:
    workload = harness.workload()
    server = key(workload)
    with pytest.raises(ServerNotFoundError):
        await harness.runtime.send_command(server, "say x")
    await harness.runtime.ensure(workload)
    with pytest.raises(ServerNotRunningError):
        await harness.runtime.send_command(server, "say x")


async def test_changes_to_a_running_server_wait_for_the_next_start(
    harness: RuntimeHarness,
) -> None:
    workload, server = await running_toy(harness, variables={"TOY_NAME": "before"})
    changed = harness.workload(name=workload.name, variables={"TOY_NAME": "after"})
    assert await harness.runtime.ensure(changed) is False
    assert (await harness.runtime.status(server)).phase is ProcessPhase.RUNNING
    await harness.runtime.stop(server, workload.stop)
    assert await harness.runtime.ensure(changed) is True
    await harness.runtime.start(server)
    await wait_for_log(harness.runtime, server, "ready name=after")


async def test_install_writes_into_the_data_volume(harness: RuntimeHarness) -> None:
    workload = harness.workload()
    outcome = await harness.runtime.install(workload)
    assert outcome.succeeded, outcome.log_tail
    assert "installing" in outcome.log_tail
    assert (harness.data_dir(key(workload)) / "installed.txt").read_text() == "installed\n"


async def test_failed_install_reports_its_log(harness: RuntimeHarness) -> None:
    workload = harness.workload(
        blueprint_spec={
            "install": {
                "image": "localhost/stellarstack/toy:1",
                "entrypoint": "sh",
                "script": "echo about to fail\nexit 3\n",
            }
        }
    )
    outcome = await harness.runtime.install(workload)
    assert not outcome.succeeded
    assert outcome.exit_code == 3
    assert "about to fail" in outcome.log_tail


def figures(stats: ResourceStats) -> dict[str, object]:
    return {
        "cpu": stats.cpu_percent,
        "memory": stats.memory_bytes,
        "network": stats.network_rx_bytes,
        "disk": stats.disk_bytes,
    }


async def test_stats(harness: RuntimeHarness) -> None:
    # Which figures exist depends on the runtime: Docker measures everything; Kubernetes only
    # what metrics.k8s.io serves (CPU and memory, when the cluster runs metrics-server), never
    # network or volume use. The contract is that each figure is a plausible number or is
    # named in `unavailable` with a reason, never silently missing or shown as zero.
    _, server = await running_toy(harness)
    first = await harness.runtime.stats(server)
    assert first.memory_limit_bytes == 128 * 2**20
    await asyncio.sleep(0.5)
    second = await harness.runtime.stats(server)
    for sample in (first, second):
        for name, value in figures(sample).items():
            assert (value is None) == (name in sample.unavailable), (name, sample)
            assert sample.unavailable.get(name, "x").strip(), (name, sample)
        if sample.memory_bytes is not None:
            assert 0 < sample.memory_bytes <= 128 * 2**20
        if sample.disk_bytes is not None:
            assert sample.disk_bytes > 0  # the toy wrote its boot counter
        if sample.network_rx_bytes is not None:
            assert sample.network_tx_bytes is not None
    if second.cpu_percent is not None:
        assert second.cpu_percent >= 0
    else:
        # Only a runtime that cannot measure CPU at all may still lack it at the second sample
        # (one that computes it between samples has it by then).
        assert second.unavailable["cpu"] == first.unavailable["cpu"]


async def test_stats_of_a_stopped_server_say_why_figures_are_missing(
    harness: RuntimeHarness,
) -> None:
    workload, server = await running_toy(harness)
    await harness.runtime.stop(server, workload.stop)
    stats = await harness.runtime.stats(server)
    assert stats.cpu_percent is None
    assert stats.memory_bytes is None
    assert stats.unavailable["cpu"] == stats.unavailable["memory"] == "not running"


async def test_out_of_memory_is_reported(harness: RuntimeHarness) -> None:
    # Doubling a shell string soon passes the 128 MiB limit; the kernel's OOM killer ends it.
    hungry = {
        "startupCommands": [
            {"name": "Default", "command": 'x=0123456789; while :; do x="$x$x"; done'}
        ]
    }
    workload = harness.workload(blueprint_spec=hungry)
    server = key(workload)
    await harness.runtime.ensure(workload)
    await harness.runtime.start(server)
    deadline = time.monotonic() + 60
    status = await harness.runtime.status(server)
    while status.phase is not ProcessPhase.EXITED and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        status = await harness.runtime.status(server)
    assert status.phase is ProcessPhase.EXITED, status
    assert status.oom_killed, status
    assert status.exit_code == 137


async def test_an_image_that_cannot_be_had_is_named(harness: RuntimeHarness) -> None:
    # Docker checks the image when the container is created, Kubernetes when the Pod starts
    # (only the node knows its images): either step may raise, and it says which image.
    missing = "localhost/stellarstack/no-such-image:1"
    workload = harness.workload(blueprint_spec={"images": [{"name": "Missing", "image": missing}]})
    server = key(workload)

    async def ensure_and_start() -> None:
        await harness.runtime.ensure(workload)
        await harness.runtime.start(server)

    with pytest.raises(ImageUnavailableError, match="no-such-image"):
        await ensure_and_start()
    assert (await harness.runtime.status(server)).phase is not ProcessPhase.RUNNING
