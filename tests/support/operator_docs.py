"""A small toy Blueprint and GameServer that the operator's unit tests bend one way each."""

from __future__ import annotations

from typing import Any

BLUEPRINT: dict[str, Any] = {
    "kind": "Blueprint",
    "metadata": {"name": "toy"},
    "spec": {
        "displayName": "Toy",
        "images": [{"name": "Toy", "image": "localhost/stellarstack/toy:1"}],
        "startupCommands": [{"name": "Default", "command": "/usr/local/bin/toy"}],
        "variables": [{"env": "TOY_NAME", "name": "Name", "default": "toy"}],
        "stop": {"type": "Command", "command": "stop", "gracePeriodSeconds": 10},
        "readiness": {"consolePatterns": ["ready name="]},
        "install": {
            "image": "localhost/stellarstack/toy:1",
            "entrypoint": "sh",
            "script": "set -e\r\necho installed > /mnt/server/installed.txt\r\n",
        },
    },
}

GAMESERVER: dict[str, Any] = {
    "kind": "GameServer",
    "metadata": {"name": "toy-1", "namespace": "games", "uid": "0000-1111", "generation": 1},
    "spec": {
        "blueprint": "toy",
        "resources": {"cpu": "500m", "memory": "128Mi", "disk": "1Gi"},
        "ports": [
            {"name": "status", "port": 7777, "protocol": "TCP", "hostPort": 30777},
            {"name": "query", "port": 7778, "protocol": "UDP"},
        ],
    },
}
