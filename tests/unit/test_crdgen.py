"""The generated CRDs: current, structural, valid Kubernetes objects, faithful to the models."""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from stellarstack.api.backup import Backup
from stellarstack.api.blueprint import Blueprint
from stellarstack.api.common import Resource
from stellarstack.api.crdgen import (
    CEL_RULES,
    MODELS,
    PRINTER_COLUMNS,
    build_all_crds,
    build_crd,
    ecma_pattern,
    render_yaml,
    stale_crds,
    structural_problems,
    write_crds,
)
from stellarstack.api.gameserver import GameServer
from stellarstack.api.manifests import validate_document
from stellarstack.api.schedule import Schedule

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
# The oldest Kubernetes we support: CEL validation rules are GA from 1.29 on. (The 1.27 schema
# of CustomResourceDefinition lacks the rules' `fieldPath`, so this check has teeth.)
KUBERNETES_VERSION = "1.29"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

BLUEPRINT: dict[str, Any] = {
    "apiVersion": "stellarstack.io/v1alpha1",
    "kind": "Blueprint",
    "metadata": {"name": "toy"},
    "spec": {
        "displayName": "Toy server",
        "images": [{"name": "Toy", "image": "localhost/stellarstack/toy:1"}],
        "startupCommands": [{"name": "Default", "command": "/usr/local/bin/toy"}],
        "variables": [
            {"env": "TOY_NAME", "name": "Server name", "default": "Toy", "userEditable": True},
        ],
        "stop": {"type": "Command", "command": "stop"},
        "readiness": {"consolePatterns": ["ready"]},
        "configFiles": [
            {
                "path": "toy.properties",
                "parser": "properties",
                "edits": [{"key": "name", "value": "{{TOY_NAME}}"}],
            }
        ],
    },
}
GAMESERVER: dict[str, Any] = {
    "apiVersion": "stellarstack.io/v1alpha1",
    "kind": "GameServer",
    "metadata": {"name": "toy-1", "namespace": "games"},
    "spec": {
        "blueprint": "toy",
        "variables": {"TOY_NAME": "My toy"},
        "resources": {"cpu": "500m", "memory": 536870912, "disk": "1Gi"},
        "ports": [
            {"name": "game", "port": 7777, "protocol": "TCPUDP"},
            {"name": "query", "port": 7778, "protocol": "UDP", "hostPort": 27015},
        ],
    },
}
BACKUP: dict[str, Any] = {
    "apiVersion": "stellarstack.io/v1alpha1",
    "kind": "Backup",
    "metadata": {"name": "toy-1-manual", "namespace": "games"},
    "spec": {"gameServer": "toy-1", "compression": "gzip", "ignore": ["logs/*"]},
}
SCHEDULE: dict[str, Any] = {
    "apiVersion": "stellarstack.io/v1alpha1",
    "kind": "Schedule",
    "metadata": {"name": "toy-1-nightly", "namespace": "games"},
    "spec": {
        "gameServer": "toy-1",
        "cron": "0 4 * * *",
        "timeZone": "Europe/Berlin",
        "tasks": [
            {"action": "Command", "command": "say restart in 1 minute"},
            {"action": "Power", "power": "restart", "delaySeconds": 60},
            {"action": "Backup", "backup": {"compression": "zstd"}},
        ],
        "retention": {"keepLast": 3, "keepDaily": 7},
    },
}
SAMPLES: dict[str, dict[str, Any]] = {
    "GameServer": GAMESERVER,
    "Blueprint": BLUEPRINT,
    "Backup": BACKUP,
    "Schedule": SCHEDULE,
}


def with_status(kind: str) -> dict[str, Any]:
    """The sample with a status as a runtime would write it, through the model's own dump."""
    document = copy.deepcopy(SAMPLES[kind])
    document["status"] = {
        "GameServer": {
            "state": "Running",
            "address": "192.0.2.10",
            "node": "node-a",
            "ports": [{"name": "game", "protocol": "TCP", "port": 7777, "containerPort": 7777}],
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": NOW}],
            "startedAt": NOW,
        },
        "Blueprint": {"phase": "Ready"},
        "Backup": {"phase": "Completed", "sizeBytes": 1234, "sha256": "a" * 64},
        "Schedule": {"lastRunAt": NOW, "nextRunAt": NOW, "lastResult": "Succeeded"},
    }[kind]
    model = {cls.KIND: cls for cls in MODELS}[kind]
    return model.model_validate(document).to_wire()


def crd_schema(kind: str) -> dict[str, Any]:
    model = {cls.KIND: cls for cls in MODELS}[kind]
    schema: dict[str, Any] = build_crd(model)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def schema_errors(kind: str, document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(path, message) of each error, the path as `spec.ports[0].port`."""
    validator = OAS30Validator(crd_schema(kind))
    return sorted(
        (_path(error.absolute_path), error.message) for error in validator.iter_errors(document)
    )


def _path(parts: Any) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def walk(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema node below (and including) `node`, with its path."""
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from walk(child, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), Mapping):
        yield from walk(node["items"], f"{path}[*]")
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from walk(node["additionalProperties"], f"{path}.*")


KINDS = [model.KIND for model in MODELS]


# ---------------------------------------------------------------------------------------------
# Generated files


def test_committed_crds_match_the_models() -> None:
    generated = build_all_crds()
    committed = {path.name for path in CRD_DIR.glob("*.yaml")}
    assert committed == set(generated), "CRD files differ from the kinds; run `make crds`"
    for name, manifest in generated.items():
        text = (CRD_DIR / name).read_text(encoding="utf-8")
        assert text == render_yaml(manifest), f"crds/{name} is stale; run `make crds`"


def test_rendering_is_stable_plain_yaml() -> None:
    for manifest in build_all_crds().values():
        text = render_yaml(manifest)
        assert text == render_yaml(copy.deepcopy(manifest))
        assert yaml.safe_load(text) == manifest
        # Anchors and aliases would make the files hard to read and diff.
        assert not re.search(r"[&*]id\d+", text)
        assert not _non_empty_flow_collections(text), "flow style crept in"


def _non_empty_flow_collections(text: str) -> list[str]:
    events = list(yaml.parse(text))
    starts = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
    ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    return [
        str(event.start_mark)
        for event, following in itertools.pairwise(events)
        if isinstance(event, starts) and event.flow_style and not isinstance(following, ends)
    ]


def test_write_and_stale(tmp_path: Path) -> None:
    assert sorted(stale_crds(tmp_path)) == sorted(build_all_crds())
    assert len(write_crds(tmp_path)) == len(MODELS)
    assert stale_crds(tmp_path) == []
    assert write_crds(tmp_path) == [], "unchanged files are not rewritten"
    edited = tmp_path / "gameservers.stellarstack.io.yaml"
    edited.write_text(edited.read_text() + "# local edit\n")
    assert stale_crds(tmp_path) == ["gameservers.stellarstack.io.yaml"]
    assert write_crds(tmp_path) == [edited]


# ---------------------------------------------------------------------------------------------
# The manifests as Kubernetes objects


@pytest.mark.parametrize("model", MODELS, ids=KINDS)
def test_crd_is_a_valid_customresourcedefinition(model: type[Resource]) -> None:
    kubernetes_validate.validate(build_crd(model), KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("model", MODELS, ids=KINDS)
def test_crd_names_scope_and_columns(model: type[Resource]) -> None:
    crd = build_crd(model)
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{model.PLURAL}.stellarstack.io"
    assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "stellarstack"
    assert spec["scope"] == ("Namespaced" if model.NAMESPACED else "Cluster")
    assert spec["names"]["shortNames"] == list(model.SHORT_NAMES)
    assert spec["names"]["categories"] == ["stellarstack"]
    assert spec["names"]["listKind"] == f"{model.KIND}List"
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"][-1]["name"] == "Age"


def test_blueprints_are_cluster_scoped() -> None:
    assert build_crd(Blueprint)["spec"]["scope"] == "Cluster"
    assert build_crd(GameServer)["spec"]["scope"] == "Namespaced"


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    assert structural_problems(crd_schema(kind)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_property_is_described(kind: str) -> None:
    """`kubectl explain gameserver.spec.ports` has something to say about every field."""
    undescribed = [
        path
        for path, node in walk(crd_schema(kind))
        # Kubernetes forbids describing metadata (ObjectMeta explains itself); list items and
        # map values are described by the field that holds them.
        if path
        and not path.startswith("metadata")
        and not path.endswith(("[*]", ".*"))
        and not str(node.get("description", "")).strip()
    ]
    assert undescribed == []


@pytest.mark.parametrize("kind", KINDS)
def test_defaults_are_valid_for_their_field(kind: str) -> None:
    """The API server refuses a CRD whose defaults its own schema would reject."""
    for path, node in walk(crd_schema(kind)):
        if "default" in node:
            errors = list(OAS30Validator(node).iter_errors(node["default"]))
            assert errors == [], f"{path}: default {node['default']!r} is invalid"


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_resolve(kind: str) -> None:
    document = with_status(kind)
    document["metadata"]["creationTimestamp"] = NOW.isoformat()
    for column in PRINTER_COLUMNS[kind]:
        value = resolve(document, column["jsonPath"])
        assert value is not None, f"{column['name']}: {column['jsonPath']} resolves to nothing"
        if column["type"] == "integer":
            assert isinstance(value, int)


def resolve(document: Any, json_path: str) -> Any:
    """The simple JSONPath subset printer columns use: `.a.b[0].c`."""
    value = document
    for name, index in re.findall(r"\.(\w+)|\[(\d+)\]", json_path):
        try:
            value = value[name] if name else value[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def test_metadata_name_is_limited_per_kind() -> None:
    name = crd_schema("GameServer")["properties"]["metadata"]["properties"]["name"]
    assert name["maxLength"] == GameServer.MAX_NAME_LENGTH == 45
    assert re.fullmatch(name["pattern"], "mc-1")
    assert not re.fullmatch(name["pattern"], "1-mc"), "GameServer names start with a letter"
    blueprint_name = crd_schema("Blueprint")["properties"]["metadata"]["properties"]["name"]
    assert blueprint_name["maxLength"] == 63


def test_cross_field_rules_are_attached() -> None:
    spec = crd_schema("GameServer")["properties"]["spec"]
    assert spec["x-kubernetes-validations"]
    assert spec["properties"]["placement"]["x-kubernetes-validations"]
    assert spec["properties"]["ports"]["x-kubernetes-list-type"] == "map"
    assert spec["properties"]["ports"]["x-kubernetes-list-map-keys"] == ["name"]
    tasks = crd_schema("Schedule")["properties"]["spec"]["properties"]["tasks"]
    assert len(tasks["items"]["x-kubernetes-validations"]) == len(CEL_RULES["Task"])


# ---------------------------------------------------------------------------------------------
# Objects against the schema


@pytest.mark.parametrize("kind", KINDS)
def test_valid_objects_pass(kind: str) -> None:
    assert schema_errors(kind, SAMPLES[kind]) == []
    # The model's full dump, with every default and a status, must be storable as well.
    assert schema_errors(kind, with_status(kind)) == []


def _set(path: str, value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        parts = re.findall(r"\w+", path)
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        target[int(last) if last.isdigit() else last] = value

    return change


@pytest.mark.parametrize(
    ("kind", "change", "path", "message"),
    [
        ("GameServer", _set("spec.ports[0].port", 0), "spec.ports[0].port", "less than"),
        ("GameServer", _set("spec.ports[0].port", 65536), "spec.ports[0].port", "greater than"),
        ("GameServer", _set("spec.ports[1].protocol", "SCTP"), "spec.ports[1].protocol", "not one"),
        ("GameServer", _set("metadata.name", "g" * 300), "metadata.name", "too long"),
        ("GameServer", _set("metadata.name", "9lives"), "metadata.name", "does not match"),
        ("GameServer", _set("spec.blueprint", "Not_A_Name"), "spec.blueprint", "does not match"),
        ("GameServer", _set("spec.resources.cpu", True), "spec.resources.cpu", "not valid"),
        ("GameServer", _set("spec.variables.TOY_NAME", 5), "spec.variables.TOY_NAME", "type"),
        ("GameServer", _set("spec.ports[0].name", "x" * 16), "spec.ports[0].name", "too long"),
        ("Blueprint", _set("spec.images", []), "spec.images", "non-empty"),
        ("Blueprint", _set("spec.stop.type", "Kill"), "spec.stop.type", "not one"),
        (
            "Blueprint",
            _set("spec.variables[0].env", "9BAD"),
            "spec.variables[0].env",
            "does not match",
        ),
        ("Backup", _set("spec.compression", "xz"), "spec.compression", "not one"),
        ("Schedule", _set("spec.tasks[1].delaySeconds", 901), "spec.tasks[1].delaySeconds", ""),
        ("Schedule", _set("spec.retention.keepLast", 0), "spec.retention.keepLast", "less than"),
    ],
)
def test_invalid_objects_fail_naming_the_field(
    kind: str, change: Any, path: str, message: str
) -> None:
    document = copy.deepcopy(SAMPLES[kind])
    change(document)
    errors = schema_errors(kind, document)
    assert [p for p, _ in errors] == [path], errors
    assert message in errors[0][1]
    # The models refuse the same document, naming the same field.
    assert any(problem.startswith(path) for problem in validate_document(document))


def test_unknown_fields_are_refused_by_the_models() -> None:
    """A structural schema cannot say `additionalProperties: false`: the API server prunes unknown
    fields, or refuses them only when the client asks for strict field validation (kubectl does
    by default). The models refuse them always, so every runtime and `stellarstack validate`
    report the typo with its path."""
    document = copy.deepcopy(GAMESERVER)
    document["spec"]["resources"]["memroy"] = "1Gi"
    assert schema_errors("GameServer", document) == []
    assert validate_document(document) == [
        "spec.resources.memroy: unknown field (check its spelling and indentation)"
    ]


@pytest.mark.parametrize(
    ("kind", "change", "rule_owner", "owner_path", "model_problem"),
    [
        (
            "GameServer",
            _set("spec.placement", {"type": "DockerNode"}),
            "Placement",
            "spec.placement",
            "spec.placement.node: required when type is DockerNode",
        ),
        (
            "Blueprint",
            _set("spec.stop", {"type": "Command"}),
            "StopMethod",
            "spec.stop",
            "spec.stop.command: required when type is Command",
        ),
        (
            "Blueprint",
            _set("spec.configFiles[0].edits[0]", {"key": "k"}),
            "ConfigEdit",
            "spec.configFiles[0].edits[0]",
            "spec.configFiles[0].edits[0].value: either value or replacements is required",
        ),
        (
            "Backup",
            _set("spec.storage", {"type": "S3"}),
            "BackupStorage",
            "spec.storage",
            "spec.storage.s3: required when type is S3",
        ),
        (
            "Schedule",
            _set("spec.tasks[0]", {"action": "Power"}),
            "Task",
            "spec.tasks[0]",
            "spec.tasks[0].power: required when action is Power",
        ),
        (
            "Schedule",
            _set("spec.tasks[0]", {"action": "Backup", "power": "stop"}),
            "Task",
            "spec.tasks[0]",
            "spec.tasks[0].power: only allowed when action is Power",
        ),
        (
            "Schedule",
            _set("spec.tasks[0]", {"action": "Power", "power": "stop", "command": "x"}),
            "Task",
            "spec.tasks[0]",
            "spec.tasks[0].command: only allowed when action is Command",
        ),
        (
            "Schedule",
            _set("spec.retention", {}),
            "RetentionPolicy",
            "spec.retention",
            "spec.retention: set at least one of keepLast, keepDaily, keepWeekly",
        ),
    ],
)
def test_cel_rules_mirror_model_checks(
    kind: str, change: Any, rule_owner: str, owner_path: str, model_problem: str
) -> None:
    """Each CEL rule stands for a model check: a document breaking it is refused by the model at
    the same field with the same message. (Running CEL itself needs an API server.)"""
    document = copy.deepcopy(SAMPLES[kind])
    change(document)
    assert model_problem in validate_document(document)
    as_the_api_server_says = {
        f"{owner_path}{rule.get('fieldPath', '')}: {rule['message']}"
        for rule in CEL_RULES[rule_owner]
    }
    assert model_problem in as_the_api_server_says


def test_port_clash_is_refused_by_both() -> None:
    document = copy.deepcopy(GAMESERVER)
    document["spec"]["ports"][1]["port"] = 7777
    assert validate_document(document) == [
        "spec.ports[1].port: UDP 7777 is already used by port game"
    ]
    (rule,) = CEL_RULES["GameServerSpec"]
    assert rule["fieldPath"] == ".ports"


# ---------------------------------------------------------------------------------------------
# The structural checker and pattern translation themselves


def _typed(**extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": {"type": "object", **extra}}}


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "object", "properties": {"a": {}}}, "openAPIV3Schema.a: `type` is required"),
        ({"type": "object", "properties": {"a": {"type": "array"}}}, "needs `items`"),
        ({"type": "object", "properties": {"a": {"$ref": "#/x"}}}, "`$ref` is not allowed"),
        ({"type": "object", "definitions": {}}, "`definitions` is not allowed"),
        (
            _typed(properties={"x": {"type": "string"}}, additionalProperties={"type": "string"}),
            "mutually exclusive",
        ),
        (_typed(additionalProperties=False), "additionalProperties: false"),
        (
            _typed(anyOf=[{"type": "string", "nullable": True}]),
            "`nullable` is not allowed inside a value validation",
        ),
        (_typed(anyOf=[{"description": "x"}]), "`description` is not allowed inside"),
        (_typed(anyOf=[{"properties": {"z": {}}}]), "property z must also be specified outside"),
        ({"type": "object", "properties": {"a": {"type": "null"}}}, "`type` must be one of"),
        (
            {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?P<n>a)"}}},
            "pattern",
        ),
        ({"type": "object", "properties": {"a": {"type": "string", "const": "x"}}}, "unknown"),
        (
            {
                "type": "object",
                "properties": {
                    "a": {"type": "array", "uniqueItems": True, "items": {"type": "string"}}
                },
            },
            "uniqueItems",
        ),
        (
            {
                "type": "object",
                "properties": {
                    "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}
                },
            },
            "only name and generateName",
        ),
        (
            {"type": "object", "properties": {"metadata": {"type": "object", "description": "x"}}},
            "only name and generateName",
        ),
        (
            {
                "type": "object",
                "properties": {
                    "a": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "boolean"}]}
                },
            },
            "x-kubernetes-int-or-string allows only",
        ),
        (
            {
                "type": "object",
                "properties": {
                    "a": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                    }
                },
            },
            "must be required or have a default",
        ),
        ({"type": "string"}, "the root must be `type: object`"),
    ],
)
def test_structural_problems_finds(schema: dict[str, Any], problem: str) -> None:
    problems = structural_problems(schema)
    assert any(problem in p for p in problems), problems


def test_int_or_string_and_free_form_are_structural() -> None:
    schema = {
        "type": "object",
        "properties": {
            "q": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            },
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    assert structural_problems(schema) == []


@pytest.mark.parametrize(
    ("python", "portable"),
    [
        (r"^[a-z]+$", r"^[a-z]+$"),
        (r"\A[a-z]+\Z", r"^[a-z]+$"),
        (r"^(?P<number>\d+)(?P<unit>Mi|Gi)?$", r"^(\d+)(Mi|Gi)?$"),
        (r"^(?!admin)[a-z]+$", None),
        (r"^(a)\1$", None),
        (r"(?i)^abc$", None),
    ],
)
def test_ecma_pattern(python: str, portable: str | None) -> None:
    assert ecma_pattern(python) == portable


def test_dns_shapes_reach_the_schema_without_changing_model_messages() -> None:
    backup = crd_schema("Backup")["properties"]["spec"]["properties"]["gameServer"]
    assert backup["maxLength"] == 253
    assert "pattern" in backup
    document = copy.deepcopy(BACKUP)
    document["spec"]["gameServer"] = "Bad Name"
    (problem,) = validate_document(document)
    assert problem.startswith("spec.gameServer: must be a DNS-1123 subdomain")
    assert Backup.model_validate(BACKUP).spec.game_server == "toy-1"
    assert Schedule.model_validate(SCHEDULE).spec.tasks[0].command
