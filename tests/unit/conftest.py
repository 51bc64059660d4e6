"""Shared builders for unit tests: small valid documents that each test bends one way."""

from __future__ import annotations

import copy
from typing import Any

import pytest

TOY_BLUEPRINT: dict[str, Any] = {
    "apiVersion": "stellarstack.io/v1alpha1",
    "kind": "Blueprint",
    "metadata": {"name": "toy"},
    "spec": {
        "displayName": "Toy server",
        "images": [
            {"name": "Toy", "image": "localhost/stellarstack/toy:1"},
            {"name": "Toy debug", "image": "localhost/stellarstack/toy:debug"},
        ],
        "startupCommands": [
            {
                "name": "Default",
                "command": "toy-server --name {{SERVER_NAME}} --port {{SERVER_PORT}}",
            },
            {"name": "Verbose", "command": "toy-server -v --name {{SERVER_NAME}}"},
        ],
        "variables": [
            {
                "env": "SERVER_NAME",
                "name": "Server name",
                "default": "Toy",
                "userEditable": True,
                "rules": {"required": True, "max": 40},
            },
            {
                "env": "MAX_PLAYERS",
                "name": "Max players",
                "default": "8",
                "rules": {"required": True, "type": "integer", "min": 1, "max": 64},
            },
        ],
        "ports": [
            {
                "name": "game",
                "port": 7777,
                "protocol": "TCPUDP",
                "primary": True,
                "variable": "SERVER_PORT",
            },
            {"name": "query", "port": 7778, "protocol": "UDP"},
        ],
        "stop": {"type": "Command", "command": "stop", "gracePeriodSeconds": 20},
        "readiness": {"consolePatterns": ["ready"]},
        "configFiles": [
            {
                "path": "config/toy.properties",
                "parser": "properties",
                "edits": [
                    {"key": "server-port", "value": "{{SERVER_PORT}}"},
                    {"key": "players", "value": "{{MAX_PLAYERS}}"},
                ],
            }
        ],
        "install": {"image": "localhost/stellarstack/debian:bookworm", "script": "echo hi"},
        "fileDenylist": ["*.secret"],
    },
}

TOY_GAMESERVER: dict[str, Any] = {
    "apiVersion": "stellarstack.io/v1alpha1",
    "kind": "GameServer",
    "metadata": {"name": "toy-1", "namespace": "games", "uid": "1234"},
    "spec": {
        "blueprint": "toy",
        "variables": {"SERVER_NAME": "My toy"},
        "resources": {"cpu": "500m", "memory": "512Mi", "disk": "1Gi", "pids": 128},
        "ports": [
            {"name": "game", "port": 7777, "protocol": "TCPUDP"},
            {"name": "query", "port": 7778, "protocol": "UDP", "hostPort": 27015},
        ],
    },
}


@pytest.fixture
def blueprint_doc() -> dict[str, Any]:
    """A fresh, valid Blueprint document to modify."""
    return copy.deepcopy(TOY_BLUEPRINT)


@pytest.fixture
def gameserver_doc() -> dict[str, Any]:
    """A fresh, valid GameServer document to modify."""
    return copy.deepcopy(TOY_GAMESERVER)
