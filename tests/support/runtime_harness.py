"""The harness the runtime contract suite (tests/contract) drives every runtime through."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.runtime import GameServerRuntime, ServerKey
from stellarstack.api.workload import Workload, build_workload

TOY_BLUEPRINT: dict[str, Any] = {
    "kind": "Blueprint",
    "metadata": {"name": "toy"},
    "spec": {
        "displayName": "Toy",
        "images": [{"name": "Toy", "image": "localhost/stellarstack/toy:1"}],
        "startupCommands": [{"name": "Default", "command": "/usr/local/bin/toy"}],
        "variables": [
            {"env": "TOY_NAME", "name": "Name", "default": "toy", "userEditable": True},
            {"env": "TOY_DATA", "name": "Data", "default": "/home/container"},
            {"env": "TOY_TCP_PORT", "name": "TCP port", "default": "7777"},
            {"env": "TOY_UDP_PORT", "name": "UDP port", "default": "7778"},
        ],
        "stop": {"type": "Command", "command": "stop", "gracePeriodSeconds": 10},
        "readiness": {"consolePatterns": ["ready name="]},
        "install": {
            "image": "localhost/stellarstack/toy:1",
            "entrypoint": "sh",
            "script": "set -e\necho installing\necho installed > /mnt/server/installed.txt\n",
        },
    },
}


def free_port() -> int:
    """A TCP port free on loopback right now (and, for these tests, its UDP twin too)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RuntimeHarness:
    """A runtime under test and helpers to describe servers for it."""

    runtime: GameServerRuntime
    namespace: str
    data_dir: Callable[[ServerKey], Path]
    created: list[ServerKey]

    def workload(self, *, name: str | None = None, **spec: Any) -> Workload:
        """A toy server workload with published loopback ports; `spec` overrides GameServer
        spec fields, `blueprint_spec` overrides blueprint spec fields."""
        blueprint_doc: dict[str, Any] = {
            **TOY_BLUEPRINT,
            "spec": {**TOY_BLUEPRINT["spec"], **spec.pop("blueprint_spec", {})},
        }
        tcp = free_port()
        server_name = name or f"toy-{uuid.uuid4().hex[:8]}"
        gameserver = GameServer.model_validate(
            {
                "kind": "GameServer",
                "metadata": {"name": server_name, "namespace": self.namespace},
                "spec": {
                    "blueprint": "toy",
                    "resources": {"cpu": "500m", "memory": "128Mi", "disk": "1Gi", "pids": 64},
                    "ports": [
                        {"name": "status", "port": 7777, "protocol": "TCP", "hostPort": tcp},
                        {"name": "query", "port": 7778, "protocol": "UDP", "hostPort": tcp},
                    ],
                    **spec,
                },
            }
        )
        workload = build_workload(gameserver, Blueprint.model_validate(blueprint_doc))
        key = ServerKey(self.namespace, server_name)
        if key not in self.created:
            self.created.append(key)
        return workload
