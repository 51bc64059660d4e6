"""`stellarstack panel local`'s decisions: which port its node agent gets, and whether the agent
answering there is the one it started."""

from __future__ import annotations

from typing import Any

import pytest

from stellarstack.panel.local import (
    NODE_NAME,
    NODE_PORT,
    NodePortTakenError,
    choose_node_port,
    is_own_agent,
)


@pytest.mark.parametrize(
    ("requested", "free", "chosen"),
    [
        (None, {NODE_PORT}, NODE_PORT),  # the default when it is free
        (None, set(), None),  # taken: any free port (the caller asks the kernel)
        (None, {9000}, None),
        (9000, {9000, NODE_PORT}, 9000),  # asked for and free
        (NODE_PORT, {NODE_PORT}, NODE_PORT),
    ],
)
def test_choose_node_port(requested: int | None, free: set[int], chosen: int | None) -> None:
    assert choose_node_port(requested, is_free=free.__contains__) == chosen


@pytest.mark.parametrize("requested", [9000, NODE_PORT])
def test_a_port_asked_for_that_is_taken_is_refused_naming_the_flag(requested: int) -> None:
    with pytest.raises(NodePortTakenError) as caught:
        choose_node_port(requested, is_free=lambda _: False)
    message = str(caught.value)
    assert message.startswith(f"--node-port {requested}: 127.0.0.1:{requested} is already in use")
    assert "leave --node-port out" in message


OWN: dict[str, Any] = {"agentId": NODE_NAME, "pid": 4242, "capacity": {}, "allocated": {}}


@pytest.mark.parametrize(
    ("status", "body", "own"),
    [
        (200, OWN, True),
        (200, {**OWN, "pid": 4243}, False),  # an agent of an earlier run with the same token
        (200, {**OWN, "agentId": "other"}, False),
        (200, {"agentId": NODE_NAME}, False),
        (401, None, False),  # another agent: our token is not its token
        (404, None, False),  # something that is no node agent
        (200, [OWN], False),
        (200, None, False),
    ],
)
def test_is_own_agent(status: int, body: Any, own: bool) -> None:
    assert is_own_agent(status, body, pid=4242) is own
