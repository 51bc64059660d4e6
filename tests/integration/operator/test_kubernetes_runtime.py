"""`KubernetesRuntime` beyond the shared contract (tests/contract): the console of a server the
operator runs, the Pod it creates being the operator's Pod, and a service account login."""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.runtime import ConsoleSession, ProcessPhase, ServerKey
from stellarstack.api.workload import build_workload
from stellarstack.operator import builders
from stellarstack.operator.runtime import KubernetesRuntime
from support.kube import TOY_IMAGE, Kube
from support.operator_cluster import GROUP, VERSION, GameServers, gameserver_doc
from support.runtime_harness import TOY_BLUEPRINT

pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]

# What a console client (the panel) needs, and nothing more: no create, patch or delete.
CONSOLE_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods/attach"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
    {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get"]},
]


def differences(observed: Any, wanted: Any, path: str = "spec") -> list[str]:
    """Where `observed` (as the API server returns it) lacks what `wanted` asks for. The server
    adds defaults and omits false booleans, so those are not differences."""
    if isinstance(wanted, dict):
        observed = observed if isinstance(observed, dict) else {}
        return [
            d for k, v in wanted.items() for d in differences(observed.get(k), v, f"{path}.{k}")
        ]
    if isinstance(wanted, list):
        if not isinstance(observed, list) or len(observed) != len(wanted):
            return [f"{path}: {observed!r} != {wanted!r}"]
        return [
            d
            for i, (o, w) in enumerate(zip(observed, wanted, strict=True))
            for d in differences(o, w, f"{path}[{i}]")
        ]
    if wanted is False and observed is None:
        return []
    return [] if observed == wanted else [f"{path}: {observed!r} != {wanted!r}"]


def admin_runtime(kube: Kube) -> KubernetesRuntime:
    return KubernetesRuntime.from_kubeconfig(kube.kubeconfig, context=kube.context)


async def wait_for_log(runtime: KubernetesRuntime, server: ServerKey, text: str) -> list[str]:
    deadline = time.monotonic() + 30
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = await runtime.logs(server, tail=200)
        if any(text in line for line in lines):
            return lines
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} not in the log of {server}: {lines}")


async def converse(console: ConsoleSession, say: str) -> list[str]:
    """Read the backlog up to the ready line, send `say`, read until it comes back."""
    seen: list[str] = []
    lines = console.lines()

    async def read_until(text: str) -> None:
        async for line in lines:
            seen.append(line)
            if text in line:
                return

    await asyncio.wait_for(read_until("ready name="), 20)
    await console.send(f"say {say}")
    await asyncio.wait_for(read_until(f"[say] {say}"), 20)
    return seen


async def test_console_of_a_server_the_operator_runs(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    bp = blueprint()
    gameservers.create(gameserver_doc("toy-console", bp))
    gameservers.wait_state("toy-console", "Running", timeout=180)
    runtime = admin_runtime(kube)
    server = ServerKey(kube_namespace, "toy-console")

    status = await runtime.status(server)
    assert status.phase is ProcessPhase.RUNNING
    assert status.started_at is not None
    await runtime.send_command(server, "say hello from the panel")
    await wait_for_log(runtime, server, "[say] hello from the panel")
    async with runtime.attach(server, backlog=100) as console:
        seen = await converse(console, "typed in the console")
    assert any("[say] hello from the panel" in line for line in seen)
    stats = await runtime.stats(server)
    assert stats.memory_limit_bytes == 128 * 2**20
    assert set(stats.unavailable) >= {"network", "disk"}


async def test_the_pod_it_creates_is_the_operators_pod(
    kube: Kube, kube_namespace: str, operator_crds: list[str]
) -> None:
    """With a GameServer object of that name (and no operator), the runtime's Pod and volume
    are what the operator's builders make for it, owned by the GameServer."""
    kube.require_image(TOY_IMAGE)
    name = f"toy-{secrets.token_hex(3)}"
    blueprint = Blueprint.model_validate(TOY_BLUEPRINT)
    doc = gameserver_doc(name, "toy")
    body = kube.custom.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "gameservers", copy.deepcopy(doc)
    )
    gameserver = GameServer.model_validate({k: body[k] for k in ("kind", "metadata", "spec")})
    workload = build_workload(gameserver, blueprint)
    runtime = admin_runtime(kube)
    server = ServerKey(kube_namespace, name)
    try:
        assert await runtime.ensure(workload) is True
        await runtime.start(server)
        await wait_for_log(runtime, server, f"ready name={name}")
        pod = kube.api_client.sanitize_for_serialization(
            kube.core.read_namespaced_pod(name, kube_namespace)
        )
        desired = builders.desired_pod(workload, gameserver)
        assert differences(pod["spec"], desired["spec"]) == []
        assert pod["metadata"]["labels"] == desired["metadata"]["labels"]
        owner = pod["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "GameServer",
            name,
            body["metadata"]["uid"],
        )
        claim = kube.core.read_namespaced_persistent_volume_claim(f"{name}-data", kube_namespace)
        assert claim.metadata.owner_references[0].uid == body["metadata"]["uid"]
        stopped = await runtime.stop(server, workload.stop)
        assert (stopped.phase, stopped.exit_code) == (ProcessPhase.EXITED, 0)
    finally:
        await runtime.destroy(server, keep_data=False)
        kube.custom.delete_namespaced_custom_object(
            GROUP, VERSION, kube_namespace, "gameservers", name
        )


def service_account_login(kube: Kube, namespace: str, directory: Path) -> dict[str, str]:
    """A service account with only CONSOLE_RULES, its token and CA written where a Pod has them,
    and the environment a Pod sees (no cluster DNS here: the API by its Service's ClusterIP)."""
    account = "console"
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    rbac = __import__("kubernetes").client.RbacAuthorizationV1Api(kube.api_client)
    rbac.create_namespaced_role(namespace, {"metadata": {"name": account}, "rules": CONSOLE_RULES})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": account},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    )
    token = kube.core.create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    ca = kube.wait_for(
        "kube-root-ca.crt published",
        lambda: kube.core.read_namespaced_config_map("kube-root-ca.crt", namespace).data,
    )["ca.crt"]
    (directory / "token").write_text(token)
    (directory / "ca.crt").write_text(ca)
    service = kube.core.read_namespaced_service("kubernetes", "default")
    return {
        "KUBERNETES_SERVICE_HOST": service.spec.cluster_ip,
        "KUBERNETES_SERVICE_PORT": str(service.spec.ports[0].port),
    }


async def test_in_cluster_login_with_only_console_rights(
    kube: Kube, kube_namespace: str, tmp_path: Path
) -> None:
    kube.require_image(TOY_IMAGE)
    kube.require_pod_network()  # ClusterIPs answer from this machine on the local cluster
    admin = admin_runtime(kube)
    name = f"toy-{secrets.token_hex(3)}"
    workload = build_workload(
        GameServer.model_validate(
            {**gameserver_doc(name, "toy"), "metadata": {"name": name, "namespace": kube_namespace}}
        ),
        Blueprint.model_validate(TOY_BLUEPRINT),
    )
    server = ServerKey(kube_namespace, name)
    await admin.ensure(workload)
    await admin.start(server)
    try:
        environ = service_account_login(kube, kube_namespace, tmp_path)
        console = KubernetesRuntime.in_cluster(service_account_dir=tmp_path, environ=environ)
        assert (await console.status(server)).phase is ProcessPhase.RUNNING
        await console.send_command(server, "say through the service account")
        await wait_for_log(console, server, "[say] through the service account")
        async with console.attach(server, backlog=50) as session:
            await converse(session, "attached in cluster")
        assert (await console.stats(server)).memory_limit_bytes == 128 * 2**20
        # It really is the service account: power actions are not among its rights.
        with pytest.raises(ApiException) as refused:
            await console.kill(server)
        assert refused.value.status == 403
    finally:
        await admin.destroy(server, keep_data=False)


async def test_a_console_session_misses_nothing_and_ends_with_the_game(
    kube: Kube, kube_namespace: str
) -> None:
    kube.require_image(TOY_IMAGE)
    runtime = admin_runtime(kube)
    name = f"toy-{secrets.token_hex(3)}"
    workload = build_workload(
        GameServer.model_validate(
            {**gameserver_doc(name, "toy"), "metadata": {"name": name, "namespace": kube_namespace}}
        ),
        Blueprint.model_validate(TOY_BLUEPRINT),
    )
    server = ServerKey(kube_namespace, name)
    await runtime.ensure(workload)
    await runtime.start(server)
    try:
        await wait_for_log(runtime, server, "ready name=")
        # No backlog: what the game writes after attaching still arrives, even when the
        # client sends before it starts reading.
        async with runtime.attach(server, backlog=0) as session:
            await session.send("say early")
            seen: list[str] = []

            async def read_all() -> None:
                async for line in session.lines():
                    seen.append(line)
                    if "[say] early" in line:
                        await session.send("stop")

            await asyncio.wait_for(read_all(), 30)
        assert not any("ready name=" in line for line in seen), seen
        assert any("stopped (stop)" in line for line in seen), seen
        assert (await runtime.status(server)).phase is ProcessPhase.EXITED
    finally:
        await runtime.destroy(server, keep_data=False)
