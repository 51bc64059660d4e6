"""The `kube` fixture: one real Kubernetes API server for every test that needs one.

Where the cluster comes from, first match wins:

1. `$KUBECONFIG`, when its current context is a test cluster (the name starts with
   `stellarstack-test` or `kind-`). Any other context is never used, whatever it points at.
2. A kind cluster through pytest-kind, when the `kind` binary and a `kindest/node` image are
   already on the machine (pytest-kind would otherwise download them, which cannot work here).
3. The local cluster of `make cluster` (hack/cluster/cluster.py): reused when it is up,
   started when its binaries are already built (a warm start takes well under a minute) and
   left running for the next session (STELLARSTACK_STOP_CLUSTER=1 stops one this fixture
   started). A cold build (several minutes of compiling) only happens when
   STELLARSTACK_KUBE_BUILD=1 is set.

Otherwise every test that uses it skips with the precise reason. See docs/cluster.md.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from support.required import KUBE, unavailable

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
TEST_CONTEXT_PREFIXES = ("stellarstack-test", "kind-")
CACHE = Path(os.environ.get("STELLARSTACK_CACHE", Path.home() / ".cache" / "stellarstack"))
CLUSTER_DIR = Path(os.environ.get("STELLARSTACK_CLUSTER_DIR", CACHE / "cluster"))
LOCAL_KUBECONFIG = CLUSTER_DIR / "kubeconfig"
LOCAL_CONTEXT = "stellarstack-test"
TEST_NAMESPACE_LABEL = "stellarstack.io/test"

TOY_IMAGE = "localhost/stellarstack/toy:1"
# Programs `make cluster` needs on the machine, with the Debian package that has each.
LOCAL_CLUSTER_TOOLS = {
    "containerd": "containerd",
    "runc": "runc",
    "etcd": "etcd-server",
    "ctr": "containerd",
    "iptables": "iptables",
    "ip": "iproute2",
    "openssl": "openssl",
    "make": "make",
}


class KubeTimeoutError(AssertionError):
    """A condition did not hold in time; the message says what was last seen."""


@dataclass
class Kube:
    """A connection to a test cluster and the helpers tests share."""

    kubeconfig: Path
    context: str
    source: str
    api_client: Any
    #: Pod IPs are routable from the test process (the local cluster's bridge).
    pods_reachable: bool = False
    _namespaces: list[str] = field(default_factory=list)

    # --- API groups, built lazily from the one ApiClient ------------------------------------

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    @property
    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    @property
    def apiextensions(self) -> Any:
        from kubernetes import client

        return client.ApiextensionsV1Api(self.api_client)

    @property
    def custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api_client)

    @property
    def storage(self) -> Any:
        from kubernetes import client

        return client.StorageV1Api(self.api_client)

    # --- waiting ----------------------------------------------------------------------------

    def wait_for(
        self,
        what: str,
        predicate: Callable[[], T | None],
        timeout: float = 60.0,
        interval: float = 0.5,
    ) -> T:
        """Call `predicate` until it returns something truthy, and return that.

        API errors and OSErrors (a refused or timed-out connection) from the predicate count
        as "not yet"; the last one is reported on timeout.
        """
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                result = predicate()
                if result:
                    return result
                last = result
            except ApiException as error:
                last = f"API error {error.status}: {error.reason}"
            except OSError as error:
                last = f"{type(error).__name__}: {error}"
            if time.monotonic() >= deadline:
                raise KubeTimeoutError(
                    f"{what}: not true after {timeout:.0f}s (last seen: {last!r})"
                )
            time.sleep(interval)

    def wait_for_pod_phase(
        self, namespace: str, name: str, phase: str = "Running", timeout: float = 90.0
    ) -> Any:
        """Wait until the pod is in `phase`; fail at once when it can never get there."""
        final = {"Succeeded", "Failed"}

        def check() -> Any:
            pod = self.core.read_namespaced_pod(name, namespace)
            current = pod.status.phase
            if current == phase:
                return pod
            if current in final:
                raise AssertionError(f"pod {namespace}/{name} ended {current}: {describe(pod)}")
            return None

        try:
            return self.wait_for(f"pod {namespace}/{name} {phase}", check, timeout)
        except KubeTimeoutError as error:
            pod = self.core.read_namespaced_pod(name, namespace)
            raise KubeTimeoutError(
                f"{error}; {describe(pod)}; events: {self.events(namespace)}"
            ) from None

    def wait_for_pod_ready(self, namespace: str, name: str, timeout: float = 90.0) -> Any:
        def ready() -> Any:
            pod = self.core.read_namespaced_pod(name, namespace)
            conditions = pod.status.conditions or []
            ok = any(c.type == "Ready" and c.status == "True" for c in conditions)
            return pod if ok else None

        return self.wait_for(f"pod {namespace}/{name} Ready", ready, timeout)

    def events(self, namespace: str) -> list[str]:
        items = self.core.list_namespaced_event(namespace).items
        return [f"{e.involved_object.name}: {e.reason}: {e.message}" for e in items][-10:]

    # --- namespaces -------------------------------------------------------------------------

    def create_namespace(self, hint: str = "test") -> str:
        """A fresh namespace with a unique name, labelled as a test namespace."""
        from kubernetes import client

        base = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:40].strip("-") or "test"
        name = f"{base}-{secrets.token_hex(3)}"
        body = client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={TEST_NAMESPACE_LABEL: "true"})
        )
        self.core.create_namespace(body)
        self._namespaces.append(name)
        return name

    def delete_namespace(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.delete_namespace(name, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise

    def wait_namespaces_gone(self, timeout: float = 120.0) -> None:
        """Namespaces this session made are gone (their pods stopped)."""
        from kubernetes.client.exceptions import ApiException

        def gone() -> bool:
            for name in self._namespaces:
                try:
                    self.core.read_namespace(name)
                    return False
                except ApiException as error:
                    if error.status != 404:
                        raise
            return True

        self.wait_for("test namespaces deleted", gone, timeout, interval=1.0)

    # --- custom resources -------------------------------------------------------------------

    def install_crds(self, path: Path | str, timeout: float = 60.0) -> list[str]:
        """Create or update the CustomResourceDefinitions in a YAML file or a directory of
        them, wait until each is Established, and return their names."""

        source = Path(path)
        files = sorted(source.glob("*.yaml")) + sorted(source.glob("*.yml"))
        if source.is_file():
            files = [source]
        if not files:
            raise FileNotFoundError(f"no CRD YAML in {source}")
        names: list[str] = []
        for file in files:
            for doc in yaml.safe_load_all(file.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                name = doc["metadata"]["name"]
                # A CRD still being deleted (its objects are cleaned up first) cannot be
                # replaced: it would vanish afterwards. Wait for it to go, then create anew.
                self.wait_for(
                    f"CRD {name} not terminating", partial(self._not_terminating, name), timeout
                )
                self._create_or_replace_crd(name, doc)
                names.append(name)
        for name in names:
            self.wait_for(f"CRD {name} Established", partial(self._established, name), timeout)
        return names

    def _established(self, name: str) -> bool:
        crd = self.apiextensions.read_custom_resource_definition(name)
        conditions = (crd.status.conditions if crd.status else None) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    def _create_or_replace_crd(self, name: str, doc: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        # Another test session may update the same CRD at the same moment: a replace that
        # loses the race (409 Conflict) is retried on the fresh resourceVersion.
        for _ in range(5):
            try:
                self.apiextensions.create_custom_resource_definition(doc)
                return
            except ApiException as error:
                if error.status != 409:
                    raise
            current = self.apiextensions.read_custom_resource_definition(name)
            doc["metadata"]["resourceVersion"] = current.metadata.resource_version
            try:
                self.apiextensions.replace_custom_resource_definition(name, doc)
                return
            except ApiException as error:
                if error.status not in (404, 409):
                    raise
            doc["metadata"].pop("resourceVersion", None)
        raise AssertionError(f"CRD {name}: kept conflicting with concurrent writers")

    def _not_terminating(self, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            crd = self.apiextensions.read_custom_resource_definition(name)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return crd.metadata.deletion_timestamp is None

    def _crd_gone(self, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self.apiextensions.read_custom_resource_definition(name)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    def delete_crds(self, names: list[str], timeout: float = 60.0) -> None:
        """Delete CRDs (and so all their objects) and wait until they are gone."""
        from kubernetes.client.exceptions import ApiException

        for name in names:
            try:
                self.apiextensions.delete_custom_resource_definition(name)
            except ApiException as error:
                if error.status != 404:
                    raise
        for name in names:
            self.wait_for(f"CRD {name} deleted", partial(self._crd_gone, name), timeout)

    # --- the node and its images ------------------------------------------------------------

    def node_address(self) -> str:
        """The InternalIP of the (first) node: where hostPort and NodePort answer."""
        node = self.core.list_node().items[0]
        for address in node.status.addresses:
            if address.type == "InternalIP":
                return str(address.address)
        raise AssertionError(f"node {node.metadata.name} has no InternalIP")

    def require_image(self, image: str) -> str:
        """Skip unless every node already has `image` (nothing can be pulled here)."""
        if self.source == "make cluster" and self._local_image_loaded(image):
            return image
        # Node status lists images, but the kubelet refreshes that list only every few minutes.
        for node in self.core.list_node().items:
            names = {n for i in (node.status.images or []) for n in (i.names or [])}
            if image not in names and f"docker.io/{image}" not in names:
                unavailable(
                    f"image {image} is not on node {node.metadata.name}; `make images`", KUBE
                )
        return image

    def _local_image_loaded(self, image: str) -> bool:
        # hack/images/load.sh leaves one marker per image imported into the local containerd.
        marker = CLUSTER_DIR / "images-loaded" / image.replace("/", "_").replace(":", "_")
        return marker.exists()

    def require_pod_network(self) -> None:
        if not self.pods_reachable:
            pytest.skip(f"pod IPs are not routable from the tests on a {self.source} cluster")


def describe(pod: Any) -> str:
    """The status of a pod in one line: phase, reasons, container states."""
    status = pod.status
    parts = [f"phase={status.phase}"]
    if status.reason:
        parts.append(f"reason={status.reason}: {status.message}")
    for cs in status.container_statuses or []:
        state = cs.state
        if state.waiting:
            parts.append(f"{cs.name} waiting {state.waiting.reason}: {state.waiting.message}")
        elif state.terminated:
            parts.append(
                f"{cs.name} terminated {state.terminated.reason} ({state.terminated.exit_code})"
            )
    for condition in status.conditions or []:
        if condition.status != "True" and condition.message:
            parts.append(f"{condition.type}: {condition.message}")
    return "; ".join(parts)


def is_test_context(name: str) -> bool:
    return name.startswith(TEST_CONTEXT_PREFIXES)


# --- finding a cluster ------------------------------------------------------------------------


def connect(kubeconfig: str, context: str | None = None) -> tuple[Any, str]:
    """An ApiClient for the context (default: current) of a kubeconfig, and the context name.

    Raises ValueError for a context that is not a test cluster: it is never connected to.
    """
    # The client's config loaders carry no type hints; treat the module as dynamic.
    config: Any = importlib.import_module("kubernetes.config")
    contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    chosen = context or (current or {}).get("name", "")
    if chosen not in {c["name"] for c in contexts}:
        raise ValueError(f"context {chosen!r} is not in {kubeconfig}")
    if not is_test_context(chosen):
        raise ValueError(
            f"context {chosen!r} is not a test cluster (names must start with "
            f"{' or '.join(TEST_CONTEXT_PREFIXES)}); it is never used by the tests"
        )
    api_client = config.new_client_from_config(config_file=kubeconfig, context=chosen)
    return api_client, chosen


def answers(api_client: Any) -> str | None:
    """None when the API server answers; otherwise why not."""
    from kubernetes import client

    try:
        client.VersionApi(api_client).get_code(_request_timeout=5)
    except Exception as error:  # any failure to reach it means "not usable"
        return f"{type(error).__name__}: {error}"
    return None


def kind_unavailable() -> str | None:
    """None when pytest-kind can make a cluster offline here; otherwise why not."""
    if importlib.util.find_spec("pytest_kind") is None:
        return "pytest-kind is not installed"
    if not shutil.which("kind"):
        return "no kind binary on PATH (pytest-kind would download one; nothing can be fetched)"
    docker = shutil.which("docker")
    if not docker:
        return "no docker CLI for kind"
    listed = subprocess.run(
        [docker, "image", "ls", "-q", "kindest/node"], capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        return f"Docker does not answer for kind: {listed.stderr.strip()}"
    if not listed.stdout.strip():
        return "no kindest/node image in Docker (it cannot be pulled here)"
    return None


def local_cluster_unavailable() -> str | None:
    """None when `make cluster` can start the local cluster here; otherwise why not."""
    if os.geteuid() != 0:
        return "the local cluster needs root (kubelet, containerd and its network bridge)"
    missing = sorted({pkg for tool, pkg in LOCAL_CLUSTER_TOOLS.items() if not find_tool(tool)})
    if missing:
        return f"missing Debian packages for `make cluster`: {' '.join(missing)}"
    built = list((CACHE / "k8s").glob("*/bin/kubelet"))
    if not built and os.environ.get("STELLARSTACK_KUBE_BUILD") != "1":
        return (
            "the Kubernetes binaries are not built yet; run `make cluster` once (a cold build "
            "compiles for several minutes) or set STELLARSTACK_KUBE_BUILD=1"
        )
    return None


def find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def local_cluster_up() -> bool:
    status = subprocess.run(
        ["python3", str(REPO / "hack/cluster/cluster.py"), "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    return status.returncode == 0 and "ready: True" in status.stdout


@contextlib.contextmanager
def _local_cluster(reasons: list[str]) -> Iterator[Kube | None]:
    started = False
    if not (LOCAL_KUBECONFIG.exists() and local_cluster_up()):
        why = local_cluster_unavailable()
        if why:
            reasons.append(f"local cluster: {why}")
            yield None
            return
        result = subprocess.run(
            ["make", "--no-print-directory", "cluster"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-8:]
            reasons.append("local cluster: `make cluster` failed: " + " | ".join(tail))
            yield None
            return
        # Left running by default: other test sessions on the machine may be using it by
        # now, and the next run starts at once. `make cluster-down` stops it.
        started = os.environ.get("STELLARSTACK_STOP_CLUSTER") == "1"
    api_client, context = connect(str(LOCAL_KUBECONFIG), LOCAL_CONTEXT)
    try:
        yield Kube(LOCAL_KUBECONFIG, context, "make cluster", api_client, pods_reachable=True)
    finally:
        api_client.close()
        if started:
            subprocess.run(["make", "--no-print-directory", "cluster-down"], cwd=REPO, check=False)


@contextlib.contextmanager
def _kind_cluster() -> Iterator[Kube]:
    pytest_kind: Any = importlib.import_module("pytest_kind")
    cluster = pytest_kind.KindCluster("stellarstack-test")
    cluster.create()
    try:
        api_client, context = connect(str(cluster.kubeconfig_path), "kind-stellarstack-test")
        yield Kube(Path(cluster.kubeconfig_path), context, "kind", api_client)
        api_client.close()
    finally:
        cluster.delete()


@contextlib.contextmanager
def find_cluster() -> Iterator[Kube | str]:
    """Yield a Kube for the first usable cluster, or the reasons none could be used."""
    reasons: list[str] = []
    env = os.environ.get("KUBECONFIG")
    if env:
        from kubernetes.config.config_exception import ConfigException

        try:
            api_client, context = connect(env)
        except (ValueError, OSError, ConfigException) as error:
            reasons.append(f"$KUBECONFIG: {error}")
        else:
            problem = answers(api_client)
            if problem is None:
                try:
                    yield Kube(Path(env.split(os.pathsep)[0]), context, "KUBECONFIG", api_client)
                finally:
                    api_client.close()
                return
            api_client.close()
            reasons.append(f"$KUBECONFIG context {context}: API server does not answer: {problem}")
    why_not_kind = kind_unavailable()
    if why_not_kind is None:
        with _kind_cluster() as kube:
            yield kube
        return
    reasons.append(f"kind: {why_not_kind}")
    with _local_cluster(reasons) as local:
        if local is not None:
            yield local
            return
    yield "no test Kubernetes cluster: " + "; ".join(reasons)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kube() -> Iterator[Kube]:
    """The session's test cluster (see the module docstring); skips with the reason if none."""
    pytest.importorskip("kubernetes")
    with find_cluster() as found:
        if isinstance(found, str):
            unavailable(found, KUBE)
        yield found
        with contextlib.suppress(KubeTimeoutError):
            found.wait_namespaces_gone()


@pytest.fixture
def kube_namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted (with everything in it) afterwards."""
    name = kube.create_namespace(request.node.name)
    yield name
    kube.delete_namespace(name)


# --- talking to pods --------------------------------------------------------------------------


def tcp_request(host: str, port: int, payload: bytes = b"", timeout: float = 5.0) -> bytes:
    """Connect, send `payload` (may be empty), and read until the peer closes."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        if payload:
            conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def udp_request(host: str, port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(payload, (host, port))
        data, _ = sock.recvfrom(65535)
    return data


def toy_pod(
    name: str,
    server_name: str,
    host_ports: tuple[int, int] | None = None,
    labels: dict[str, str] | None = None,
) -> Any:
    """A V1Pod running the toy game server (TOY_IMAGE) as uid 1000 with an emptyDir /data.

    Ports: 7777/TCP "status" and 7778/UDP "query"; `host_ports` also publishes them on the
    node as (tcp, udp) hostPorts.
    """
    from kubernetes import client

    ports = [
        client.V1ContainerPort(name="status", container_port=7777, protocol="TCP"),
        client.V1ContainerPort(name="query", container_port=7778, protocol="UDP"),
    ]
    if host_ports is not None:
        ports[0].host_port, ports[1].host_port = host_ports
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {"app": "toy"}),
        spec=client.V1PodSpec(
            termination_grace_period_seconds=10,
            containers=[
                client.V1Container(
                    name="game",
                    image=TOY_IMAGE,
                    image_pull_policy="Never",
                    env=[client.V1EnvVar(name="TOY_NAME", value=server_name)],
                    ports=ports,
                    volume_mounts=[client.V1VolumeMount(name="data", mount_path="/data")],
                    security_context=client.V1SecurityContext(
                        run_as_non_root=True, allow_privilege_escalation=False
                    ),
                )
            ],
            volumes=[client.V1Volume(name="data", empty_dir=client.V1EmptyDirVolumeSource())],
            security_context=client.V1PodSecurityContext(fs_group=1000),
        ),
    )
