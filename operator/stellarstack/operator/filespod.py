"""Pure builders and decisions for a GameServer's files service on Kubernetes.

Owners edit configs mostly while their server is stopped, and a stopped GameServer has no
game Pod (see `builders`), so a sidecar in the game Pod could not serve them. The files live
in a small Pod of their own instead, `<name>-files`, made on demand: it runs while the
GameServer carries a recent `stellarstack.io/files-requested-at` (an RFC 3339 time the panel
bumps whenever someone uses the file manager) and is removed once that is older than the idle
timeout. It mounts the same data volume and runs `stellarstack nodeproxy files`, the node
API's files routes and SFTP for this one server, behind a ClusterIP Service `<name>-files`.
Its SSH host key lives in a Secret `<name>-files-ssh` made once, so the key (and the
fingerprint clients remember) outlives the on-demand Pods.

No Kubernetes client here (an import-linter contract keeps it so); `filesreconcile` applies
what these functions decide.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.constants import API_VERSION, LABEL_COMPONENT, LABEL_GAMESERVER
from stellarstack.api.gameserver import GameServer, PlacementType
from stellarstack.api.states import GameServerState
from stellarstack.api.workload import WorkloadSettings, workload_labels
from stellarstack.operator.builders import owner_reference, pvc_name

Manifest = dict[str, Any]

ANNOTATION_FILES_REQUESTED = "stellarstack.io/files-requested-at"
"""When the files were last asked for (RFC 3339); the panel sets it, the operator reads it."""
ANNOTATION_FILES_CONFIG = "stellarstack.io/files-config"
"""On the files Pod: a digest of the ConfigMap it started with, so a change restarts it."""
ANNOTATION_SELECTED_NODE = "volume.kubernetes.io/selected-node"
"""Set on a PVC by the scheduler when a node-local volume was bound for its first Pod."""
COMPONENT = "files"
CONTAINER = "files"
PORT = 8080
PORT_NAME = "http"
SFTP_PORT = 2022
SFTP_PORT_NAME = "sftp"
SSH_DIR = "/etc/stellarstack/ssh"
HOST_KEY_ITEM = "ssh_host_ed25519_key"
DATA_PATH = "/data"
CONFIG_DIR = "/etc/stellarstack/files"
RESOURCES_FILE = "server.yaml"
PUBLIC_KEY_FILE = "panel-public-key.pem"
# Scratch space for the web server; uploads go to a temporary file inside the volume itself.
TMP_SIZE_LIMIT = "64Mi"
# Not while these run: they own the volume's content (an install script or a restore writes
# it wholesale), and edits made meanwhile would be lost or half-applied.
_EXCLUSIVE_STATES = {GameServerState.INSTALLING, GameServerState.RESTORING}


def _default_image() -> str:
    try:
        tag = version("stellarstack")
    except PackageNotFoundError:  # run from a source tree without installing
        tag = "dev"
    return f"localhost/stellarstack/stellarstack:{tag}"


class FilesSettings(BaseSettings):
    """The files service, from `STELLARSTACK_OPERATOR_FILES_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="STELLARSTACK_OPERATOR_FILES_", extra="forbid")

    public_key_config_map: str | None = Field(default=None, pattern=r"^[a-z0-9-]+/[a-z0-9.-]+$")
    """`namespace/name` of the ConfigMap holding the panel's Ed25519 public key (PEM). Unset:
    no files service (requests are answered with a Warning Event)."""
    public_key_item: str = "panel-public-key.pem"
    """The key of that ConfigMap's `data` that holds the PEM."""
    image: str = Field(default_factory=_default_image, min_length=1)
    """The StellarStack image the files Pod runs (the operator's own image)."""
    idle_timeout_seconds: int = Field(default=900, ge=5, le=7 * 86400)
    """How long after the last request the files Pod is removed."""
    audience: str = Field(default="kubernetes", min_length=1, max_length=253)
    """The audience server tokens for files services must carry."""
    cpu: str = "250m"
    memory: str = "256Mi"

    @property
    def idle_timeout(self) -> timedelta:
        return timedelta(seconds=self.idle_timeout_seconds)


def files_name(gameserver_name: str) -> str:
    """Name of the files Pod, its Service and its ConfigMap."""
    return f"{gameserver_name}-files"


def host_key_secret_name(gameserver_name: str) -> str:
    """The Secret with the files service's SSH host key."""
    return f"{gameserver_name}-files-ssh"


def files_labels(gameserver: GameServer) -> dict[str, str]:
    return {**workload_labels(gameserver), LABEL_COMPONENT: COMPONENT}


def is_files_object(obj: Manifest | None, gameserver_name: str) -> bool:
    """Whether an existing object is this GameServer's files Pod/Service/ConfigMap (and not,
    say, the game Pod of another GameServer that happens to be called `<name>-files`)."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return bool(
        labels.get(LABEL_GAMESERVER) == gameserver_name and labels.get(LABEL_COMPONENT) == COMPONENT
    )


# -- the decision ------------------------------------------------------------------------------


class FilesAction(StrEnum):
    RUN = "Run"
    """The files Pod and Service should exist."""
    REMOVE = "Remove"
    """They should not (idle, never asked for, or the server is busy with its volume)."""


@dataclass(frozen=True)
class FilesPlan:
    action: FilesAction
    reason: str
    """Why, in words for a log line or an Event."""
    problem: bool = False
    """The request itself is wrong (worth a Warning Event), not just idle."""


def parse_requested_at(value: str) -> datetime | None:
    """An RFC 3339 time with an offset (`Z` included); None when it is not one."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def compute_files_plan(
    gameserver: GameServer, *, now: datetime, idle_timeout: timedelta, deleting: bool = False
) -> FilesPlan:
    """Whether the files service of a GameServer should run now."""
    if deleting:
        return FilesPlan(FilesAction.REMOVE, "the GameServer is being deleted")
    requested = (gameserver.metadata.annotations or {}).get(ANNOTATION_FILES_REQUESTED)
    if requested is None:
        return FilesPlan(FilesAction.REMOVE, "no files request")
    when = parse_requested_at(requested)
    if when is None:
        return FilesPlan(
            FilesAction.REMOVE,
            f"metadata.annotations[{ANNOTATION_FILES_REQUESTED}]: {requested[:64]!r} is not "
            "an RFC 3339 time with an offset (e.g. 2025-01-31T12:00:00Z)",
            problem=True,
        )
    if gameserver.spec.suspended:
        return FilesPlan(FilesAction.REMOVE, "the server is suspended")
    state = gameserver.status.state if gameserver.status else GameServerState.PENDING
    if state in _EXCLUSIVE_STATES:
        return FilesPlan(FilesAction.REMOVE, f"no file access while {state.value}")
    # A request stamped ahead of the operator's clock counts as "now", not as "for a long time".
    idle = max(now - when, timedelta(0))
    if idle >= idle_timeout:
        return FilesPlan(FilesAction.REMOVE, f"idle for {int(idle.total_seconds())} s")
    return FilesPlan(FilesAction.RUN, "requested")


def compute_files_node(
    gameserver: GameServer, game_pod: Manifest | None, pvc: Manifest | None
) -> str | None:
    """The node the files Pod must run on, when one is known: where the game Pod runs or ran
    (a ReadWriteOnce volume is attached there), else where the scheduler bound a node-local
    volume, else the GameServer's pinned node."""
    node = ((game_pod or {}).get("spec") or {}).get("nodeName")
    if node:
        return str(node)
    selected = (((pvc or {}).get("metadata") or {}).get("annotations") or {}).get(
        ANNOTATION_SELECTED_NODE
    )
    if selected:
        return str(selected)
    placement = gameserver.spec.placement
    if placement.type is PlacementType.KUBERNETES and placement.node:
        return placement.node
    return None


# -- the objects -------------------------------------------------------------------------------


def _metadata(gameserver: GameServer) -> Manifest:
    return {
        "name": files_name(gameserver.metadata.name or ""),
        "namespace": gameserver.metadata.namespace or "default",
        "labels": files_labels(gameserver),
        "ownerReferences": [owner_reference(gameserver)],
    }


def files_resources_document(gameserver: GameServer, blueprint: Blueprint) -> str:
    """What the files service needs of the two resources, as YAML: the GameServer reduced to
    its name, blueprint and resources (its variables may hold secrets and are no business of
    the file manager), and the Blueprint (its deny-list)."""
    wire = gameserver.to_wire()
    reduced = {
        "apiVersion": API_VERSION,
        "kind": "GameServer",
        "metadata": {"name": gameserver.metadata.name, "namespace": gameserver.metadata.namespace},
        "spec": {"blueprint": wire["spec"]["blueprint"], "resources": wire["spec"]["resources"]},
    }
    blueprint_wire = blueprint.to_wire()
    blueprint_wire.pop("status", None)
    blueprint_wire["metadata"] = {"name": blueprint.metadata.name}
    return yaml.safe_dump_all([reduced, blueprint_wire], sort_keys=True)


def desired_files_config_map(
    gameserver: GameServer, blueprint: Blueprint, public_key_pem: str
) -> Manifest:
    """The files Pod's inputs: the two resources and the panel's public key (not a secret)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(gameserver),
        "data": {
            RESOURCES_FILE: files_resources_document(gameserver, blueprint),
            PUBLIC_KEY_FILE: public_key_pem,
        },
    }


def desired_host_key_secret(gameserver: GameServer, private_key_openssh: str) -> Manifest:
    """The SFTP host key, made once per GameServer (the operator only ever creates it, and
    garbage collection removes it with the GameServer)."""
    meta = _metadata(gameserver)
    meta["name"] = host_key_secret_name(gameserver.metadata.name or "")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "stringData": {HOST_KEY_ITEM: private_key_openssh},
    }


def files_config_digest(config_map: Manifest) -> str:
    """A digest of a ConfigMap's data: the files Pod records the one it started with."""
    data = json.dumps(config_map.get("data") or {}, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def desired_files_pod(
    gameserver: GameServer,
    settings: FilesSettings,
    workload: WorkloadSettings,
    *,
    config_digest: str,
    node: str | None,
) -> Manifest:
    """The files Pod: `stellarstack nodeproxy files` over the data volume, as the game's own
    user (so what it writes belongs to the game), with the restricted security profile."""
    namespace = gameserver.metadata.namespace or "default"
    name = gameserver.metadata.name or ""
    resources = {"cpu": settings.cpu, "memory": settings.memory}
    container: Manifest = {
        "name": CONTAINER,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "stellarstack",
            "nodeproxy",
            "files",
            "--root",
            DATA_PATH,
            "--server",
            f"{namespace}/{name}",
            "--resources",
            f"{CONFIG_DIR}/{RESOURCES_FILE}",
            "--public-key-file",
            f"{CONFIG_DIR}/{PUBLIC_KEY_FILE}",
            "--audience",
            settings.audience,
            "--listen",
            f"0.0.0.0:{PORT}",
            "--sftp-listen",
            f"0.0.0.0:{SFTP_PORT}",
            "--sftp-host-key",
            f"{SSH_DIR}/{HOST_KEY_ITEM}",
        ],
        "ports": [
            {"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"},
            {"name": SFTP_PORT_NAME, "containerPort": SFTP_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/healthz", "port": PORT},
            "periodSeconds": 2,
            "failureThreshold": 3,
        },
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": workload.run_as_user,
            "runAsGroup": workload.run_as_group,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_PATH},
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "ssh", "mountPath": SSH_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    spec: Manifest = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        # The service itself is long-lived while requested; the kubelet restarts it if it dies.
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 10,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": workload.run_as_user,
            "runAsGroup": workload.run_as_group,
            "fsGroup": workload.run_as_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": pvc_name(name)}},
            {
                "name": "config",
                "configMap": {"name": files_name(name), "defaultMode": 0o444},
            },
            {
                "name": "ssh",
                "secret": {
                    "secretName": host_key_secret_name(name),
                    "items": [{"key": HOST_KEY_ITEM, "path": HOST_KEY_ITEM}],
                    "defaultMode": 0o400,
                },
            },
            {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}},
        ],
    }
    if node:
        # The volume is ReadWriteOnce (and node-local here): the files Pod must share the
        # game's node. Required, not preferred: elsewhere it could never mount the volume.
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [node],
                                }
                            ]
                        }
                    ]
                }
            }
        }
    meta = _metadata(gameserver)
    meta["annotations"] = {ANNOTATION_FILES_CONFIG: config_digest}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def desired_files_service(gameserver: GameServer) -> Manifest:
    """ClusterIP only: the panel reaches the HTTP API through the API server's service proxy
    (or from inside the cluster at its cluster IP); SFTP is reachable inside the cluster."""
    name = gameserver.metadata.name or ""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(gameserver),
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_GAMESERVER: name, LABEL_COMPONENT: COMPONENT},
            "ports": [
                {"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"},
                {
                    "name": SFTP_PORT_NAME,
                    "port": SFTP_PORT,
                    "targetPort": SFTP_PORT_NAME,
                    "protocol": "TCP",
                },
            ],
        },
    }
