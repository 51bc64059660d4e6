"""Which ports a new server gets and where a Docker node publishes them: the blueprint's
defaults when a create names none, the variables that carry port numbers, as few allocations
as the ports need, and refusals that say what to pass."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.panel.portplan import (
    Address,
    PortChoiceError,
    PortWish,
    allocation_slots,
    docker_ports,
    kubernetes_ports,
    named_slots,
    no_free_allocation,
    preferred_numbers,
    server_ports,
    with_port_variables,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example_blueprint(name: str) -> Blueprint:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if (
                document
                and document.get("kind") == "Blueprint"
                and (document["metadata"]["name"] == name)
            ):
                return Blueprint.model_validate(document)
    raise AssertionError(f"no example blueprint {name}")


def without_ports(blueprint: Blueprint) -> Blueprint:
    document = copy.deepcopy(blueprint.to_wire())
    document["spec"]["ports"] = []
    return Blueprint.model_validate(document)


TOY = example_blueprint("toy")


@pytest.mark.parametrize(
    ("blueprint", "expected"),
    [
        pytest.param(
            "toy",
            [("status", 7777, "TCP"), ("query", 7778, "UDP")],
            id="toy-primary-first",
        ),
        pytest.param("openttd", [("game", 3979, "TCPUDP")], id="openttd"),
        pytest.param("armagetronad", [("game", 4534, "UDP")], id="armagetronad"),
        pytest.param("minecraft-paper", [("game", 25565, "TCP")], id="minecraft"),
        pytest.param(
            "valheim",
            [("game", 2456, "UDP"), ("query", 2457, "UDP"), ("extra", 2458, "UDP")],
            id="valheim",
        ),
    ],
)
def test_a_create_without_ports_gets_the_blueprint_defaults(
    blueprint: str, expected: list[tuple[str, int, str]]
) -> None:
    ports = server_ports(example_blueprint(blueprint), None)
    assert [(p.name, p.port, p.protocol) for p in ports] == expected


def test_the_primary_port_comes_first_wherever_the_blueprint_lists_it() -> None:
    document = TOY.to_wire()
    document["spec"]["ports"].reverse()
    ports = server_ports(Blueprint.model_validate(document), None)
    assert [p.name for p in ports] == ["status", "query"]


def test_ports_the_caller_names_win_and_an_empty_list_means_none() -> None:
    asked = [PortWish(name="game", port=9000, protocol="TCP")]
    assert server_ports(TOY, asked) == asked
    assert server_ports(without_ports(TOY), []) == []


def test_no_ports_and_no_defaults_is_refused_with_what_to_pass() -> None:
    with pytest.raises(PortChoiceError) as refused:
        server_ports(without_ports(TOY), None)
    assert refused.value.field == "body.ports"
    message = refused.value.message
    assert "the blueprint 'toy' declares no default ports" in message
    assert "unreachable" in message
    assert '"ports": []' in message
    assert '"name": "game"' in message


def test_port_variables_follow_the_ports() -> None:
    defaults = server_ports(TOY, None)
    assert with_port_variables(TOY, defaults, {"TOY_NAME": "x"}) == {
        "TOY_NAME": "x",
        "TOY_TCP_PORT": "7777",
        "TOY_UDP_PORT": "7778",
    }
    moved = [PortWish(name="status", port=8000, protocol="TCP")]
    assert with_port_variables(TOY, moved, {}) == {"TOY_TCP_PORT": "8000"}
    # Ports of other names carry nothing; SERVER_PORT is the runtime's to set.
    assert with_port_variables(TOY, [PortWish(name="game", port=1, protocol="TCP")], {}) == {}
    openttd = example_blueprint("openttd")
    assert with_port_variables(openttd, server_ports(openttd, None), {}) == {}
    # The same value the port gives is no conflict.
    assert with_port_variables(TOY, moved, {"TOY_TCP_PORT": "8000"}) == {"TOY_TCP_PORT": "8000"}


def test_a_variable_that_contradicts_its_port_is_refused() -> None:
    with pytest.raises(PortChoiceError) as refused:
        with_port_variables(TOY, server_ports(TOY, None), {"TOY_TCP_PORT": "9999"})
    assert refused.value.field == "body.variables.TOY_TCP_PORT"
    assert "port 'status', which is 7777" in refused.value.message
    assert "leave TOY_TCP_PORT out" in refused.value.message


@pytest.mark.parametrize(
    ("protocols", "slots"),
    [
        pytest.param([], [], id="none"),
        pytest.param(["TCP"], [0], id="one"),
        pytest.param(["TCP", "UDP"], [0, 0], id="tcp-and-udp-share"),
        pytest.param(["TCPUDP"], [0], id="both-on-one-number"),
        pytest.param(["UDP", "UDP", "UDP"], [0, 1, 2], id="valheim-three-udp"),
        pytest.param(["TCPUDP", "UDP", "TCP"], [0, 1, 1], id="tcpudp-takes-a-whole-allocation"),
        pytest.param(["TCP", "TCP", "UDP", "UDP"], [0, 1, 0, 1], id="packed"),
    ],
)
def test_allocation_slots(protocols: list[str], slots: list[int]) -> None:
    ports = [PortWish(name=f"p{i}", port=1000 + i, protocol=p) for i, p in enumerate(protocols)]
    assert allocation_slots(ports) == slots


def test_named_allocations_keep_their_order_and_the_rest_use_the_primary() -> None:
    assert named_slots([PortWish("a", 1, "TCP")] * 3, 2) == [0, 1, 0]


def test_each_allocation_prefers_the_number_of_its_first_port() -> None:
    ports = [
        PortWish("game", 2456, "UDP"),
        PortWish("query", 2457, "UDP"),
        PortWish("rcon", 25575, "TCP"),
    ]
    slots = allocation_slots(ports)
    assert slots == [0, 1, 0]
    assert preferred_numbers(ports, slots) == [2456, 2457]


def test_docker_ports_are_published_on_their_allocation_address() -> None:
    ports = server_ports(example_blueprint("valheim"), None)
    slots = allocation_slots(ports)
    addresses = [Address("127.0.0.1", 3000), Address("127.0.0.2", 3001), Address("::1", 3002)]
    published = docker_ports(ports, slots, addresses)
    assert [(p["name"], p["hostIP"], p["hostPort"], p["port"]) for p in published] == [
        ("game", "127.0.0.1", 3000, 2456),
        ("query", "127.0.0.2", 3001, 2457),
        ("extra", "::1", 3002, 2458),
    ]
    # What the node receives is a valid GameServer.
    document: dict[str, Any] = {
        "metadata": {"name": "valheim"},
        "spec": {"blueprint": "valheim", "ports": published},
    }
    assert [p.host_ip for p in GameServer.model_validate(document).spec.ports] == [
        "127.0.0.1",
        "127.0.0.2",
        "::1",
    ]


def test_kubernetes_ports_keep_the_exposure_settings_they_were_given() -> None:
    ports = [
        PortWish("game", 7777, "TCP", host_port=30777),
        PortWish("query", 7778, "UDP", node_port=30778),
        PortWish("plain", 7779, "UDP"),
    ]
    assert kubernetes_ports(ports) == [
        {"name": "game", "port": 7777, "protocol": "TCP", "hostPort": 30777},
        {"name": "query", "port": 7778, "protocol": "UDP", "nodePort": 30778},
        {"name": "plain", "port": 7779, "protocol": "UDP"},
    ]


def test_no_free_allocation_says_what_to_pass() -> None:
    message = no_free_allocation(0, 2, server_ports(TOY, None))
    assert message.startswith("the node has 0 free allocation(s); 2 needed")
    assert "(status, query)" in message
    assert "node_id" in message
    assert '"ports": []' in message
