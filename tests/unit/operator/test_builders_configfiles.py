"""The game Pod's config-file init container: golden YAML, security, the plans it carries."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.configfiles import PLANS_ENV, plans_from_json
from stellarstack.api.gameserver import GameServer
from stellarstack.api.workload import Workload, WorkloadSettings, build_workload
from stellarstack.operator.builders import CONFIG_FILES_CONTAINER, desired_pod
from support.operator_docs import BLUEPRINT, GAMESERVER

GOLDEN = Path(__file__).parent / "golden" / "configfiles.yaml"
IMAGE = "registry.example/stellarstack/stellarstack:1.2.3"
CONFIG_FILES: list[dict[str, Any]] = [
    {
        "path": "server.properties",
        "parser": "properties",
        "edits": [
            {"key": "server-port", "value": "{{SERVER_PORT}}"},
            {"key": "motd", "value": "Welcome to {{TOY_NAME}}"},
        ],
    },
    {
        "path": "config/settings.yml",
        "parser": "yaml",
        "edits": [
            {
                "key": "network.online",
                "replacements": [{"match": "true", "value": "false"}],
            }
        ],
    },
]


def workload_and_gameserver(
    config_files: list[dict[str, Any]], **bp_changes: Any
) -> tuple[Workload, GameServer]:
    bp_doc = copy.deepcopy(BLUEPRINT)
    bp_doc["spec"]["configFiles"] = config_files
    bp_doc["spec"].update(bp_changes)
    gs_doc = copy.deepcopy(GAMESERVER)
    gs_doc["spec"]["variables"] = {"TOY_NAME": "Friday's server"}
    gameserver = GameServer.model_validate(gs_doc)
    return build_workload(gameserver, Blueprint.model_validate(bp_doc)), gameserver


def pod_with_config_files(**bp_changes: Any) -> dict[str, Any]:
    workload, gameserver = workload_and_gameserver(CONFIG_FILES, **bp_changes)
    return desired_pod(workload, gameserver, stellarstack_image=IMAGE)


def test_pod_with_config_files_matches_golden() -> None:
    text = yaml.safe_dump(pod_with_config_files(), sort_keys=True)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), f"{GOLDEN.name} missing; run with UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text()


def test_no_config_files_no_init_container() -> None:
    workload, gameserver = workload_and_gameserver([])
    # No image is needed either: nothing would run it.
    assert "initContainers" not in desired_pod(workload, gameserver)["spec"]


def test_init_container_carries_the_rendered_plans_of_the_workload() -> None:
    workload, gameserver = workload_and_gameserver(CONFIG_FILES)
    init = desired_pod(workload, gameserver, stellarstack_image=IMAGE)["spec"]["initContainers"]
    assert [c["name"] for c in init] == [CONFIG_FILES_CONTAINER]
    env = {e["name"]: e["value"] for e in init[0]["env"]}
    assert set(env) == {PLANS_ENV}
    assert plans_from_json(env[PLANS_ENV]) == workload.config_files
    # Placeholders were replaced before the Pod was built: the init container renders nothing.
    document = json.loads(env[PLANS_ENV])
    values = [edit["value"] for f in document["files"] for edit in f["edits"]]
    assert values == ["7777", "Welcome to Friday's server", None]


@pytest.mark.parametrize("read_only_game", [False, True])
def test_init_container_is_locked_down_like_the_game(read_only_game: bool) -> None:
    pod = pod_with_config_files(readOnlyRootFilesystem=read_only_game)
    spec = pod["spec"]
    (init,) = spec["initContainers"]
    (game,) = spec["containers"]
    assert spec["automountServiceAccountToken"] is False
    assert init["image"] == IMAGE
    assert init["args"] == ["configfiles", "apply", "--root", WorkloadSettings().data_path]
    assert "command" not in init  # the image's entrypoint, `stellarstack`, runs
    security = init["securityContext"]
    assert security == {**game["securityContext"], "readOnlyRootFilesystem": True}
    assert security["runAsUser"] == game["securityContext"]["runAsUser"] == 1000
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert init["resources"]["requests"] == init["resources"]["limits"]
    assert init["resources"]["limits"] == {"cpu": "250m", "memory": "96Mi"}
    # Only the data volume, at the game's own path: nothing else of the Pod is reachable.
    assert init["volumeMounts"] == [{"name": "data", "mountPath": "/home/container"}]
    assert "ports" not in init
    assert "stdin" not in init


def test_config_files_without_an_image_are_refused_by_name() -> None:
    workload, gameserver = workload_and_gameserver(CONFIG_FILES)
    with pytest.raises(ValueError, match="stellarstack_image"):
        desired_pod(workload, gameserver)
