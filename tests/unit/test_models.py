"""Validation of the four kinds: defaults, bounds, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stellarstack.api.backup import Backup
from stellarstack.api.blueprint import Blueprint, VariableRules, check_variable_values
from stellarstack.api.gameserver import GameServer
from stellarstack.api.schedule import Schedule


def errors_of(model: type[Any], document: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(document)
    return str(caught.value)


def test_valid_documents(blueprint_doc: dict[str, Any], gameserver_doc: dict[str, Any]) -> None:
    blueprint = Blueprint.model_validate(blueprint_doc)
    gameserver = GameServer.model_validate(gameserver_doc)
    assert blueprint.spec.stop.command == "stop"
    assert gameserver.spec.power.state == "Running"
    assert gameserver.spec.exposure.type == "HostPort"
    # The wire form uses camelCase and re-validates to the same object.
    wire = gameserver.to_wire()
    assert "crashPolicy" in wire["spec"]
    assert GameServer.model_validate(wire) == gameserver


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["spec"]["ports"][0].update(port=0), "spec.ports.0.port"),
        (lambda d: d["spec"]["ports"][0].update(port=70000), "less than or equal to 65535"),
        (lambda d: d["spec"]["ports"][0].update(protocol="SCTP"), "spec.ports.0.protocol"),
        (
            lambda d: d["spec"]["ports"].append({"name": "dup", "port": 7777, "protocol": "UDP"}),
            "UDP 7777 is already used by port game",
        ),
        (
            lambda d: d["spec"]["ports"].append({"name": "game", "port": 1, "protocol": "UDP"}),
            "ports[2].name: game is used twice",
        ),
        (
            lambda d: d["spec"]["ports"].append({"name": "pub", "port": 2, "hostPort": 27015}),
            "UDP 27015 is already published",
        ),
        (lambda d: d["spec"]["resources"].update(memory="-1Gi"), "outside 64Mi..1Ti"),
        (lambda d: d["spec"]["resources"].update(memory="lots"), "not a Kubernetes quantity"),
        (lambda d: d["spec"]["resources"].update(cpu="5000"), "outside 10m..256 cores"),
        (lambda d: d["spec"]["resources"].update(disk="10Mi"), "outside 100Mi..64Ti"),
        (lambda d: d["spec"]["resources"].update(pids=1), "spec.resources.pids"),
        (lambda d: d["spec"].update(memroy="1Gi"), "memroy"),
        (lambda d: d["spec"].update(blueprint="Bad_Name"), "spec.blueprint"),
        (lambda d: d["metadata"].update(name="x" * 300), "at most 45 characters"),
        (lambda d: d["metadata"].update(name="1abc"), "starting with a letter"),
        (lambda d: d["metadata"].update(name="Upper"), "metadata.name"),
        (lambda d: d["metadata"].pop("name"), "metadata.name: a name is required"),
        (lambda d: d["spec"].update(placement={"type": "DockerNode"}), "node: required"),
        (lambda d: d.update(kind="Pod"), "kind"),
        (lambda d: d.update(apiVersion="v1"), "apiVersion"),
        (
            lambda d: d["spec"]["ports"][0].update(hostIP="localhost"),
            "spec.ports.0.hostIP\n  Value error, 'localhost' is not an IP address",
        ),
        (lambda d: d["spec"]["ports"][0].update(hostIP="10.0.0.256"), "not an IP address"),
        (
            # One host port on two addresses is fine, unless one of them is every address.
            lambda d: d["spec"].update(
                ports=[
                    {"name": "a", "port": 1, "protocol": "TCP", "hostPort": 5, "hostIP": "0.0.0.0"},
                    {
                        "name": "b",
                        "port": 2,
                        "protocol": "TCP",
                        "hostPort": 5,
                        "hostIP": "10.0.0.1",
                    },
                ]
            ),
            "ports[1].hostPort: TCP 5 is already published by port a",
        ),
    ],
)
def test_gameserver_errors_name_the_field(
    gameserver_doc: dict[str, Any], change: Any, message: str
) -> None:
    change(gameserver_doc)
    assert message in errors_of(GameServer, gameserver_doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["spec"].update(images=[]), "spec.images"),
        (
            lambda d: d["spec"]["variables"].append(dict(d["spec"]["variables"][0])),
            "variables[2].env: SERVER_NAME is defined twice",
        ),
        (lambda d: d["spec"]["variables"][0].update(env="SERVER_PORT"), "set by StellarStack"),
        (lambda d: d["spec"]["variables"][0].update(env="1BAD"), "environment variable name"),
        (
            lambda d: d["spec"]["startupCommands"][0].update(command="run {{NOPE}}"),
            "placeholder {{NOPE}} names no variable",
        ),
        (
            lambda d: d["spec"]["configFiles"][0].update(path="../../etc/passwd"),
            "must not contain '..'",
        ),
        (lambda d: d["spec"]["configFiles"][0].update(path="/etc/passwd"), "must be relative"),
        (lambda d: d["spec"]["configFiles"][0].update(path="C:/x.ini"), "must be relative"),
        (
            lambda d: d["spec"]["configFiles"][0]["edits"][0].update(value="{{NOPE}}"),
            "placeholder {{NOPE}} names no variable",
        ),
        (
            lambda d: d["spec"]["stop"].update(command=None),
            "command: required when type is Command",
        ),
        (lambda d: d["spec"]["stop"].update(command="a\nb"), "single line"),
        (lambda d: d["spec"]["variables"][1]["rules"].update(min=10, max=1), "greater than max"),
        (lambda d: d["spec"]["variables"][1]["rules"].update(regex="("), "not a valid regular"),
        (lambda d: d["spec"].update(privileged=True), "privileged"),
        (lambda d: d["spec"].update(hostNetwork=True), "hostNetwork"),
        (lambda d: d["metadata"].update(name="a" * 64), "at most 63 characters"),
        (
            lambda d: d["spec"]["ports"].append({"name": "game", "port": 1, "protocol": "TCP"}),
            "ports[2].name: game is used twice (also ports[0])",
        ),
        (
            lambda d: d["spec"]["ports"].append({"name": "q", "port": 7777, "protocol": "UDP"}),
            "ports[2].port: UDP 7777 is already used by port game",
        ),
        (
            lambda d: d["spec"]["ports"].append(
                {"name": "q", "port": 7779, "protocol": "UDP", "primary": True}
            ),
            "ports[2].primary: only one port can be primary (ports[0] is)",
        ),
        (
            lambda d: d["spec"]["ports"].append(
                {"name": "q", "port": 7779, "protocol": "UDP", "variable": "SERVER_PORT"}
            ),
            "ports[2].variable: SERVER_PORT already carries ports[0]",
        ),
        (
            lambda d: d["spec"]["ports"].append(
                {"name": "q", "port": 7779, "protocol": "UDP", "variable": "SERVER_PORT"}
            ),
            "ports[2].variable: SERVER_PORT always holds the primary port's number",
        ),
        (
            lambda d: d["spec"]["ports"][0].update(variable="SERVER_MEMORY"),
            "ports[0].variable: SERVER_MEMORY is set by StellarStack itself",
        ),
        (
            lambda d: d["spec"]["ports"][0].update(variable="GAME_PORT"),
            "ports[0].variable: the blueprint has no variable GAME_PORT",
        ),
        (
            lambda d: d["spec"]["ports"][0].update(variable="MAX_PLAYERS"),
            "ports[0].variable: MAX_PLAYERS refuses 7777: it must be at most 64",
        ),
        (lambda d: d["spec"]["ports"][0].update(protocol="SCTP"), "spec.ports.0.protocol"),
        (lambda d: d["spec"]["ports"][0].pop("protocol"), "spec.ports.0.protocol"),
        (lambda d: d["spec"]["ports"][0].update(name="Game"), "spec.ports.0.name"),
        (
            lambda d: d["spec"]["readiness"].update(probe={"type": "tcp", "port": "rcon"}),
            "readiness.probe.port: names no port of the blueprint's ports (game, query)",
        ),
    ],
)
def test_blueprint_errors_name_the_field(
    blueprint_doc: dict[str, Any], change: Any, message: str
) -> None:
    change(blueprint_doc)
    assert message in errors_of(Blueprint, blueprint_doc)


@pytest.mark.parametrize(
    ("rules", "value", "problems"),
    [
        ({"required": True}, "", ["is required"]),
        ({"required": True, "nullable": True}, "", []),
        ({}, "", []),
        ({"type": "integer", "min": 1, "max": 10}, "11", ["must be at most 10"]),
        ({"type": "integer"}, "1.5", ["must be an integer"]),
        ({"type": "numeric", "min": 0.5}, "0.25", ["must be at least 0.5"]),
        ({"type": "boolean"}, "yes", ["must be a boolean (true, false, 1 or 0)"]),
        ({"type": "boolean"}, "TRUE", []),
        ({"max": 3}, "abcd", ["must be at most 3 characters"]),
        ({"digitsMin": 1, "digitsMax": 5}, "123456", ["must have at most 5 digits"]),
        ({"in": ["a", "b"]}, "c", ["must be one of: a, b"]),
        ({"notIn": ["root"]}, "root", ["must not be one of: root"]),
        ({"regex": r"^[a-z]+$"}, "abc1", ["must match the pattern ^[a-z]+$"]),
        ({"notRegex": r"\s"}, "a b", ["must not match the pattern \\s"]),
        ({"format": "ip"}, "300.1.1.1", ["must be a valid ip"]),
        ({"format": "url"}, "https://example.com/x", []),
        ({"format": "alphaDash"}, "a-b_c", []),
        ({"format": "uuid"}, "nope", ["must be a valid uuid"]),
        ({"format": "json"}, "{", ["must be a valid json"]),
    ],
)
def test_variable_rules(rules: dict[str, Any], value: str, problems: list[str]) -> None:
    assert VariableRules.model_validate(rules).problems(value) == problems


def test_check_variable_values(blueprint_doc: dict[str, Any]) -> None:
    spec = Blueprint.model_validate(blueprint_doc).spec
    assert check_variable_values(spec, {"SERVER_NAME": "ok"}) == []
    assert check_variable_values(spec, {"MAX_PLAYERS": "0"}) == [
        "spec.variables.MAX_PLAYERS: must be at least 1"
    ]
    assert check_variable_values(spec, {"NOPE": "1"}) == [
        "spec.variables.NOPE: the blueprint has no variable NOPE"
    ]
    # Users may only set user-editable variables; admins may set any.
    assert check_variable_values(spec, {"MAX_PLAYERS": "4"}, as_user=True) == [
        "spec.variables.MAX_PLAYERS: not editable by users"
    ]
    assert check_variable_values(spec, {"SERVER_NAME": "x" * 41}) == [
        "spec.variables.SERVER_NAME: must be at most 40 characters"
    ]


BACKUP = {
    "kind": "Backup",
    "metadata": {"name": "nightly-1", "namespace": "games"},
    "spec": {"gameServer": "toy-1"},
}


def test_backup_defaults_and_errors() -> None:
    backup = Backup.model_validate(BACKUP)
    assert backup.spec.compression == "zstd"
    assert backup.spec.storage.type == "Local"
    bad = {**BACKUP, "spec": {"gameServer": "toy-1", "storage": {"type": "S3"}}}
    assert "s3: required when type is S3" in errors_of(Backup, bad)
    bad = {**BACKUP, "status": {"sha256": "nothex"}}
    assert "status.sha256" in errors_of(Backup, bad)


SCHEDULE: dict[str, Any] = {
    "kind": "Schedule",
    "metadata": {"name": "nightly", "namespace": "games"},
    "spec": {
        "gameServer": "toy-1",
        "cron": "0 4 * * *",
        "timeZone": "Europe/Berlin",
        "tasks": [
            {"action": "Command", "command": "say restarting in 1 minute"},
            {"action": "Power", "power": "restart", "delaySeconds": 60},
            {"action": "Backup", "continueOnFailure": True},
        ],
        "retention": {"keepLast": 7},
    },
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(cron="* * * * * *"), "Seconds are not supported"),
        (lambda s: s.update(cron="0 4 * *"), "spec.cron"),
        (lambda s: s.update(timeZone="Mars/Base"), "spec.timeZone"),
        (lambda s: s.update(tasks=[]), "spec.tasks"),
        (lambda s: s["tasks"][0].update(action="Power"), "power: required when action is Power"),
        (lambda s: s["tasks"][1].update(delaySeconds=3600), "spec.tasks.1.delaySeconds"),
        (lambda s: s["tasks"][1].update(command="x"), "command: only allowed"),
        (lambda s: s.update(retention={}), "at least one of keepLast"),
    ],
)
def test_schedule_errors_name_the_field(change: Any, message: str) -> None:
    import copy

    document = copy.deepcopy(SCHEDULE)
    Schedule.model_validate(document)
    change(document["spec"])
    assert message in errors_of(Schedule, document)


def test_default_ports_put_the_primary_first_and_fill_port_variables(
    blueprint_doc: dict[str, Any],
) -> None:
    blueprint_doc["spec"]["variables"].append(
        {
            "env": "RCON_PORT",
            "name": "RCON port",
            "default": "25575",
            "rules": {"type": "integer", "min": 1024},
        }
    )
    blueprint_doc["spec"]["ports"] = [
        {"name": "rcon", "port": 25575, "protocol": "TCP", "variable": "RCON_PORT"},
        {
            "name": "game",
            "port": 7777,
            "protocol": "UDP",
            "primary": True,
            "variable": "SERVER_PORT",
        },
    ]
    spec = Blueprint.model_validate(blueprint_doc).spec
    ports = spec.default_game_ports()
    assert [(p.name, p.port, p.protocol) for p in ports] == [
        ("game", 7777, "UDP"),
        ("rcon", 25575, "TCP"),
    ]
    # SERVER_PORT is the runtime's to set; a blueprint variable follows its port's number.
    assert spec.port_variables(ports) == {"RCON_PORT": "25575"}
    moved = [ports[0], ports[1].model_copy(update={"port": 26000})]
    assert spec.port_variables(moved) == {"RCON_PORT": "26000"}
    assert spec.port_variables(ports[:1]) == {}
    # Without a port marked primary, the first one is.
    blueprint_doc["spec"]["ports"][1]["primary"] = False
    blueprint_doc["spec"]["ports"][1]["variable"] = None
    unmarked = Blueprint.model_validate(blueprint_doc).spec
    assert [p.name for p in unmarked.default_game_ports()] == ["rcon", "game"]
    blueprint_doc["spec"]["ports"] = []
    assert Blueprint.model_validate(blueprint_doc).spec.primary_port() is None
