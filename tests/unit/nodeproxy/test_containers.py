"""The pure Workload → container translation: the whole safety policy in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.workload import Workload, build_workload
from stellarstack.nodeproxy.runtime.containers import (
    LABEL_AGENT,
    LABEL_SPEC_HASH,
    DockerSettings,
    desired_container,
    desired_install_container,
)

SETTINGS = DockerSettings(data_root=Path("/srv/stellarstack"), agent_id="node-a")


def workload(blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any]) -> Workload:
    return build_workload(
        GameServer.model_validate(gameserver_doc), Blueprint.model_validate(blueprint_doc)
    )


def test_container_settings(blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any]) -> None:
    create = desired_container(workload(blueprint_doc, gameserver_doc), SETTINGS)
    assert create["name"] == "stellarstack-games-toy-1"
    assert create["entrypoint"] == ["toy-server"]
    assert create["command"] == ["--name", "My toy", "--port", "7777"]
    assert create["user"] == "1000:1000"
    assert create["ports"] == {
        "7777/tcp": ("0.0.0.0", 7777),
        "7777/udp": ("0.0.0.0", 7777),
        "7778/udp": ("0.0.0.0", 27015),
    }
    assert create["volumes"] == {
        "/srv/stellarstack/games/toy-1": {"bind": "/home/container", "mode": "rw"}
    }
    assert (create["mem_limit"], create["memswap_limit"]) == (512 * 2**20, 512 * 2**20)
    assert create["nano_cpus"] == 500_000_000
    assert create["pids_limit"] == 128
    assert create["labels"][LABEL_AGENT] == "node-a"
    assert create["detach"] is True
    assert create["stdin_open"] is True


@pytest.mark.parametrize(
    ("ports", "node_address", "bindings"),
    [
        pytest.param(
            [
                {"name": "game", "port": 7777, "protocol": "TCP", "hostPort": 3979},
                {"name": "query", "port": 7778, "protocol": "UDP", "hostPort": 3979},
            ],
            "127.0.0.1",
            {"7777/tcp": ("127.0.0.1", 3979), "7778/udp": ("127.0.0.1", 3979)},
            id="no-address-uses-the-node-publish-address",
        ),
        pytest.param(
            [
                {"name": "game", "port": 7777, "protocol": "TCP", "hostPort": 30001},
                {"name": "query", "port": 7778, "protocol": "UDP", "hostPort": 30001},
            ],
            "0.0.0.0",
            {"7777/tcp": ("0.0.0.0", 30001), "7778/udp": ("0.0.0.0", 30001)},
            id="no-address-on-a-node-publishing-everywhere",
        ),
        pytest.param(
            [
                {"name": "game", "port": 7777, "protocol": "TCPUDP", "hostIP": "127.0.0.2"},
                {
                    "name": "query",
                    "port": 7778,
                    "protocol": "UDP",
                    "hostPort": 30002,
                    "hostIP": "2001:db8::0:7",
                },
                {"name": "admin", "port": 8080, "protocol": "TCP", "hostIP": "0.0.0.0"},
            ],
            "127.0.0.1",
            {
                "7777/tcp": ("127.0.0.2", 7777),
                "7777/udp": ("127.0.0.2", 7777),
                "7778/udp": ("2001:db8::7", 30002),
                "8080/tcp": ("0.0.0.0", 8080),
            },
            id="each-port-on-its-own-address",
        ),
    ],
)
def test_ports_are_published_on_their_allocation_address(
    blueprint_doc: dict[str, Any],
    gameserver_doc: dict[str, Any],
    ports: list[dict[str, Any]],
    node_address: str,
    bindings: dict[str, tuple[str, int]],
) -> None:
    gameserver_doc["spec"]["ports"] = ports
    settings = DockerSettings(
        data_root=Path("/srv/stellarstack"), agent_id="node-a", bind_address=node_address
    )
    assert desired_container(workload(blueprint_doc, gameserver_doc), settings)["ports"] == bindings


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("privileged", False),
        ("cap_drop", ["ALL"]),
        ("security_opt", ["no-new-privileges"]),
        ("network_mode", "bridge"),
        ("init", True),
    ],
)
def test_no_privileges_for_server_or_install(
    blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any], key: str, value: object
) -> None:
    plan = workload(blueprint_doc, gameserver_doc)
    for create in (
        desired_container(plan, SETTINGS),
        desired_install_container(plan, SETTINGS, Path("/srv/state/install.sh")),
    ):
        assert create[key] == value
        assert not {"cap_add", "pid_mode", "devices", "ipc_mode"} & set(create)


def test_install_mounts_only_the_data_and_the_script(
    blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any]
) -> None:
    create = desired_install_container(
        workload(blueprint_doc, gameserver_doc), SETTINGS, Path("/srv/state/install/install.sh")
    )
    assert create["volumes"] == {
        "/srv/stellarstack/games/toy-1": {"bind": "/mnt/server", "mode": "rw"},
        "/srv/state/install": {"bind": "/mnt/install", "mode": "ro"},
    }
    assert create["entrypoint"] == ["bash", "/mnt/install/install.sh"]


def test_spec_hash_follows_the_settings(
    blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any]
) -> None:
    first = desired_container(workload(blueprint_doc, gameserver_doc), SETTINGS)
    again = desired_container(workload(blueprint_doc, gameserver_doc), SETTINGS)
    assert first["labels"][LABEL_SPEC_HASH] == again["labels"][LABEL_SPEC_HASH]
    gameserver_doc["spec"]["variables"]["SERVER_NAME"] = "renamed"
    changed = desired_container(workload(blueprint_doc, gameserver_doc), SETTINGS)
    assert changed["labels"][LABEL_SPEC_HASH] != first["labels"][LABEL_SPEC_HASH]
