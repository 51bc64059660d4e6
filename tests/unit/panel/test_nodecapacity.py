"""Node capacity in the panel: judging a node's answer to `GET /api/v1/node`, reading the stored
report back, and which capacity counts (admin override, else the report)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stellarstack.panel.nodecapacity import (
    MIB,
    EffectiveCapacity,
    StoredReport,
    compute_capacity,
    load_stored,
    mib_up,
    read_node_answer,
)

REPORT: dict[str, Any] = {
    "agentId": "node-1",
    "pid": 4242,
    "capacity": {
        "memoryBytes": 24 * 1024 * MIB + 123,
        "diskBytes": 500 * 1024 * MIB,
        "diskFreeBytes": 200 * 1024 * MIB + MIB - 1,
        "cpuMillicores": 8000,
    },
    "allocated": {
        "memoryBytes": 384 * MIB,
        "diskBytes": 3 * 1024 * MIB,
        "cpuMillicores": 2000,
        "servers": 2,
    },
}


def _body(**changes: Any) -> bytes:
    return json.dumps({**REPORT, **changes}).encode()


def test_a_good_answer_from_the_registered_agent_is_a_report() -> None:
    heard = read_node_answer(200, _body(), agent_id="node-1")
    assert heard.error is None
    assert heard.report is not None
    assert heard.report.pid == 4242
    assert heard.report.stored() == {
        "capacity": {
            "memory_bytes": 24 * 1024 * MIB + 123,
            "disk_bytes": 500 * 1024 * MIB,
            "disk_free_bytes": 200 * 1024 * MIB + MIB - 1,
            "cpu_millicores": 8000,
        },
        "allocated": {
            "memory_bytes": 384 * MIB,
            "disk_bytes": 3 * 1024 * MIB,
            "cpu_millicores": 2000,
            "servers": 2,
        },
    }


def test_extra_fields_of_a_newer_agent_are_ignored() -> None:
    heard = read_node_answer(200, _body(version="9.9", gpus=4), agent_id="node-1")
    assert heard.report is not None


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, b'{"detail": "bad token"}', "the node refused the panel's token (HTTP 401)"),
        (403, b"", "the node refused the panel's token (HTTP 403)"),
        (404, b"Not Found", "the node answered HTTP 404"),
        (500, b"", "the node answered HTTP 500"),
        (200, b"<html>", "unreadable node report: not JSON"),
        (200, b"[]", "unreadable node report: not a JSON object"),
        (
            200,
            json.dumps({"agentId": "node-1"}).encode(),
            "unreadable node report: pid: Field required",
        ),
        (
            200,
            _body(capacity={**REPORT["capacity"], "memoryBytes": -1}),
            "unreadable node report: capacity.memoryBytes: "
            "Input should be greater than or equal to 0",
        ),
        (200, _body(agentId="local"), "the agent at this address is 'local', not 'node-1'"),
    ],
)
def test_answers_that_are_not_a_working_node(status: int, body: bytes, error: str) -> None:
    heard = read_node_answer(status, body, agent_id="node-1")
    assert heard.report is None
    assert heard.error == error


@pytest.mark.parametrize(
    ("document", "readable"),
    [
        (None, False),
        ({}, False),
        ({"capacity": {"memory_bytes": 1}}, False),
        (read_node_answer(200, _body(), agent_id="node-1").report.stored(), True),  # type: ignore[union-attr]
    ],
)
def test_load_stored(document: dict[str, Any] | None, readable: bool) -> None:
    assert (load_stored(document) is not None) is readable


STORED = StoredReport.model_validate(
    read_node_answer(200, _body(), agent_id="node-1").report.stored()  # type: ignore[union-attr]
)


@pytest.mark.parametrize(
    ("configured", "reported", "expected"),
    [
        # Nothing set, nothing heard: unknown.
        (
            (0, 0, 0),
            None,
            EffectiveCapacity(memory_mib=0, disk_mib=0, cpu_millicores=0, overridden=[]),
        ),
        # The report, in whole MiB rounded down.
        (
            (0, 0, 0),
            STORED,
            EffectiveCapacity(
                memory_mib=24 * 1024, disk_mib=500 * 1024, cpu_millicores=8000, overridden=[]
            ),
        ),
        # Admin figures win field by field.
        (
            (16 * 1024, 0, 6000),
            STORED,
            EffectiveCapacity(
                memory_mib=16 * 1024,
                disk_mib=500 * 1024,
                cpu_millicores=6000,
                overridden=["memory_mib", "cpu_millicores"],
            ),
        ),
        # An override above the hardware is the admin's call (overcommit on purpose).
        (
            (64 * 1024, 1, 64000),
            STORED,
            EffectiveCapacity(
                memory_mib=64 * 1024,
                disk_mib=1,
                cpu_millicores=64000,
                overridden=["memory_mib", "disk_mib", "cpu_millicores"],
            ),
        ),
        (
            (0, 2048, 0),
            None,
            EffectiveCapacity(
                memory_mib=0, disk_mib=2048, cpu_millicores=0, overridden=["disk_mib"]
            ),
        ),
    ],
)
def test_compute_capacity(
    configured: tuple[int, int, int], reported: StoredReport | None, expected: EffectiveCapacity
) -> None:
    memory, disk, cpu = configured
    assert (
        compute_capacity(memory_mib=memory, disk_mib=disk, cpu_millicores=cpu, reported=reported)
        == expected
    )


@pytest.mark.parametrize(
    ("count", "mib"), [(0, 0), (1, 1), (MIB, 1), (MIB + 1, 2), (10 * 10**9, 9537)]
)
def test_mib_up(count: int, mib: int) -> None:
    assert mib_up(count) == mib
