"""Rendered children of a GameServer, compared with golden YAML (`UPDATE_GOLDEN=1` rewrites)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.workload import build_workload
from stellarstack.operator.builders import (
    desired_install_config_map,
    desired_install_job,
    desired_pod,
    desired_pvc,
    desired_services,
)
from support.operator_docs import BLUEPRINT, GAMESERVER

GOLDEN = Path(__file__).parent / "golden"

# name -> (GameServer spec changes, Blueprint spec changes)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "hostport": ({}, {}),
    "nodeport": (
        {
            "exposure": {"type": "NodePort"},
            "ports": [{"name": "game", "port": 27015, "protocol": "TCPUDP", "nodePort": 30115}],
        },
        {},
    ),
    "loadbalancer": (
        {
            "exposure": {
                "type": "LoadBalancer",
                "loadBalancerClass": "example.com/lb",
                "serviceAnnotations": {"example.com/pool": "games"},
            },
        },
        {},
    ),
    "clusterip-retained-readonly": (
        {
            "exposure": {"type": "ClusterIP"},
            "storage": {"retainOnDelete": True, "storageClassName": "fast"},
            "placement": {"type": "Kubernetes", "node": "node-a"},
        },
        {"readOnlyRootFilesystem": True, "install": None},
    ),
}


def render(gs_changes: dict[str, Any], bp_changes: dict[str, Any]) -> list[dict[str, Any]]:
    gs_doc = copy.deepcopy(GAMESERVER)
    gs_doc["spec"].update(gs_changes)
    bp_doc = copy.deepcopy(BLUEPRINT)
    bp_doc["spec"].update(bp_changes)
    bp_doc["spec"] = {k: v for k, v in bp_doc["spec"].items() if v is not None}
    gameserver = GameServer.model_validate(gs_doc)
    workload = build_workload(gameserver, Blueprint.model_validate(bp_doc))
    objects = [desired_pvc(workload, gameserver), desired_pod(workload, gameserver)]
    objects += desired_services(workload, gameserver)
    if workload.install is not None:
        objects.append(desired_install_config_map(workload, gameserver))
        objects.append(desired_install_job(workload, gameserver, request="r1"))
    return objects


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_children_match_golden(case: str) -> None:
    text = yaml.safe_dump_all(render(*CASES[case]), sort_keys=True)
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert golden.exists(), f"{golden.name} missing; run with UPDATE_GOLDEN=1"
    assert text == golden.read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_pod_is_locked_down(case: str) -> None:
    pods = [o["spec"] for o in render(*CASES[case]) if o["kind"] == "Pod"]
    pods += [o["spec"]["template"]["spec"] for o in render(*CASES[case]) if o["kind"] == "Job"]
    assert pods
    for spec in pods:
        assert spec["automountServiceAccountToken"] is False
        assert not spec["hostNetwork"]
        assert not spec["hostPID"]
        assert not spec["hostIPC"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["fsGroup"] == 1000
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["restartPolicy"] == "Never"
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert security["runAsUser"] == 1000
            assert security["runAsGroup"] == 1000
            assert container["resources"]["requests"] == container["resources"]["limits"]
            assert "hostPath" not in str(spec["volumes"])


def test_game_container_has_a_console_and_the_whole_command() -> None:
    pod = next(o for o in render({}, {}) if o["kind"] == "Pod")
    container = pod["spec"]["containers"][0]
    assert container["stdin"] is True
    assert container["tty"] is False
    assert container["command"] == ["/usr/local/bin/toy"]
    assert "args" not in container
    assert container["ports"][0]["hostPort"] == 30777


def test_read_only_root_gets_a_scratch_tmp() -> None:
    pod = next(o for o in render(*CASES["clusterip-retained-readonly"]) if o["kind"] == "Pod")
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_children_carry_owner_and_labels_except_a_retained_volume() -> None:
    retained = render(*CASES["clusterip-retained-readonly"])
    for obj in render({}, {}) + retained:
        labels = obj["metadata"]["labels"]
        assert labels["stellarstack.io/gameserver"] == "toy-1"
        assert labels["app.kubernetes.io/managed-by"] == "stellarstack"
        owners = obj["metadata"].get("ownerReferences", [])
        if obj in retained and obj["kind"] == "PersistentVolumeClaim":
            assert owners == []
        else:
            assert owners[0]["controller"] is True
            assert owners[0]["blockOwnerDeletion"] is True
            assert owners[0]["uid"] == "0000-1111"


def test_hostport_needs_no_service() -> None:
    assert not [o for o in render({}, {}) if o["kind"] == "Service"]


def test_a_host_port_with_an_address_is_bound_to_that_address_only() -> None:
    ports = [
        {
            "name": "status",
            "port": 7777,
            "protocol": "TCP",
            "hostPort": 30777,
            "hostIP": "10.0.0.7",
        },
        {"name": "query", "port": 7778, "protocol": "UDP"},
    ]
    pod = next(o for o in render({"ports": ports}, {}) if o["kind"] == "Pod")
    bound = {p["containerPort"]: p.get("hostIP") for p in pod["spec"]["containers"][0]["ports"]}
    assert bound == {7777: "10.0.0.7", 7778: None}
    # Other exposures publish through Services, never on a node address.
    nodeport = next(
        o
        for o in render({"ports": ports, "exposure": {"type": "NodePort"}}, {})
        if o["kind"] == "Pod"
    )
    assert all("hostIP" not in p for p in nodeport["spec"]["containers"][0]["ports"])
