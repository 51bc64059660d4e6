"""Admin infrastructure: locations, nodes, allocations, Kubernetes targets, blueprints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from support.panel import Panel, create_user

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
# The egg corpus beside the repository (see tests/unit/test_eggs_corpus.py).
EGGS = Path(
    os.environ.get("STELLARSTACK_EGGS") or Path(__file__).resolve().parents[4] / "shared" / "eggs"
)
NODE_TOKEN = "n" * 40


def _toy_blueprint() -> dict[str, object]:
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "Blueprint":
                return document
    raise AssertionError("no Blueprint in examples/")


def test_location_node_allocation_lifecycle(panel: Panel) -> None:
    admin = panel.setup_admin()
    location = admin.post("/api/admin/locations", json={"short": "eu-west"}).json()
    duplicate = admin.post("/api/admin/locations", json={"short": "eu-west"})
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["field"] == "body.short"

    node_body = {
        "name": "node-1",
        "location_id": location["id"],
        "url": "https://node-1.example.com:8443/",
        "token": NODE_TOKEN,
        "agent_id": "node-1",
    }
    node = admin.post("/api/admin/nodes", json=node_body).json()
    assert node["url"] == "https://node-1.example.com:8443"
    assert "token" not in node
    assert node["online"] is False

    created = admin.post(
        f"/api/admin/nodes/{node['id']}/allocations",
        json={"ip": "203.0.113.10", "ports": ["25565", "27015-27017"]},
    ).json()
    assert sorted(a["port"] for a in created) == [25565, 27015, 27016, 27017]
    again = admin.post(
        f"/api/admin/nodes/{node['id']}/allocations",
        json={"ip": "203.0.113.10", "ports": ["27017-27018"]},
    ).json()
    assert [a["port"] for a in again] == [27018]
    listed = admin.get(f"/api/admin/nodes/{node['id']}/allocations?free=true").json()
    assert len(listed) == 5

    # The location is in use by the node.
    assert admin.delete(f"/api/admin/locations/{location['id']}").status_code == 409
    assert admin.delete(f"/api/admin/nodes/{node['id']}").status_code == 204
    assert admin.delete(f"/api/admin/locations/{location['id']}").status_code == 204


def test_bad_node_and_allocation_input_names_the_field(panel: Panel) -> None:
    admin = panel.setup_admin()
    base = {"name": "n", "url": "https://n:8443", "token": NODE_TOKEN, "agent_id": "n"}
    cases = [
        ({**base, "url": "ftp://n"}, "body.url"),
        ({**base, "url": "https://user:pw@n:8443"}, "body.url"),
        ({**base, "token": "short"}, "body.token"),
        ({**base, "location_id": "nope"}, "body.location_id"),
        ({**base, "memory_mib": -1}, "body.memory_mib"),
    ]
    for body, field in cases:
        response = admin.post("/api/admin/nodes", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["field"] == field, response.json()
    node = admin.post("/api/admin/nodes", json=base).json()
    url = f"/api/admin/nodes/{node['id']}/allocations"
    for body, field in [
        ({"ip": "not-an-ip", "ports": ["25565"]}, "body.ip"),
        ({"ip": "10.0.0.1", "ports": ["80"]}, "body.ports.0"),
        ({"ip": "10.0.0.1", "ports": ["30000-20000"]}, "body.ports.0"),
        ({"ip": "10.0.0.1", "ports": ["2000-9000"]}, "body.ports"),
        ({"ip": "10.0.0.1", "ports": ["x"]}, "body.ports.0"),
    ]:
        response = admin.post(url, json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["field"] == field, response.json()
    assert admin.get(url).json() == []


def test_kubernetes_targets(panel: Panel) -> None:
    admin = panel.setup_admin()
    target = admin.post(
        "/api/admin/kubernetes-targets", json={"name": "games", "namespace": "games"}
    ).json()
    bad = admin.post(
        "/api/admin/kubernetes-targets", json={"name": "bad", "namespace": "Not_A_Label"}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "body.namespace"
    changed = admin.patch(
        f"/api/admin/kubernetes-targets/{target['id']}", json={"public_address": "198.51.100.1"}
    ).json()
    assert changed["public_address"] == "198.51.100.1"
    assert [t["name"] for t in admin.get("/api/admin/kubernetes-targets").json()] == ["games"]


def test_blueprint_create_edit_export_and_user_view(panel: Panel) -> None:
    admin = panel.setup_admin()
    document = _toy_blueprint()
    created = admin.post("/api/admin/blueprints", json=document)
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    assert admin.post("/api/admin/blueprints", json=document).status_code == 409

    broken = json.loads(json.dumps(document))
    broken["spec"]["images"] = []
    refused = admin.put(f"/api/admin/blueprints/{name}", json=broken)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"].startswith("body.spec.images")

    exported = admin.get(f"/api/admin/blueprints/{name}/export?format=PTDL_v2")
    assert exported.status_code == 200
    assert exported.json()["meta"]["version"] == "PTDL_v2"
    reimported = admin.post(
        "/api/admin/blueprints/import",
        json={"egg": exported.text, "name": f"{name}-copy"},
    )
    assert reimported.status_code == 201, reimported.text

    create_user(panel, admin, "player@example.com")
    player = panel.login("player@example.com")
    visible = player.get("/api/blueprints").json()
    assert {b["name"] for b in visible} == {name, f"{name}-copy"}
    assert all("install" not in json.dumps(b) for b in visible)
    assert player.get("/api/admin/blueprints").status_code == 404


def test_real_eggs_import_through_the_api(panel: Panel) -> None:
    if not EGGS.is_dir():
        # Test data beside the repository, like tests/unit/test_eggs_corpus.py.
        pytest.skip(f"egg corpus not found ({EGGS}; set STELLARSTACK_EGGS)")
    admin = panel.setup_admin()
    eggs = sorted(p for p in EGGS.rglob("*") if p.suffix in {".json", ".yaml", ".yml"})[:12]
    assert eggs, f"the egg corpus is missing at {EGGS}"
    imported = 0
    for egg in eggs:
        response = admin.post("/api/admin/blueprints/import", json={"egg": egg.read_text()})
        assert response.status_code in (201, 409), (egg.name, response.text)
        imported += response.status_code == 201
    assert imported >= 1
    garbage = admin.post("/api/admin/blueprints/import", json={"egg": "{not an egg"})
    assert garbage.status_code == 422
    assert garbage.json()["error"]["field"] == "body"
