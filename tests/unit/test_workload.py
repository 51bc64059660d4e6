from __future__ import annotations

from typing import Any

import pytest

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.workload import (
    WorkloadError,
    WorkloadPort,
    WorkloadSettings,
    build_workload,
)


def build(bp: dict[str, Any], gs: dict[str, Any], **settings: Any) -> Any:
    return build_workload(
        GameServer.model_validate(gs), Blueprint.model_validate(bp), WorkloadSettings(**settings)
    )


def test_workload_from_gameserver_and_blueprint(
    blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any]
) -> None:
    workload = build(blueprint_doc, gameserver_doc)
    assert workload.image == "localhost/stellarstack/toy:1"
    assert workload.argv == ("toy-server", "--name", "My toy", "--port", "7777")
    assert not workload.uses_shell
    assert workload.env["SERVER_PORT"] == "7777"
    assert workload.env["SERVER_MEMORY"] == "512"
    assert workload.env["MAX_PLAYERS"] == "8"
    assert workload.env["SERVER_UUID"] == "1234"
    assert workload.ports == (
        WorkloadPort("game", "TCP", 7777, 7777, None),
        WorkloadPort("game", "UDP", 7777, 7777, None),
        WorkloadPort("query", "UDP", 7778, 27015, None),
    )
    assert workload.limits.cpu_millicores == 500
    assert workload.limits.memory_bytes == 512 * 2**20
    assert workload.limits.pids == 128
    assert workload.volume.size_bytes == 2**30
    assert workload.run_as_user == 1000
    assert workload.install is not None
    assert workload.install.env["SERVER_NAME"] == "My toy"
    edits = workload.config_files[0].edits
    assert [(e.key, e.value) for e in edits] == [("server-port", "7777"), ("players", "8")]
    assert workload.labels["stellarstack.io/gameserver"] == "toy-1"
    assert workload.stop.command == "stop"


def test_image_and_startup_command_by_label(
    blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any]
) -> None:
    gameserver_doc["spec"].update(image="Toy debug", startupCommand="Verbose")
    workload = build(blueprint_doc, gameserver_doc)
    assert workload.image == "localhost/stellarstack/toy:debug"
    assert workload.argv == ("toy-server", "-v", "--name", "My toy")


def test_builtins_cannot_be_overridden_by_variables(
    blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any]
) -> None:
    workload = build(blueprint_doc, gameserver_doc, server_ip="0.0.0.0")
    assert workload.env["SERVER_IP"] == "0.0.0.0"


def test_every_problem_is_reported_with_its_field(
    blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any]
) -> None:
    gameserver_doc["spec"].update(
        image="nope", startupCommand="nope", variables={"MAX_PLAYERS": "1000", "EXTRA": "1"}
    )
    gameserver_doc["spec"]["ports"] = []
    with pytest.raises(WorkloadError) as caught:
        build(blueprint_doc, gameserver_doc)
    assert caught.value.problems == [
        "spec.variables.EXTRA: the blueprint has no variable EXTRA",
        "spec.variables.MAX_PLAYERS: must be at most 64",
        "spec.image: 'nope' is not one of the blueprint's images",
        "spec.startupCommand: 'nope' is not one of the blueprint's",
        "spec.ports: the blueprint's startup uses SERVER_PORT; add a port",
        "spec.startupCommand: no value for placeholder(s): SERVER_PORT",
    ]


def test_readiness_probe_resolves_the_port(
    blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any]
) -> None:
    blueprint_doc["spec"]["readiness"] = {
        "probe": {"type": "udp", "port": "query", "payloadHex": "0034"}
    }
    workload = build(blueprint_doc, gameserver_doc)
    assert workload.probe is not None
    assert (workload.probe.type, workload.probe.container_port, workload.probe.payload) == (
        "udp",
        7778,
        b"\x00\x34",
    )
    # A blueprint with default ports refuses a probe of a port it does not declare itself;
    # without them, the workload finds the GameServer has no such port.
    blueprint_doc["spec"]["ports"] = []
    blueprint_doc["spec"]["readiness"] = {"probe": {"type": "tcp", "port": "rcon"}}
    with pytest.raises(WorkloadError, match="no port 'rcon'"):
        build(blueprint_doc, gameserver_doc)


def test_shell_startup_keeps_values_out_of_the_script(
    blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any]
) -> None:
    blueprint_doc["spec"]["startupCommands"][0]["command"] = "./setup && ./srv {{SERVER_NAME}}"
    gameserver_doc["spec"]["variables"]["SERVER_NAME"] = "x; reboot"
    workload = build(blueprint_doc, gameserver_doc)
    assert workload.uses_shell
    assert workload.argv == ("/bin/sh", "-c", './setup && ./srv "${SERVER_NAME}"')
    assert workload.env["SERVER_NAME"] == "x; reboot"


def test_root_is_refused() -> None:
    with pytest.raises(ValueError, match="never run as root"):
        WorkloadSettings(run_as_user=0)
