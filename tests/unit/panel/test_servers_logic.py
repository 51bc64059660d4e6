"""Pure decisions behind the panel's servers: the status-sync plan, where a backend's problem
points in the request body, idempotency fingerprints, and the GameServer a create writes."""

from __future__ import annotations

from typing import Any

import pytest

from stellarstack.panel.api.errors import ApiError
from stellarstack.panel.db.models import Allocation, KubernetesTarget, Node, Server, TargetKind
from stellarstack.panel.portplan import PortWish
from stellarstack.panel.services import idempotency
from stellarstack.panel.services.servers import (
    Place,
    ServerWish,
    gameserver_document,
    problem_field,
    validated,
)
from stellarstack.panel.services.status_sync import plan_sync


def found(name: str, namespace: str = "games", **extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "metadata": {"name": name, "namespace": namespace, **extra.pop("metadata", {})},
        "spec": {"blueprint": "toy", **extra.pop("spec", {})},
    }
    document.update(extra)
    return document


@pytest.mark.parametrize(
    ("known", "listing", "statuses", "missing", "adopted"),
    [
        pytest.param({}, [], {}, [], [], id="nothing"),
        pytest.param(
            {("games", "a"): "id-a"},
            [found("a", status={"state": "Running"})],
            {"id-a": {"state": "Running"}},
            [],
            [],
            id="known-updated",
        ),
        pytest.param(
            {("games", "a"): "id-a", ("games", "b"): "id-b"},
            [found("a")],
            {"id-a": {}},
            ["id-b"],
            [],
            id="gone-is-missing",
        ),
        pytest.param(
            {},
            [found("x", status={"state": "Stopped"}, spec={"suspended": True})],
            {},
            [],
            [("games", "x", True, "Stopped")],
            id="unknown-adopted",
        ),
        pytest.param(
            {},
            [found("x", metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"})],
            {},
            [],
            [],
            id="deleting-not-adopted",
        ),
        pytest.param(
            {("games", "a"): "id-a"},
            [found("a", namespace="other")],
            {},
            ["id-a"],
            [("other", "a", False, None)],
            id="same-name-other-namespace",
        ),
        pytest.param(
            {},
            [found("x", metadata={"annotations": {"stellarstack.io/panel-deleted": "true"}})],
            {},
            [],
            [],
            id="deleted-by-the-panel-not-adopted",
        ),
        pytest.param({}, [{"metadata": {}}], {}, [], [], id="nameless-ignored"),
    ],
)
def test_plan_sync(
    known: dict[tuple[str, str], str],
    listing: list[dict[str, Any]],
    statuses: dict[str, Any],
    missing: list[str],
    adopted: list[tuple[str, str, bool, str | None]],
) -> None:
    plan = plan_sync(known, listing)
    assert plan.statuses == statuses
    assert plan.missing == missing
    assert [
        (a.namespace, a.name, a.suspended, a.status.get("state")) for a in plan.adopt
    ] == adopted


@pytest.mark.parametrize(
    ("problem", "where"),
    [
        ("spec.variables.MOTD: too long", ("body.variables.MOTD", "too long")),
        ("spec.ports[0].port: must be at least 1", ("body.ports[0].port", "must be at least 1")),
        ("metadata.name: bad", ("body.metadata.name", "bad")),
        ("(document): broken", ("body", "broken")),
    ],
)
def test_backend_problems_point_into_the_request_body(problem: str, where: tuple[str, str]) -> None:
    assert problem_field(problem) == where


def test_fingerprints_ignore_key_order_but_not_content() -> None:
    one = idempotency.fingerprint("POST", "/api/servers", {"a": 1, "b": [1, 2]})
    assert one == idempotency.fingerprint("post", "/api/servers", {"b": [1, 2], "a": 1})
    assert one != idempotency.fingerprint("POST", "/api/servers", {"a": 2, "b": [1, 2]})
    assert one != idempotency.fingerprint("POST", "/api/other", {"a": 1, "b": [1, 2]})


def wish(**changes: Any) -> ServerWish:
    values: dict[str, Any] = {
        "name": "World",
        "description": "",
        "blueprint": "toy",
        "node_id": None,
        "kubernetes_target_id": None,
        "image": None,
        "startup_command": None,
        "variables": {"TOY_NAME": "x"},
        "resources": {"cpu": "500m", "memory": "128Mi", "disk": "1Gi", "pids": 64},
        "ports": [
            PortWish(name="status", port=7777, protocol="TCP", host_port=31000),
            PortWish(name="query", port=7778, protocol="UDP", node_port=31001),
        ],
        "allocation_ids": [],
        "exposure": None,
        "start": True,
        "allocation_limit": None,
        "backup_limit": None,
        **changes,
    }
    return ServerWish(**values)


def server(kind: TargetKind, namespace: str) -> Server:
    return Server(
        id="0123456789abcdef0123456789abcdef",
        name="World",
        target_kind=kind,
        namespace=namespace,
        resource_name="gs-0123456789ab",
        blueprint="toy",
    )


def document_for(place: Place, changed: ServerWish, allocations: list[Allocation]) -> Any:
    """The validated GameServer a create writes, its ports as asked (slots as the node needs)."""
    ports = changed.ports or []
    slots = [0] * len(ports) if place.node is not None else []
    kind = TargetKind.DOCKER if place.node is not None else TargetKind.KUBERNETES
    namespace = "default" if place.target is None else place.target.namespace
    return validated(
        gameserver_document(
            server=server(kind, namespace),
            place=place,
            wish=changed,
            ports=ports,
            variables=changed.variables,
            slots=slots,
            allocations=allocations,
        )
    )


def test_docker_ports_are_published_on_the_allocations() -> None:
    node = Node(id="n1", name="Node One", agent_id="Agent-7", url="http://n", token="t" * 40)
    primary = Allocation(id="a1", node_id="n1", ip="127.0.0.1", port=25565)
    document = document_for(Place(node=node, target=None), wish(start=False), [primary])
    spec = document["spec"]
    # Kubernetes-only settings of the request do not reach a Docker node; the allocation's
    # address does.
    assert spec["ports"] == [
        {
            "name": "status",
            "port": 7777,
            "protocol": "TCP",
            "hostPort": 25565,
            "hostIP": "127.0.0.1",
        },
        {
            "name": "query",
            "port": 7778,
            "protocol": "UDP",
            "hostPort": 25565,
            "hostIP": "127.0.0.1",
        },
    ]
    assert spec["placement"] == {"type": "DockerNode", "node": "agent-7"}
    assert spec["power"]["state"] == "Stopped"
    assert document["metadata"]["labels"] == {
        "stellarstack.io/panel-server": "0123456789abcdef0123456789abcdef"
    }


def test_kubernetes_ports_keep_their_exposure_settings() -> None:
    target = KubernetesTarget(id="t1", name="cluster", namespace="games")
    document = document_for(
        Place(node=None, target=target), wish(exposure={"type": "NodePort"}), []
    )
    spec = document["spec"]
    assert spec["ports"][0]["hostPort"] == 31000
    assert spec["ports"][1]["nodePort"] == 31001
    assert spec["exposure"]["type"] == "NodePort"
    assert spec["placement"]["type"] == "Kubernetes"
    assert document["metadata"]["namespace"] == "games"


def test_an_invalid_document_names_each_field_of_the_request() -> None:
    target = KubernetesTarget(id="t1", name="cluster", namespace="games")
    bad_ports = [
        PortWish(name="status", port=7777, protocol="TCP"),
        PortWish(name="status", port=7778, protocol="UDP"),
    ]
    with pytest.raises(ApiError) as raised:
        document_for(
            Place(node=None, target=target),
            wish(resources={"cpu": "1", "memory": "4096Ti", "disk": "1Gi"}, ports=bad_ports),
            [],
        )
    assert raised.value.status_code == 422
    fields = {problem.field for problem in raised.value.fields}
    assert "body.resources.memory" in fields, raised.value.fields
