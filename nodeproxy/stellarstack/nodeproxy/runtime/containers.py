"""Pure translation of a `Workload` into Docker container settings (no Docker SDK here).

Everything that makes a container safe is decided in this one function, so a test can read the
whole policy: no privileges, every capability dropped, no new privileges, a non-root user, an
init process, limits on memory, swap, CPU and processes, and no mount but the server's own data
directory.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stellarstack.api.runtime import ServerKey
from stellarstack.api.workload import Workload, WorkloadSettings

LABEL_AGENT = "stellarstack.io/agent"
LABEL_NAMESPACE = "stellarstack.io/namespace"
LABEL_SPEC_HASH = "stellarstack.io/spec-hash"
LABEL_ROLE = "stellarstack.io/role"

# Docker's json-file logs are the console backlog's source; cap them so a chatty server cannot
# fill the node's disk.
LOG_OPTIONS = {"max-size": "10m", "max-file": "3"}


@dataclass(frozen=True)
class DockerSettings:
    """Node-wide settings of the Docker runtime."""

    data_root: Path
    """Directory that holds one data directory per server."""
    agent_id: str
    """Labels every container this agent owns, so it re-adopts exactly its own."""
    bind_address: str = "0.0.0.0"
    """Host address a port is published on when its GameServer names none (`hostIP`)."""
    workload: WorkloadSettings = field(default_factory=WorkloadSettings)

    def data_dir(self, key: ServerKey) -> Path:
        """The server's data directory (namespace and name are DNS labels, safe as paths)."""
        return self.data_root / key.namespace / key.name

    def state_dir(self, key: ServerKey) -> Path:
        """Agent-private files of a server (install script and log), outside its data."""
        return self.data_root / ".state" / key.namespace / key.name


def container_name(key: ServerKey, role: str = "server") -> str:
    """Docker name of a server's container (`role` "install" for the install step)."""
    suffix = "" if role == "server" else f"-{role}"
    return f"stellarstack-{key.namespace}-{key.name}{suffix}"


def key_of(workload: Workload) -> ServerKey:
    """The server a workload belongs to (Docker nodes put unnamespaced servers in `default`)."""
    return ServerKey(workload.namespace or "default", workload.name)


def desired_container(workload: Workload, settings: DockerSettings) -> dict[str, Any]:
    """Keyword arguments for `containers.create` that run `workload` as its game server."""
    key = key_of(workload)
    user = f"{workload.run_as_user}:{workload.run_as_group}"
    labels = {
        **workload.labels,
        LABEL_AGENT: settings.agent_id,
        LABEL_NAMESPACE: key.namespace,
        LABEL_ROLE: "server",
    }
    ports = port_bindings(workload, settings)
    memory = workload.limits.memory_bytes
    create: dict[str, Any] = {
        "image": workload.image,
        "name": container_name(key),
        "entrypoint": [workload.argv[0]],
        "command": list(workload.argv[1:]),
        "environment": dict(workload.env),
        "working_dir": settings.workload.data_path,
        "user": user,
        "labels": labels,
        "ports": ports,
        "volumes": {
            str(settings.data_dir(key)): {"bind": settings.workload.data_path, "mode": "rw"}
        },
        # detach=True keeps StdinOnce off: otherwise the first console client to leave would
        # close the game's stdin for good.
        "detach": True,
        "stdin_open": True,
        "tty": False,
        "init": True,
        "privileged": False,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": memory,
        "memswap_limit": memory + workload.limits.swap_bytes,
        "nano_cpus": workload.limits.cpu_millicores * 1_000_000,
        "pids_limit": workload.limits.pids,
        "read_only": workload.read_only_root_filesystem,
        "tmpfs": {"/tmp": "rw,nosuid,nodev,size=256m"}
        if workload.read_only_root_filesystem
        else {},
        "log_config": {"type": "json-file", "config": LOG_OPTIONS},
        "network_mode": "bridge",
        "stop_signal": workload.stop.signal.value,
    }
    create["labels"][LABEL_SPEC_HASH] = spec_hash(create)
    return create


def port_bindings(workload: Workload, settings: DockerSettings) -> dict[str, tuple[str, int]]:
    """Docker's `ports` argument: each container port and protocol published on its own host
    address (the allocation's IP the panel wrote as `hostIP`), or on the node's publish
    address when the GameServer names none; never on every address unless asked to."""
    return {
        f"{port.container_port}/{port.protocol.lower()}": (
            port.host_ip or settings.bind_address,
            port.host_port,
        )
        for port in workload.ports
    }


def desired_install_container(
    workload: Workload, settings: DockerSettings, script_path: Path
) -> dict[str, Any]:
    """Keyword arguments for the install step's container: the same limits and the same
    refusal of privileges; the data directory at the install path, the script read-only."""
    assert workload.install is not None
    key = key_of(workload)
    install = workload.install
    memory = workload.limits.memory_bytes
    return {
        "image": install.image,
        "name": container_name(key, "install"),
        "entrypoint": [install.interpreter, "/mnt/install/install.sh"],
        "command": [],
        "environment": dict(install.env),
        "working_dir": settings.workload.install_path,
        "user": f"{workload.run_as_user}:{workload.run_as_group}",
        "labels": {
            **workload.labels,
            LABEL_AGENT: settings.agent_id,
            LABEL_NAMESPACE: key.namespace,
            LABEL_ROLE: "install",
        },
        "volumes": {
            str(settings.data_dir(key)): {"bind": settings.workload.install_path, "mode": "rw"},
            str(script_path.parent): {"bind": "/mnt/install", "mode": "ro"},
        },
        "detach": True,
        "init": True,
        "privileged": False,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": memory,
        "memswap_limit": memory + workload.limits.swap_bytes,
        "nano_cpus": workload.limits.cpu_millicores * 1_000_000,
        "pids_limit": workload.limits.pids,
        "log_config": {"type": "json-file", "config": LOG_OPTIONS},
        "network_mode": "bridge",
    }


def spec_hash(create: dict[str, Any]) -> str:
    """A digest of the container settings, to tell whether an existing container is current."""
    relevant = {k: v for k, v in create.items() if k != "labels"}
    relevant["labels"] = {k: v for k, v in create["labels"].items() if k != LABEL_SPEC_HASH}
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
