"""The files service's pure side: when it runs, where, and the objects it is made of."""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.workload import WorkloadSettings
from stellarstack.operator.filespod import (
    ANNOTATION_FILES_REQUESTED,
    FilesAction,
    FilesSettings,
    compute_files_node,
    compute_files_plan,
    desired_files_config_map,
    desired_files_pod,
    desired_files_service,
    desired_host_key_secret,
    files_config_digest,
    is_files_object,
    parse_requested_at,
)
from support.operator_docs import BLUEPRINT, GAMESERVER

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 1, 31, 12, 0, 0, tzinfo=UTC)
IDLE = timedelta(minutes=15)
PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"
SETTINGS = FilesSettings(
    public_key_config_map="stellarstack/panel-key", image="localhost/stellarstack/stellarstack:9"
)


def gameserver(requested: str | None = None, state: str | None = None, **spec: Any) -> GameServer:
    doc = copy.deepcopy(GAMESERVER)
    doc["spec"].update(spec)
    doc["spec"]["variables"] = {"TOY_NAME": "hunter2"}
    if requested is not None:
        doc["metadata"]["annotations"] = {ANNOTATION_FILES_REQUESTED: requested}
    if state is not None:
        doc["status"] = {"state": state}
    return GameServer.model_validate(doc)


def blueprint(**spec: Any) -> Blueprint:
    doc = copy.deepcopy(BLUEPRINT)
    doc["spec"].update(spec)
    return Blueprint.model_validate(doc)


@pytest.mark.parametrize(
    ("requested", "state", "spec", "deleting", "action", "reason"),
    [
        ("2026-01-31T11:59:00Z", "Stopped", {}, False, FilesAction.RUN, "requested"),
        ("2026-01-31T11:59:00Z", "Running", {}, False, FilesAction.RUN, "requested"),
        ("2026-01-31T12:00:00+01:00", "Stopped", {}, False, FilesAction.REMOVE, "idle for 3600 s"),
        ("2026-01-31T11:45:00Z", "Stopped", {}, False, FilesAction.REMOVE, "idle for 900 s"),
        ("2026-01-31T11:45:01Z", "Crashed", {}, False, FilesAction.RUN, "requested"),
        # A clock ahead of the operator's: counts as now, never as "idle" or an error.
        ("2026-01-31T12:05:00Z", "Stopped", {}, False, FilesAction.RUN, "requested"),
        (None, "Stopped", {}, False, FilesAction.REMOVE, "no files request"),
        ("2026-01-31T11:59:00Z", "Installing", {}, False, FilesAction.REMOVE, "Installing"),
        ("2026-01-31T11:59:00Z", "Restoring", {}, False, FilesAction.REMOVE, "Restoring"),
        ("2026-01-31T11:59:00Z", None, {"suspended": True}, False, FilesAction.REMOVE, "suspend"),
        ("2026-01-31T11:59:00Z", "Stopped", {}, True, FilesAction.REMOVE, "being deleted"),
        ("yesterday", "Stopped", {}, False, FilesAction.REMOVE, "files-requested-at"),
        ("2026-01-31T11:59:00", "Stopped", {}, False, FilesAction.REMOVE, "with an offset"),
    ],
)
def test_the_files_service_runs_only_while_recently_requested(
    requested: str | None,
    state: str | None,
    spec: dict[str, Any],
    deleting: bool,
    action: FilesAction,
    reason: str,
) -> None:
    plan = compute_files_plan(
        gameserver(requested, state, **spec), now=NOW, idle_timeout=IDLE, deleting=deleting
    )
    assert plan.action is action
    assert reason in plan.reason
    assert plan.problem == (reason in {"files-requested-at", "with an offset"})


def test_requested_at_accepts_rfc3339_with_an_offset_only() -> None:
    assert parse_requested_at("2026-01-31T12:00:00Z") == NOW
    assert parse_requested_at("2026-01-31T13:00:00.5+01:00") == NOW + timedelta(seconds=0.5)
    assert parse_requested_at("2026-01-31T12:00:00") is None
    assert parse_requested_at("") is None


@pytest.mark.parametrize(
    ("game_pod", "pvc", "placement", "node"),
    [
        ({"spec": {"nodeName": "node-a"}}, {}, None, "node-a"),
        (
            {"spec": {"nodeName": "node-a"}},
            {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "node-b"}}},
            None,
            "node-a",
        ),
        (
            None,
            {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "node-b"}}},
            "node-c",
            "node-b",
        ),
        (None, {"metadata": {}}, "node-c", "node-c"),
        (None, None, None, None),
        ({"spec": {}}, None, None, None),  # a game Pod not scheduled yet pins nothing
    ],
)
def test_files_pod_follows_the_volume(
    game_pod: dict[str, Any] | None,
    pvc: dict[str, Any] | None,
    placement: str | None,
    node: str | None,
) -> None:
    spec: dict[str, Any] = {}
    if placement:
        spec["placement"] = {"type": "Kubernetes", "node": placement}
    assert compute_files_node(gameserver(**spec), game_pod, pvc) == node


def render(node: str | None = "node-a") -> list[dict[str, Any]]:
    gs = gameserver("2026-01-31T11:59:00Z", "Stopped")
    config_map = desired_files_config_map(gs, blueprint(fileDenylist=["*.secret"]), PEM)
    pod = desired_files_pod(
        gs,
        SETTINGS,
        WorkloadSettings(),
        config_digest="digest-of-the-config-map",
        node=node,
    )
    return [config_map, pod, desired_files_service(gs)]


def test_files_objects_match_golden() -> None:
    # The ConfigMap's content is checked below; here, the Pod and Service as rendered.
    text = yaml.safe_dump_all(render()[1:], sort_keys=True)
    golden = GOLDEN / "files.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert golden.exists(), f"{golden.name} missing; run with UPDATE_GOLDEN=1"
    assert text == golden.read_text()


def test_files_pod_is_locked_down_and_has_no_api_token() -> None:
    pod = render()[1]
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["hostNetwork"] is False
    assert spec["hostPID"] is False
    assert spec["hostIPC"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["runAsUser"] == 1000
    assert security["runAsGroup"] == 1000
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"] == {"cpu": "250m", "memory": "256Mi"}
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert "hostPath" not in str(spec["volumes"])
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "toy-1-data"}} in spec["volumes"]
    assert container["command"][:3] == ["stellarstack", "nodeproxy", "files"]
    assert "--server" in container["command"]
    assert container["command"][container["command"].index("--server") + 1] == "games/toy-1"


def test_files_pod_is_pinned_to_the_volume_node_only_when_known() -> None:
    pinned = render("node-a")[1]["spec"]["affinity"]["nodeAffinity"]
    terms = pinned["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["node-a"]
    assert "affinity" not in render(None)[1]["spec"]


def test_files_service_selects_only_the_files_pod() -> None:
    config_map, pod, service = render()
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "files"
    assert service["metadata"]["name"] == pod["metadata"]["name"] == "toy-1-files"
    for obj in (config_map, pod, service):
        assert is_files_object(obj, "toy-1")
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "0000-1111"
    # The game Pod of a GameServer that happens to be called toy-1-files is not ours.
    other = {"metadata": {"labels": {"stellarstack.io/gameserver": "toy-1-files"}}}
    assert not is_files_object(other, "toy-1")
    assert not is_files_object(None, "toy-1")


def test_config_carries_quota_and_denylist_but_not_variables() -> None:
    config_map = render()[0]
    documents = list(yaml.safe_load_all(config_map["data"]["server.yaml"]))
    gs_doc, bp_doc = documents
    assert gs_doc["spec"] == {
        "blueprint": "toy",
        "resources": {"cpu": "500m", "memory": "128Mi", "disk": "1Gi", "swap": "0", "pids": 512},
    }
    assert "hunter2" not in config_map["data"]["server.yaml"]
    assert bp_doc["spec"]["fileDenylist"] == ["*.secret"]
    assert GameServer.model_validate(gs_doc).metadata.namespace == "games"
    assert Blueprint.model_validate(bp_doc).metadata.name == "toy"
    assert config_map["data"]["panel-public-key.pem"] == PEM


def test_a_changed_denylist_changes_the_digest() -> None:
    gs = gameserver("2026-01-31T11:59:00Z")
    one = desired_files_config_map(gs, blueprint(fileDenylist=["a"]), PEM)
    two = desired_files_config_map(gs, blueprint(fileDenylist=["b"]), PEM)
    assert files_config_digest(one) != files_config_digest(two)
    assert files_config_digest(one) == files_config_digest(copy.deepcopy(one))


def test_settings_name_the_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STELLARSTACK_OPERATOR_FILES_IDLE_TIMEOUT_SECONDS", "1")
    with pytest.raises(ValueError, match="idle_timeout_seconds"):
        FilesSettings()
    monkeypatch.setenv("STELLARSTACK_OPERATOR_FILES_IDLE_TIMEOUT_SECONDS", "60")
    monkeypatch.setenv("STELLARSTACK_OPERATOR_FILES_PUBLIC_KEY_CONFIG_MAP", "no-slash")
    with pytest.raises(ValueError, match="public_key_config_map"):
        FilesSettings()
    monkeypatch.setenv("STELLARSTACK_OPERATOR_FILES_PUBLIC_KEY_CONFIG_MAP", "ns/key")
    assert FilesSettings().idle_timeout == timedelta(minutes=1)


def test_sftp_runs_beside_http_with_a_host_key_from_its_secret() -> None:
    _, pod, service = render()
    (container,) = pod["spec"]["containers"]
    command = container["command"]
    assert command[command.index("--sftp-listen") + 1] == "0.0.0.0:2022"
    key_path = command[command.index("--sftp-host-key") + 1]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "ssh")
    assert key_path.startswith(mount["mountPath"] + "/")
    assert mount["readOnly"] is True
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "ssh")
    assert volume["secret"]["secretName"] == "toy-1-files-ssh"
    assert volume["secret"]["defaultMode"] == 0o400
    assert [p["port"] for p in service["spec"]["ports"]] == [8080, 2022]
    secret = desired_host_key_secret(gameserver(), "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert secret["metadata"]["name"] == "toy-1-files-ssh"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "0000-1111"
    assert is_files_object(secret, "toy-1")
    assert list(secret["stringData"]) == [key_path.rsplit("/", 1)[1]]
