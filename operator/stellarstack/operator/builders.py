"""Pure builders: a `Workload` (plus its GameServer) in, Kubernetes objects (plain dicts) out.

No Kubernetes client here (an import-linter contract keeps it so); the I/O layer sends these
dicts as they are, and unit tests compare them with golden YAML files.

Why a bare Pod with `restartPolicy: Never` rather than a StatefulSet:

* Power is a user-visible state machine (Running/Stopped, restart and kill requests, crash
  back-off with `crashPolicy`) that nodeproxy already decides with the pure
  `stellarstack.api.lifecycle.compute_step`. A bare Pod that never restarts by itself lets the
  operator use that same decision unchanged: an exit is observed as an exit, never hidden by a
  kubelet restart, and back-off follows the GameServer's own policy instead of the kubelet's.
* "Stopped" is simply "no game Pod" while the PVC stays; a StatefulSet would need scaling to
  zero and would restart a game that exits by itself (`stop` on the console) at once.
* The install step must finish before the first start and must never run beside the game;
  ordering a Job and a Pod is easy, ordering a Job and a StatefulSet's replica is not.

The cost is that the operator must recreate the Pod itself after a node failure; its reconcile
loop does that (an absent Pod while `power.state` is Running is a crash).
"""

from __future__ import annotations

from typing import Any

from stellarstack.api.configfiles import PLANS_ENV, plans_to_json
from stellarstack.api.constants import API_VERSION, LABEL_COMPONENT, LABEL_GAMESERVER
from stellarstack.api.gameserver import ExposureType, GameServer, PlacementType
from stellarstack.api.workload import Workload, WorkloadSettings

GAME_CONTAINER = "game"
INSTALL_CONTAINER = "install"
CONFIG_FILES_CONTAINER = "config-files"
# What `stellarstack configfiles apply` needs (about 45 MB resident, under a CPU-second with
# the interpreter's start); a smaller game gives it less (see `_helper_resources`).
CONFIG_FILES_CPU_MILLICORES = 250
CONFIG_FILES_MEMORY_BYTES = 96 * 2**20
DATA_VOLUME = "data"
INSTALL_SCRIPT_DIR = "/mnt/install"
INSTALL_SCRIPT_NAME = "install.sh"
ANNOTATION_INSTALL_REQUEST = "stellarstack.io/install-request"
# A scratch /tmp for read-only root filesystems; bounded so it cannot fill the node.
TMP_SIZE_LIMIT = "256Mi"

Manifest = dict[str, Any]


def pod_name(gameserver_name: str) -> str:
    """The game Pod's name: the GameServer's own (one Pod at a time)."""
    return gameserver_name


def pvc_name(gameserver_name: str) -> str:
    return f"{gameserver_name}-data"


def service_name(gameserver_name: str) -> str:
    return gameserver_name


def install_name(gameserver_name: str) -> str:
    """Name of the install Job and of the ConfigMap holding its script."""
    return f"{gameserver_name}-install"


def owner_reference(gameserver: GameServer) -> Manifest:
    """Makes the GameServer the controller of a child, so deleting it collects the child."""
    return {
        "apiVersion": API_VERSION,
        "kind": "GameServer",
        "name": gameserver.metadata.name,
        "uid": gameserver.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_labels(workload: Workload, component: str) -> dict[str, str]:
    return {**workload.labels, LABEL_COMPONENT: component}


def selector_labels(workload: Workload) -> dict[str, str]:
    """What the Services select: only the game Pod (never the install Job's Pod)."""
    return {LABEL_GAMESERVER: workload.name, LABEL_COMPONENT: "server"}


def _metadata(
    workload: Workload, gameserver: GameServer, name: str, component: str, *, owned: bool = True
) -> Manifest:
    meta: Manifest = {
        "name": name,
        "namespace": workload.namespace,
        "labels": child_labels(workload, component),
    }
    if owned:
        meta["ownerReferences"] = [owner_reference(gameserver)]
    return meta


def desired_pvc(workload: Workload, gameserver: GameServer) -> Manifest:
    """The data volume. A retained volume has no owner, so garbage collection cannot take it
    even if the GameServer's finalizer is removed by hand."""
    spec: Manifest = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(workload.volume.size_bytes)}},
    }
    if workload.volume.storage_class:
        spec["storageClassName"] = workload.volume.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(
            workload,
            gameserver,
            pvc_name(workload.name),
            "data",
            owned=not workload.volume.retain_on_delete,
        ),
        "spec": spec,
    }


def _resources(workload: Workload) -> Manifest:
    # Requests equal limits: the Guaranteed QoS class, and no overcommit surprises mid-game.
    amounts = {
        "cpu": f"{workload.limits.cpu_millicores}m",
        "memory": str(workload.limits.memory_bytes),
    }
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _helper_resources(workload: Workload, cpu_millicores: int, memory_bytes: int) -> Manifest:
    """Requests = limits of a helper (init) container in a game's Pod: what the helper needs,
    but never more than the game asks for. A Pod's effective request is the larger of its
    largest init container's and its app containers' sum, so a helper asking more would make a
    small server need more than it asked for to be scheduled (a 100m toy needed 250m). Capped,
    a helper of a small server only runs slower; requests = limits keeps the Pod Guaranteed."""
    cpu = min(cpu_millicores, workload.limits.cpu_millicores)
    memory = min(memory_bytes, workload.limits.memory_bytes)
    amounts = {"cpu": f"{cpu}m", "memory": _memory_quantity(memory)}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _memory_quantity(memory_bytes: int) -> str:
    """Whole mebibytes as `<n>Mi` (what a reader expects), any other amount in bytes."""
    mebibytes, rest = divmod(memory_bytes, 2**20)
    return f"{mebibytes}Mi" if not rest else str(memory_bytes)


def _container_security(workload: Workload) -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": workload.run_as_user,
        "runAsGroup": workload.run_as_group,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": workload.read_only_root_filesystem,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_security(workload: Workload) -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": workload.run_as_user,
        "runAsGroup": workload.run_as_group,
        "fsGroup": workload.run_as_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _env(env: dict[str, str] | Any) -> list[Manifest]:
    return [{"name": key, "value": value} for key, value in sorted(env.items())]


def _pod_spec_base(workload: Workload, gameserver: GameServer) -> Manifest:
    """What every Pod of a GameServer shares: no API token, no host namespaces, its node."""
    spec: Manifest = {
        "automountServiceAccountToken": False,
        # Service links would put every Service of the namespace into the game's environment.
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "securityContext": _pod_security(workload),
    }
    placement = gameserver.spec.placement
    if placement.type is PlacementType.KUBERNETES and placement.node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": placement.node}
    return spec


def desired_pod(
    workload: Workload,
    gameserver: GameServer,
    settings: WorkloadSettings | None = None,
    *,
    stellarstack_image: str | None = None,
) -> Manifest:
    """The game Pod: runs `workload.argv` once (`restartPolicy: Never`; see the module doc).
    When the blueprint edits config files, an init container running `stellarstack_image`
    applies the edits to the volume first, so they hold at every start (one Pod per start)."""
    settings = settings or WorkloadSettings()
    ports: list[Manifest] = []
    for port in workload.ports:
        entry: Manifest = {
            "name": _port_name(workload, port.name, port.protocol),
            "containerPort": port.container_port,
            "protocol": port.protocol,
        }
        if workload.exposure is ExposureType.HOST_PORT:
            entry["hostPort"] = port.host_port
            if port.host_ip is not None:
                entry["hostIP"] = port.host_ip
        ports.append(entry)
    mounts: list[Manifest] = [{"name": DATA_VOLUME, "mountPath": settings.data_path}]
    volumes: list[Manifest] = [
        {"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": pvc_name(workload.name)}}
    ]
    if workload.read_only_root_filesystem:
        mounts.append({"name": "tmp", "mountPath": "/tmp"})
        volumes.append({"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}})
    container: Manifest = {
        "name": GAME_CONTAINER,
        "image": workload.image,
        "imagePullPolicy": "IfNotPresent",
        # The whole command line replaces the image's entrypoint (see Workload.argv).
        "command": list(workload.argv),
        "env": _env(workload.env),
        "workingDir": workload.working_dir,
        "ports": ports,
        "resources": _resources(workload),
        "securityContext": _container_security(workload),
        "volumeMounts": mounts,
        # The console: stdin stays open for every attach (stdinOnce false); no TTY, so output
        # lines reach the log unmangled.
        "stdin": True,
        "stdinOnce": False,
        "tty": False,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    spec = _pod_spec_base(workload, gameserver)
    spec.update(
        {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": workload.stop.grace_period_seconds,
            "containers": [container],
            "volumes": volumes,
        }
    )
    if workload.config_files:
        if not stellarstack_image:
            raise ValueError("stellarstack_image: needed to apply the blueprint's configFiles")
        spec["initContainers"] = [
            desired_config_files_container(workload, settings, stellarstack_image)
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(workload, gameserver, pod_name(workload.name), "server"),
        "spec": spec,
    }


def desired_config_files_container(
    workload: Workload, settings: WorkloadSettings, image: str
) -> Manifest:
    """The init container that applies the blueprint's rendered config-file edits to the data
    volume (`stellarstack configfiles apply`, which never follows a symlink out of it). It runs
    as the game's user with the same refusal of privileges and a read-only root; the edits
    travel in its environment, beside the variable values the game's environment already has."""
    return {
        "name": CONFIG_FILES_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        # The image's entrypoint is the `stellarstack` command.
        "args": ["configfiles", "apply", "--root", settings.data_path],
        "env": [{"name": PLANS_ENV, "value": plans_to_json(workload.config_files)}],
        "resources": _helper_resources(
            workload, CONFIG_FILES_CPU_MILLICORES, CONFIG_FILES_MEMORY_BYTES
        ),
        "securityContext": {**_container_security(workload), "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": DATA_VOLUME, "mountPath": settings.data_path}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _port_name(workload: Workload, name: str, protocol: str) -> str:
    # A TCPUDP port appears twice; Kubernetes wants unique port names of at most 15 characters.
    twice = sum(1 for p in workload.ports if p.name == name) > 1
    return f"{name[:11]}-{protocol.lower()}" if twice else name


def desired_services(workload: Workload, gameserver: GameServer) -> list[Manifest]:
    """The Services for the exposure type: none for HostPort (players use the node's address
    and the Pod's hostPorts), otherwise one Service carrying every port and protocol."""
    if workload.exposure is ExposureType.HOST_PORT or not workload.ports:
        return []
    exposure = gameserver.spec.exposure
    ports: list[Manifest] = []
    for port in workload.ports:
        entry: Manifest = {
            "name": _port_name(workload, port.name, port.protocol),
            "port": port.container_port,
            "targetPort": port.container_port,
            "protocol": port.protocol,
        }
        if workload.exposure is ExposureType.NODE_PORT and port.node_port is not None:
            entry["nodePort"] = port.node_port
        ports.append(entry)
    spec: Manifest = {
        "type": workload.exposure.value,
        "selector": selector_labels(workload),
        "ports": ports,
    }
    if workload.exposure in {ExposureType.NODE_PORT, ExposureType.LOAD_BALANCER}:
        # Game servers see their players' real addresses only when traffic is not re-routed
        # (and source-NATed) through another node.
        spec["externalTrafficPolicy"] = "Local"
    if workload.exposure is ExposureType.LOAD_BALANCER and exposure.load_balancer_class:
        spec["loadBalancerClass"] = exposure.load_balancer_class
    meta = _metadata(workload, gameserver, service_name(workload.name), "service")
    if exposure.service_annotations:
        meta["annotations"] = dict(sorted(exposure.service_annotations.items()))
    return [{"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}]


def desired_install_config_map(workload: Workload, gameserver: GameServer) -> Manifest:
    """The install script, as a file the install Job mounts read-only."""
    assert workload.install is not None
    # Egg scripts often carry Windows line endings, which shells read as part of commands.
    script = workload.install.script.replace("\r\n", "\n")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(workload, gameserver, install_name(workload.name), "install"),
        "data": {INSTALL_SCRIPT_NAME: script},
    }


def desired_install_job(
    workload: Workload,
    gameserver: GameServer,
    settings: WorkloadSettings | None = None,
    request: str = "",
) -> Manifest:
    """The install step as a Job: the script from its ConfigMap (read-only), the data volume at
    `settings.install_path`, the server's limits and the same refusal of privileges.
    `request` records which reinstall request the Job answers, so a stale Job is recognised."""
    assert workload.install is not None
    settings = settings or WorkloadSettings()
    install = workload.install
    container: Manifest = {
        "name": INSTALL_CONTAINER,
        "image": install.image,
        "imagePullPolicy": "IfNotPresent",
        "command": [install.interpreter, f"{INSTALL_SCRIPT_DIR}/{INSTALL_SCRIPT_NAME}"],
        "env": _env(install.env),
        "workingDir": settings.install_path,
        "resources": _resources(workload),
        "securityContext": {**_container_security(workload), "readOnlyRootFilesystem": False},
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": settings.install_path},
            {"name": "script", "mountPath": INSTALL_SCRIPT_DIR, "readOnly": True},
        ],
    }
    pod_spec = _pod_spec_base(workload, gameserver)
    pod_spec.update(
        {
            "restartPolicy": "Never",
            "containers": [container],
            "volumes": [
                {
                    "name": DATA_VOLUME,
                    "persistentVolumeClaim": {"claimName": pvc_name(workload.name)},
                },
                {
                    "name": "script",
                    "configMap": {
                        "name": install_name(workload.name),
                        "defaultMode": 0o444,
                    },
                },
            ],
        }
    )
    meta = _metadata(workload, gameserver, install_name(workload.name), "install")
    meta["annotations"] = {ANNOTATION_INSTALL_REQUEST: request}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            # One attempt: a failed install is reported and waits for a reinstall request.
            "backoffLimit": 0,
            "activeDeadlineSeconds": install.timeout_seconds,
            "template": {
                "metadata": {"labels": child_labels(workload, "install")},
                "spec": pod_spec,
            },
        },
    }
