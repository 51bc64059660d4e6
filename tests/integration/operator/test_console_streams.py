"""Console writes (the pods attach API) beside ordinary requests on one API client.

The client library's `stream()` swaps the `call_api` of the ApiClient it is given for its
websocket variant while the call runs; on a client shared by many threads, every other request
made meanwhile went out as a websocket handshake and failed ("Handshake status 200 OK"). These
tests run many console writes and `stop`s at once beside a steady flow of ordinary reads on the
same client, in as many threads as the operator uses, and count the failures: there must be none,
and the shared client's `call_api` is never replaced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from kubernetes import client

from stellarstack.api.runtime import ProcessPhase, ServerKey
from stellarstack.operator.kube import Kube as OperatorKube
from stellarstack.operator.kube import connect
from stellarstack.operator.reconcile import OperatorSettings
from stellarstack.operator.runtime import KubernetesRuntime
from support.kube import TOY_IMAGE, Kube, toy_pod

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

TOYS = 6
WRITES_PER_TOY = 4
READERS = 8
READS_AT_MOST = 20_000
ROUND_SECONDS = 120.0


class WatchedClient(client.ApiClient):  # type: ignore[misc]
    """An ApiClient that counts every replacement of its `call_api` (what `stream()` does to
    the client it is given)."""

    call_api_replaced = 0

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "call_api":
            type(self).call_api_replaced += 1
        super().__setattr__(name, value)


@pytest.fixture
def shared_client(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> Iterator[WatchedClient]:
    """One client for everything, sized like the operator's (`connect`, api_threads)."""
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    configuration = connect(OperatorSettings().api_threads).configuration
    watched = WatchedClient(configuration)
    WatchedClient.call_api_replaced = 0
    yield watched
    watched.close()


@pytest.fixture
def toys(kube: Kube, kube_namespace: str) -> list[str]:
    """Running toy servers with stdin open (their console), small enough to fit together."""
    kube.require_image(TOY_IMAGE)
    names = [f"toy-{i}" for i in range(TOYS)]
    for name in names:
        pod = toy_pod(name, name)
        pod.spec.restart_policy = "Never"  # a stopped toy stays stopped, as a game Pod does
        game = pod.spec.containers[0]
        game.stdin = True
        game.resources = client.V1ResourceRequirements(
            requests={"cpu": "10m", "memory": "16Mi"}, limits={"cpu": "100m", "memory": "64Mi"}
        )
        kube.core.create_namespaced_pod(kube_namespace, pod)
    for name in names:
        kube.wait_for(
            f"{name} ready",
            lambda name=name: "ready name=" in _log(kube, kube_namespace, name),
            120,
        )
    return names


def _log(kube: Kube, namespace: str, name: str) -> str:
    return str(kube.core.read_namespaced_pod_log(name, namespace, container="game"))


async def under_reads(
    chains: list[list[Callable[[], Awaitable[None]]]], read: Callable[[], Awaitable[object]]
) -> tuple[list[BaseException], int]:
    """Run the chains of stream calls at once (each chain's calls one after another) while
    READERS tasks keep reading until they are done. Returns every failure (of both kinds) and
    how many reads overlapped a stream call (started and ended while one was open)."""
    done = asyncio.Event()
    open_streams = 0
    reads = overlapped = 0
    failures: list[BaseException] = []
    deadline = time.monotonic() + ROUND_SECONDS

    async def reader() -> None:
        nonlocal reads, overlapped
        while not done.is_set() and reads < READS_AT_MOST and time.monotonic() < deadline:
            reads += 1
            during = open_streams > 0
            try:
                await read()
            except Exception as error:
                failures.append(error)
            if during and open_streams > 0:
                overlapped += 1

    async def chain(calls: list[Callable[[], Awaitable[None]]]) -> None:
        nonlocal open_streams
        for call in calls:
            open_streams += 1
            try:
                await call()
            except Exception as error:
                failures.append(error)
            finally:
                open_streams -= 1

    async def writers() -> None:
        try:
            await asyncio.gather(*(chain(calls) for calls in chains))
        finally:
            done.set()

    await asyncio.gather(writers(), *(reader() for _ in range(READERS)))
    return failures, overlapped


def _operator_threads() -> None:
    """The operator runs its blocking calls in this many threads (handlers.configure)."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(OperatorSettings().api_threads, thread_name_prefix="kube")
    )


def _summary(failures: list[BaseException]) -> str:
    examples = [f"{type(f).__name__}: {' '.join(str(f).split())[:160]}" for f in failures[:3]]
    return f"{len(failures)} failures, e.g. {examples}"


async def test_operator_console_writes_and_stops_leave_other_requests_alone(
    kube: Kube, kube_namespace: str, toys: list[str], shared_client: WatchedClient
) -> None:
    _operator_threads()
    operator = OperatorKube(shared_client)

    async def read() -> object:
        pod = toys[0]
        await operator.read("Pod", kube_namespace, pod)
        return await operator.list_services(kube_namespace, "app=toy")

    writes = [
        [
            partial(operator.send_console, kube_namespace, name, "game", f"say round {i} of {name}")
            for i in range(WRITES_PER_TOY)
        ]
        for name in toys
    ]
    failures, overlapped = await under_reads(writes, read)
    assert not failures, _summary(failures)
    assert overlapped >= READERS, f"only {overlapped} reads ran while a stream was open"
    for name in toys:
        log = _log(kube, kube_namespace, name)
        for i in range(WRITES_PER_TOY):
            assert f"[say] round {i} of {name}" in log, log

    # What deleting many running servers at once does: `stop` through attach to each.
    stops = [
        [partial(operator.send_console, kube_namespace, name, "game", "stop")] for name in toys
    ]
    failures, _ = await under_reads(stops, read)
    assert not failures, _summary(failures)
    for name in toys:
        kube.wait_for_pod_phase(kube_namespace, name, "Succeeded")
        assert "stopped (stop)" in _log(kube, kube_namespace, name)
    assert WatchedClient.call_api_replaced == 0, "a stream swapped the shared client's call_api"


async def test_runtime_console_writes_leave_other_requests_alone(
    kube: Kube, kube_namespace: str, toys: list[str], shared_client: WatchedClient
) -> None:
    """The same through `KubernetesRuntime`, which the panel's Kubernetes backend uses on the
    client it makes every other request with."""
    _operator_threads()
    runtime = KubernetesRuntime(shared_client)
    keys = [ServerKey(kube_namespace, name) for name in toys]

    async def read() -> object:
        status = await runtime.status(keys[0])
        assert status.phase is ProcessPhase.RUNNING, status
        return status

    writes = [
        [
            partial(runtime.send_command, key, f"say runtime {i} of {key.name}")
            for i in range(WRITES_PER_TOY)
        ]
        for key in keys[1:]
    ]
    failures, overlapped = await under_reads(writes, read)
    assert not failures, _summary(failures)
    assert overlapped >= READERS, f"only {overlapped} reads ran while a stream was open"
    for key in keys[1:]:
        log = _log(kube, kube_namespace, key.name)
        for i in range(WRITES_PER_TOY):
            assert f"[say] runtime {i} of {key.name}" in log, log
    assert WatchedClient.call_api_replaced == 0, "a stream swapped the shared client's call_api"
