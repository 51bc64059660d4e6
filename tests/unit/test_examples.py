"""Every example in examples/ is valid, so what users copy from cannot silently rot."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from stellarstack.api.blueprint import Blueprint, check_variable_values
from stellarstack.api.common import DNS1035_LABEL
from stellarstack.api.crdgen import build_crd
from stellarstack.api.gameserver import MAX_GAMESERVER_NAME, GameServer
from stellarstack.api.manifests import KINDS, Manifest, load_manifests, validate_document
from stellarstack.api.references import check_references
from stellarstack.api.workload import build_workload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOCUMENTS: list[Manifest] = load_manifests(EXAMPLES)
SCHEMAS = {
    kind: build_crd(model)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for kind, model in KINDS.items()
}


def _id(document: Manifest) -> str:
    path, index, body = document
    return f"{path.name}#{index}-{body.get('kind')}-{body.get('metadata', {}).get('name')}"


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [body for _, _, body in DOCUMENTS if body.get("kind") == kind]


BLUEPRINTS = {
    body["metadata"]["name"]: Blueprint.model_validate(body) for body in of_kind("Blueprint")
}
GAMESERVERS = [GameServer.model_validate(body) for body in of_kind("GameServer")]


def test_the_examples_cover_the_games_users_start_from() -> None:
    assert {
        "toy",
        "armagetronad",
        "openttd",
        "minecraft-paper",
        "terraria-vanilla",
        "valheim",
        "factorio",
    } <= set(BLUEPRINTS)
    assert of_kind("Backup"), "an example Backup"
    assert of_kind("Schedule"), "an example Schedule"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_id)
def test_document_is_valid_for_the_models(document: Manifest) -> None:
    assert validate_document(document[2]) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=_id)
def test_document_is_valid_for_the_crd_schema(document: Manifest) -> None:
    body = document[2]
    validator = OAS30Validator(SCHEMAS[body["kind"]])
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]
    assert errors == []


@pytest.mark.parametrize("gameserver", GAMESERVERS, ids=lambda g: g.metadata.name)
def test_gameserver_fits_its_example_blueprint(gameserver: GameServer) -> None:
    name = gameserver.metadata.name or ""
    assert DNS1035_LABEL.match(name)
    assert len(name) <= MAX_GAMESERVER_NAME
    blueprint = BLUEPRINTS.get(gameserver.spec.blueprint)
    assert blueprint is not None, f"no example Blueprint {gameserver.spec.blueprint}"
    assert check_variable_values(blueprint.spec, gameserver.spec.variables) == []
    # What a server owner could send through the panel must pass the user rules as well.
    editable = {
        env: value
        for env, value in gameserver.spec.variables.items()
        if blueprint.spec.variable(env) is not None
    }
    assert check_variable_values(blueprint.spec, editable, as_user=True) == []
    if gameserver.spec.image is not None:
        labels = {image.name for image in blueprint.spec.images}
        references = {image.image for image in blueprint.spec.images}
        assert gameserver.spec.image in labels | references
    if gameserver.spec.startup_command is not None:
        assert gameserver.spec.startup_command in {c.name for c in blueprint.spec.startup_commands}
    # The whole way to a runnable workload: startup rendering, ports, probes, config files.
    workload = build_workload(gameserver, blueprint)
    assert workload.argv
    assert workload.image in {image.image for image in blueprint.spec.images}


@pytest.mark.parametrize("name", sorted(BLUEPRINTS))
def test_example_blueprint_declares_the_ports_its_game_listens_on(name: str) -> None:
    """A server made from the blueprint alone is reachable: the defaults name a primary port,
    and the game learns each number the way the blueprint says."""
    spec = BLUEPRINTS[name].spec
    primary = spec.primary_port()
    assert primary is not None
    assert primary.primary
    templates = [c.command for c in spec.startup_commands] + [
        edit.value or "" for file in spec.config_files for edit in file.edits
    ]
    # Every example game reads its primary port's number from the environment.
    assert primary.variable is not None
    if primary.variable == "SERVER_PORT":
        assert any("{{SERVER_PORT}}" in text for text in templates)
    for port in spec.ports:
        if port.variable not in (None, "SERVER_PORT"):
            variable = spec.variable(port.variable)
            assert variable is not None
            assert variable.default == str(port.port)


@pytest.mark.parametrize("gameserver", GAMESERVERS, ids=lambda g: g.metadata.name)
def test_example_gameserver_lists_its_blueprint_default_ports(gameserver: GameServer) -> None:
    defaults = BLUEPRINTS[gameserver.spec.blueprint].spec.default_game_ports()
    listed = [(p.name, p.port, p.protocol) for p in gameserver.spec.ports]
    assert listed == [(p.name, p.port, p.protocol) for p in defaults]


def test_no_cross_document_problems() -> None:
    assert check_references(DOCUMENTS) == []


def test_every_example_blueprint_is_used() -> None:
    used = {gameserver.spec.blueprint for gameserver in GAMESERVERS}
    assert set(BLUEPRINTS) <= used


@pytest.mark.parametrize("kind", ["Backup", "Schedule"])
def test_backups_and_schedules_name_an_example_gameserver(kind: str) -> None:
    names = {gameserver.metadata.name for gameserver in GAMESERVERS}
    for body in of_kind(kind):
        assert body["spec"]["gameServer"] in names


def test_names_are_unique_per_kind() -> None:
    seen = [(body["kind"], body["metadata"]["name"]) for _, _, body in DOCUMENTS]
    assert len(seen) == len(set(seen))


def test_blueprints_are_cluster_scoped_and_the_rest_namespace_free() -> None:
    """Namespaced examples leave the namespace to `kubectl apply -n`, so they work anywhere."""
    for _, _, body in DOCUMENTS:
        assert "namespace" not in body["metadata"], body["metadata"]["name"]


def test_minecraft_refuses_to_run_until_the_eula_is_accepted() -> None:
    survival = next(g for g in GAMESERVERS if g.spec.blueprint == "minecraft-paper")
    variables = dict(survival.spec.variables)
    del variables["MINECRAFT_EULA"]
    problems = check_variable_values(BLUEPRINTS["minecraft-paper"].spec, variables)
    assert problems == ["spec.variables.MINECRAFT_EULA: is required"]
    variables["MINECRAFT_EULA"] = "false"
    problems = check_variable_values(BLUEPRINTS["minecraft-paper"].spec, variables)
    assert problems == ["spec.variables.MINECRAFT_EULA: must be one of: true"]


def test_a_broken_example_would_be_caught() -> None:
    """The checks above are not vacuous: bend one example and they fail with the field path."""
    body = copy.deepcopy(of_kind("GameServer")[0])
    body["spec"]["ports"][0]["port"] = 0
    assert validate_document(body) == [
        "spec.ports[0].port: Input should be greater than or equal to 1"
    ]
    errors = list(OAS30Validator(SCHEMAS["GameServer"]).iter_errors(body))
    assert [list(e.absolute_path) for e in errors] == [["spec", "ports", 0, "port"]]
