"""CustomResourceDefinitions on a real API server: structural schema, validation, status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from support.kube import REPO, Kube

pytestmark = pytest.mark.kube

GROUP = "test.stellarstack.io"
PLURAL = "toyservers"
CRD_NAME = f"{PLURAL}.{GROUP}"

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "toyserver", "kind": "ToyServer"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["image", "port"],
                                "properties": {
                                    "image": {"type": "string", "minLength": 1},
                                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                    "motd": {"type": "string", "maxLength": 40},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "phase": {"type": "string", "enum": ["Pending", "Running"]},
                                    "players": {"type": "integer"},
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def toy_crd(kube: Kube, tmp_path: Path) -> Iterator[str]:
    """The test CRD, installed through the fixture's YAML-directory helper."""
    (tmp_path / "toyservers.yaml").write_text(yaml.safe_dump(CRD))
    names = kube.install_crds(tmp_path)
    assert names == [CRD_NAME]
    yield CRD_NAME
    kube.delete_crds(names)


def toy(
    name: str, spec: dict[str, object], status: dict[str, object] | None = None
) -> dict[str, object]:
    body: dict[str, object] = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ToyServer",
        "metadata": {"name": name},
        "spec": spec,
    }
    if status is not None:
        body["status"] = status
    return body


def test_valid_object_accepted_and_invalid_rejected_naming_the_field(
    kube: Kube, kube_namespace: str, toy_crd: str
) -> None:
    created = kube.custom.create_namespaced_custom_object(
        GROUP, "v1", kube_namespace, PLURAL, toy("good", {"image": "toy:1", "port": 7777})
    )
    assert created["metadata"]["uid"]
    assert created["metadata"]["generation"] == 1

    with pytest.raises(ApiException) as rejected:
        kube.custom.create_namespaced_custom_object(
            GROUP, "v1", kube_namespace, PLURAL, toy("bad", {"image": "toy:1", "port": 70000})
        )
    assert rejected.value.status == 422
    body = json.loads(rejected.value.body or "{}")
    fields = {cause.get("field") for cause in body["details"]["causes"]}
    assert "spec.port" in fields, body

    with pytest.raises(ApiException) as missing:
        kube.custom.create_namespaced_custom_object(
            GROUP, "v1", kube_namespace, PLURAL, toy("worse", {"port": 1})
        )
    assert missing.value.status == 422
    assert "spec.image" in json.loads(missing.value.body or "{}")["message"]

    # Structural schemas prune unknown fields instead of storing them.
    pruned = kube.custom.create_namespaced_custom_object(
        GROUP, "v1", kube_namespace, PLURAL, toy("pruned", {"image": "x", "port": 1, "extra": 1})
    )
    assert "extra" not in pruned["spec"]


def test_status_subresource(kube: Kube, kube_namespace: str, toy_crd: str) -> None:
    # With the status subresource, status in a create or a main-resource update is ignored.
    created = kube.custom.create_namespaced_custom_object(
        GROUP, "v1", kube_namespace, PLURAL,
        toy("s", {"image": "toy:1", "port": 7777}, status={"phase": "Running"}),
    )  # fmt: skip
    assert "status" not in created

    patched = kube.custom.patch_namespaced_custom_object_status(
        GROUP, "v1", kube_namespace, PLURAL, "s", {"status": {"phase": "Running", "players": 3}}
    )
    assert patched["status"] == {"phase": "Running", "players": 3}
    # A status write is not a spec change: generation stays.
    assert patched["metadata"]["generation"] == 1

    with pytest.raises(ApiException) as invalid:
        kube.custom.patch_namespaced_custom_object_status(
            GROUP, "v1", kube_namespace, PLURAL, "s", {"status": {"phase": "Exploded"}}
        )
    assert invalid.value.status == 422
    assert "status.phase" in json.loads(invalid.value.body or "{}")["message"]

    updated = kube.custom.patch_namespaced_custom_object(
        GROUP, "v1", kube_namespace, PLURAL, "s",
        {"spec": {"port": 7778}, "status": {"players": 0}},
    )  # fmt: skip
    assert updated["spec"]["port"] == 7778
    assert updated["metadata"]["generation"] == 2
    assert updated["status"]["players"] == 3, "the main resource must not write status"


def test_project_crds_install(kube: Kube) -> None:
    """The committed CRDs (crds/*.yaml) are accepted by a real API server."""
    crds = REPO / "crds"
    if not list(crds.glob("*.yaml")):
        pytest.skip("no generated CRDs in crds/")
    names = kube.install_crds(crds)
    assert names
    for name in names:
        crd = kube.apiextensions.read_custom_resource_definition(name)
        assert crd.status.accepted_names.kind
