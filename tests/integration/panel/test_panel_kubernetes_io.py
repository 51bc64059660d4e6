"""Console, logs and files of a server on Kubernetes, through the panel, against the real test
cluster: the operator (in-process, namespace-scoped, with its files service configured with the
panel's public key) runs a toy GameServer; the panel reads its log, proxies its console over
the WebSocket, and reaches its files through the on-demand files Pod and the API server's
service proxy with panel-signed tokens."""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException
from websockets.asyncio.client import connect

from stellarstack.operator.filespod import FilesSettings
from stellarstack.panel.backends.registry import BackendRegistry
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import KubernetesTarget, Server, TargetKind
from support.kube import TOY_IMAGE, Kube
from support.operator_cluster import (
    GROUP,
    VERSION,
    GameServers,
    delete_all_gameservers,
    gameserver_doc,
)
from support.panel import Panel, create_user
from support.panel_node import served
from support.runtime_harness import TOY_BLUEPRINT

REPO = Path(__file__).resolve().parents[3]
KEY_CONFIG_MAP = "panel-public-key"
# The install step leaves a link out of the volume, as a game or a mod could.
INSTALL_SCRIPT = (
    "set -e\necho installed > /mnt/server/installed.txt\nln -s /etc /mnt/server/escape\n"
)

pytestmark = [
    pytest.mark.kube,
    pytest.mark.slow,
    pytest.mark.timeout(500),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="session")
def crds(kube: Kube) -> list[str]:
    return kube.install_crds(REPO / "crds")


@pytest.fixture
def files_operator(
    panel: Panel,
    kube: Kube,
    kube_namespace: str,
    crds: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[KopfRunner]:
    """The operator for this namespace, its files service trusting the panel's key."""
    kube.require_image(TOY_IMAGE)
    kube.require_image(FilesSettings().image)
    public = panel.context.signing_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    kube.core.create_namespaced_config_map(
        kube_namespace,
        {"metadata": {"name": KEY_CONFIG_MAP}, "data": {"panel-public-key.pem": public.decode()}},
    )
    monkeypatch.setenv(
        "STELLARSTACK_OPERATOR_FILES_PUBLIC_KEY_CONFIG_MAP", f"{kube_namespace}/{KEY_CONFIG_MAP}"
    )
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    args = ["run", "--standalone", "-n", kube_namespace, "-m", "stellarstack.operator.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
        delete_all_gameservers(kube, kube_namespace)
    gc.collect()
    assert runner.exception is None, runner.output[-4000:]


@pytest.fixture
def toy_blueprint(kube: Kube) -> Iterator[str]:
    name = f"toy-io-{secrets.token_hex(3)}"
    document = copy.deepcopy(TOY_BLUEPRINT)
    document["apiVersion"] = f"{GROUP}/{VERSION}"
    document["metadata"] = {"name": name}
    document["spec"]["install"] = {**document["spec"]["install"], "script": INSTALL_SCRIPT}
    kube.custom.create_cluster_custom_object(GROUP, VERSION, "blueprints", document)
    yield name
    try:
        kube.custom.delete_cluster_custom_object(GROUP, VERSION, "blueprints", name)
    except ApiException as error:
        if error.status != 404:
            raise


def register(panel: Panel, kube: Kube, namespace: str, name: str, owner_id: str) -> str:
    with transaction(panel.context.sessions) as db:
        target = KubernetesTarget(
            name=f"cluster-{namespace}"[:100], namespace=namespace, context=kube.context
        )
        db.add(target)
        db.flush()
        server = Server(
            name=name,
            owner_id=owner_id,
            target_kind=TargetKind.KUBERNETES,
            kubernetes_target_id=target.id,
            namespace=namespace,
            resource_name=name,
            blueprint="toy",
            state="Running",
        )
        db.add(server)
        db.flush()
        return server.id


async def test_console_logs_and_files_of_a_kubernetes_server_through_the_panel(
    panel: Panel,
    kube: Kube,
    kube_namespace: str,
    files_operator: KopfRunner,
    toy_blueprint: str,
) -> None:
    panel.context.backends = BackendRegistry(
        kubeconfig=kube.kubeconfig, signing_key=panel.context.signing_key
    )
    name = f"io-{secrets.token_hex(3)}"
    gameservers = GameServers(kube, kube_namespace)
    gameservers.create(gameserver_doc(name, toy_blueprint))
    await asyncio.to_thread(gameservers.wait_state, name, "Running", 240)
    admin = panel.setup_admin()
    owner_id = create_user(panel, admin, "owner@example.com")
    server_id = register(panel, kube, kube_namespace, name, owner_id)
    owner = panel.login("owner@example.com")

    lines = owner.get(f"/api/servers/{server_id}/logs").json()["lines"]
    assert any(f"ready name={name}" in line for line in lines), lines

    word = secrets.token_hex(4)
    with served(panel) as base:
        url = base.replace("http", "ws", 1) + f"/api/servers/{server_id}/console"
        session = owner.raw.cookies.get("stellarstack_session")
        headers = {"Cookie": f"stellarstack_session={session}", "Origin": "https://testserver"}
        async with connect(url, additional_headers=headers) as ws:
            seen: list[str] = []

            async def wait_for(text: str) -> None:
                async with asyncio.timeout(60):
                    while not any(text in line for line in seen):
                        message = json.loads(await ws.recv())
                        if message["type"] == "output":
                            seen.append(message["line"])

            await wait_for(f"ready name={name}")
            await ws.send(json.dumps({"type": "command", "line": f"say {word}"}))
            await wait_for(f"[say] {word}")

    files = f"/api/servers/{server_id}/files"
    listing = await asyncio.to_thread(owner.get, f"{files}/list")
    if listing.status_code == 503:
        # The panel asked for the files Pod and waited its 120 s; on a loaded one-node cluster
        # scheduling it can take longer. Once it runs, the panel's next call must succeed.
        assert listing.json()["error"]["code"] == "backend_unavailable", listing.text
        await asyncio.to_thread(kube.wait_for_pod_ready, kube_namespace, f"{name}-files", 300)
        listing = owner.get(f"{files}/list")
    assert listing.status_code == 200, listing.text
    uploaded = owner.put(
        f"{files}/content", params={"path": "config/motd.txt"}, content=b"hello from the panel\n"
    )
    assert uploaded.status_code == 201, uploaded.text
    download = owner.get(f"{files}/content", params={"path": "config/motd.txt"})
    assert (download.status_code, download.content) == (200, b"hello from the panel\n")
    installed = owner.get(f"{files}/content", params={"path": "installed.txt"})
    assert installed.content == b"installed\n", "the files Pod sees the game's volume"
    names = {entry["name"] for entry in owner.get(f"{files}/list").json()}
    assert {"config", "installed.txt", "escape"} <= names
    escaped = owner.get(f"{files}/content", params={"path": "escape/passwd"})
    assert escaped.status_code == 403, escaped.text
    assert escaped.json()["error"]["code"] == "symlink_refused"
    assert owner.get(f"/api/servers/{server_id}/backups").status_code == 200
