"""A GameServer's files on the cluster: the files Pod appears on request, serves the node API's
files routes through the API server's service proxy (as a panel outside the cluster reaches
it) and SFTP, with panel-signed server tokens only, and goes away once the requests stop."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncssh
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException

from stellarstack.api.tokens import ServerGrant, sign_server_token
from stellarstack.operator.filespod import ANNOTATION_FILES_REQUESTED, FilesSettings
from support.kube import Kube
from support.operator_cluster import GROUP, VERSION, GameServers, gameserver_doc
from support.runtime_harness import TOY_BLUEPRINT

pytestmark = [
    pytest.mark.kube,
    pytest.mark.slow,
    # Kopf's HTTP sessions in the runner thread are sometimes collected after the test ends.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]
log = logging.getLogger(__name__)

IDLE_SECONDS = 20
KEY_CONFIG_MAP = "panel-public-key"
# The install step leaves a link out of the volume (to /etc), as a game or a mod could;
# following it would leave the server's root.
INSTALL_SCRIPT = (
    "set -e\necho installed > /mnt/server/installed.txt\nln -s /etc /mnt/server/escape\n"
)


@pytest.fixture
def panel_key(
    kube: Kube, kube_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Ed25519PrivateKey:
    """The panel's key pair; its public half in a ConfigMap the operator settings name."""
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    kube.core.create_namespaced_config_map(
        kube_namespace,
        {
            "metadata": {"name": KEY_CONFIG_MAP},
            "data": {"panel-public-key.pem": pem.decode()},
        },
    )
    monkeypatch.setenv(
        "STELLARSTACK_OPERATOR_FILES_PUBLIC_KEY_CONFIG_MAP", f"{kube_namespace}/{KEY_CONFIG_MAP}"
    )
    monkeypatch.setenv("STELLARSTACK_OPERATOR_FILES_IDLE_TIMEOUT_SECONDS", str(IDLE_SECONDS))
    kube.require_image(FilesSettings().image)
    return key


@pytest.fixture
def files_operator(panel_key: Ed25519PrivateKey, operator: KopfRunner) -> KopfRunner:
    """The operator, started after the files settings are in its environment."""
    return operator


def server_token(key: Ed25519PrivateKey, namespace: str, name: str) -> str:
    now = datetime.now(UTC)
    grant = ServerGrant(
        subject="alice",
        namespace=namespace,
        name=name,
        scopes=frozenset({"files.read", "files.write", "files.delete"}),
        audience="kubernetes",
        expires_at=now + timedelta(minutes=10),
    )
    return sign_server_token(key, grant, now=now)


def through_proxy(
    kube: Kube,
    namespace: str,
    service: str,
    method: str,
    path: str,
    query: dict[str, str],
    body: bytes | None = None,
) -> tuple[int, bytes]:
    """One request through the API server's service proxy, with the test's own cluster
    credentials; the server token rides in the query (the API server consumes the
    Authorization header for its own authentication)."""
    resource = f"/api/v1/namespaces/{namespace}/services/{service}:http/proxy{path}"
    client = kube.api_client
    method, url, headers, payload, _ = client.param_serialize(
        method,
        resource,
        query_params=list(query.items()),
        header_params={"Content-Type": "application/octet-stream", "Accept": "*/*"},
        body=body,
        auth_settings=["BearerToken"],
    )
    try:
        response = client.call_api(
            method, url, header_params=headers, body=payload, _request_timeout=30
        )
    except ApiException as error:
        raw = error.body or b""
        return int(error.status), raw if isinstance(raw, bytes) else str(raw).encode()
    return int(response.status), bytes(response.read())


def request_files(kube: Kube, namespace: str, name: str) -> None:
    kube.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "gameservers",
        name,
        {"metadata": {"annotations": {ANNOTATION_FILES_REQUESTED: _now()}}},
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _read(kube: Kube, kind: str, namespace: str, name: str) -> Any:
    read = {
        "Pod": kube.core.read_namespaced_pod,
        "Service": kube.core.read_namespaced_service,
        "ConfigMap": kube.core.read_namespaced_config_map,
    }[kind]
    try:
        return read(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def test_files_pod_serves_on_request_and_goes_when_idle(
    kube: Kube,
    kube_namespace: str,
    files_operator: KopfRunner,
    panel_key: Ed25519PrivateKey,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    install = {**TOY_BLUEPRINT["spec"]["install"], "script": INSTALL_SCRIPT}
    bp = blueprint(install=install, fileDenylist=["*.secret"])
    name = f"files-{secrets.token_hex(3)}"
    gameservers.create(gameserver_doc(name, bp, power={"state": "Stopped"}))
    gameservers.wait_state(name, "Stopped", timeout=180)
    files = f"{name}-files"
    assert _read(kube, "Pod", kube_namespace, files) is None  # nothing until asked for

    requested = time.monotonic()
    request_files(kube, kube_namespace, name)
    pod = kube.wait_for_pod_ready(kube_namespace, files, timeout=120)
    log.info("files Pod Ready %.1f s after the request", time.monotonic() - requested)
    assert pod.spec.automount_service_account_token is False
    assert not any(v.projected for v in pod.spec.volumes), "no service-account token volume"
    assert pod.spec.containers[0].security_context.run_as_user == 1000
    assert _read(kube, "Service", kube_namespace, files).spec.type == "ClusterIP"

    token = server_token(panel_key, kube_namespace, name)
    base = f"/api/v1/namespaces/{kube_namespace}/gameservers/{name}/files"

    def call(method: str, route: str, body: bytes | None = None, **query: str) -> tuple[int, bytes]:
        return through_proxy(
            kube, kube_namespace, files, method, f"{base}/{route}", query, body=body
        )

    status, body = call(
        "PUT", "content", b"motd=from the panel\n", path="config/a.properties", token=token
    )
    assert status == 201, body
    status, body = call("GET", "content", path="config/a.properties", token=token)
    assert (status, body) == (200, b"motd=from the panel\n")
    status, body = call("GET", "content", path="installed.txt", token=token)
    assert (status, body) == (200, b"installed\n"), "the files Pod sees the game's volume"

    # The link the install step planted is listed, but nothing goes through it.
    status, body = call("GET", "content", path="escape/passwd", token=token)
    assert status == 403, body
    assert b"symlink_refused" in body
    status, body = call("PUT", "content", b"x", path="escape/planted", token=token)
    assert status == 403, body
    # The Blueprint's deny-list reached the files Pod.
    status, body = call("PUT", "content", b"x", path="a.secret", token=token)
    assert status == 403, body
    assert b"denied" in body
    # A valid token of another server, and no token at all, are refused.
    other = server_token(panel_key, kube_namespace, f"{name}-other")
    status, body = call("GET", "content", path="config/a.properties", token=other)
    assert status == 403, body
    status, _ = call("GET", "content", path="config/a.properties")
    assert status == 401

    # The panel stops asking: the files Pod, its Service and ConfigMap go after the timeout.
    last_request = requested
    kube.wait_for(
        "files Pod removed when idle",
        lambda: _read(kube, "Pod", kube_namespace, files) is None,
        timeout=IDLE_SECONDS + 90,
        interval=2.0,
    )
    log.info(
        "files Pod gone %.1f s after the last request (idle timeout %d s)",
        time.monotonic() - last_request,
        IDLE_SECONDS,
    )
    assert _read(kube, "Service", kube_namespace, files) is None
    assert _read(kube, "ConfigMap", kube_namespace, files) is None

    # What was written is on the volume the game uses: a new request serves it again.
    request_files(kube, kube_namespace, name)
    kube.wait_for_pod_ready(kube_namespace, files, timeout=120)
    status, body = call("GET", "content", path="config/a.properties", token=token)
    assert (status, body) == (200, b"motd=from the panel\n")


async def _sftp_session(address: str, user: str, password: str) -> tuple[str, list[str], bytes]:
    """Log in, list, download a file and upload one; the host key's fingerprint and results."""
    async with (
        asyncssh.connect(
            address,
            2022,
            username=user,
            password=password,
            client_keys=None,
            known_hosts=None,
            agent_path=None,
            config=None,
            connect_timeout=30,
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        names = sorted(await sftp.listdir("/"))
        async with sftp.open("/installed.txt", "rb") as handle:
            content = await handle.read()
        async with sftp.open("/via-sftp.txt", "wb") as handle:
            await handle.write(b"over sftp\n")
        return conn.get_server_host_key().get_fingerprint(), names, content


def test_files_pod_serves_sftp_with_a_host_key_that_outlives_the_pod(
    kube: Kube,
    kube_namespace: str,
    files_operator: KopfRunner,
    panel_key: Ed25519PrivateKey,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    kube.require_pod_network()
    bp = blueprint()
    name = f"sftp-{secrets.token_hex(3)}"
    gameservers.create(gameserver_doc(name, bp, power={"state": "Stopped"}))
    gameservers.wait_state(name, "Stopped", timeout=180)
    files = f"{name}-files"
    request_files(kube, kube_namespace, name)
    pod = kube.wait_for_pod_ready(kube_namespace, files, timeout=120)
    token = server_token(panel_key, kube_namespace, name)
    user = f"alice.{kube_namespace}.{name}"

    fingerprint, names, content = asyncio.run(_sftp_session(pod.status.pod_ip, user, token))
    assert "installed.txt" in names
    assert content == b"installed\n"
    status, body = through_proxy(
        kube,
        kube_namespace,
        files,
        "GET",
        f"/api/v1/namespaces/{kube_namespace}/gameservers/{name}/files/content",
        {"path": "via-sftp.txt", "token": token},
    )
    assert (status, body) == (200, b"over sftp\n")
    other = server_token(panel_key, kube_namespace, f"{name}-other")
    with pytest.raises(asyncssh.PermissionDenied):
        asyncio.run(_sftp_session(pod.status.pod_ip, user, other))

    # A files Pod deleted by hand comes back while requests are recent, with the same host key.
    kube.core.delete_namespaced_pod(files, kube_namespace, grace_period_seconds=0)
    kube.wait_for(
        "files Pod recreated",
        lambda: (
            (p := _read(kube, "Pod", kube_namespace, files)) is not None
            and p.metadata.uid != pod.metadata.uid
        ),
        timeout=60,
        interval=1.0,
    )
    again = kube.wait_for_pod_ready(kube_namespace, files, timeout=120)
    assert asyncio.run(_sftp_session(again.status.pod_ip, user, token))[0] == fingerprint


def test_no_files_pod_while_installing(
    kube: Kube,
    kube_namespace: str,
    files_operator: KopfRunner,
    panel_key: Ed25519PrivateKey,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    # The first install is quick; a reinstall takes long enough to be watched.
    script = (
        "set -e\nif [ -f /mnt/server/installed.txt ]; then sleep 40; fi\n"
        "echo installed > /mnt/server/installed.txt\n"
    )
    bp = blueprint(install={**TOY_BLUEPRINT["spec"]["install"], "script": script})
    name = f"inst-{secrets.token_hex(3)}"
    gameservers.create(gameserver_doc(name, bp, power={"state": "Stopped"}))
    gameservers.wait_state(name, "Stopped", timeout=180)
    files = f"{name}-files"
    request_files(kube, kube_namespace, name)
    kube.wait_for_pod_ready(kube_namespace, files, timeout=120)

    gameservers.patch_spec(name, {"reinstallRequest": "again"})
    gameservers.wait_state(name, "Installing", timeout=60)
    request_files(kube, kube_namespace, name)  # asking again does not bring it back now
    kube.wait_for(
        "files Pod removed while Installing",
        lambda: _read(kube, "Pod", kube_namespace, files) is None,
        timeout=30,
        interval=1.0,
    )
    assert gameservers.status(name)["state"] == "Installing", "the check ran during the install"

    gameservers.wait_state(name, "Stopped", timeout=120)
    request_files(kube, kube_namespace, name)
    kube.wait_for_pod_ready(kube_namespace, files, timeout=120)
