"""CustomResourceDefinitions generated from the models, so the models stay the only contract.

Pydantic writes JSON Schema (draft 2020-12); the API server wants a *structural* OpenAPI v3
schema: every node typed, everything inlined, no `$ref`, no `anyOf` that changes a type, unknown
fields pruned instead of refused. `kubernetes_schema` turns one into the other and refuses
anything it cannot express faithfully, so a model change that the API server could not enforce
fails at `make crds` instead of in a cluster.

The API server enforces a subset of what the models check (types, enums, bounds, patterns, names,
and the cheap cross-field rules in `CEL_RULES`); the models stay the complete check, and every
runtime validates with them before acting.

Everything here is pure except `write_crds` and `stale_crds`, which read and write the generated
files for `stellarstack crds --write/--check`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from stellarstack.api.backup import Backup
from stellarstack.api.blueprint import Blueprint
from stellarstack.api.common import Resource
from stellarstack.api.constants import CATEGORY, GROUP, VERSION
from stellarstack.api.gameserver import GameServer
from stellarstack.api.schedule import Schedule

Schema = dict[str, Any]

MODELS: Final[tuple[type[Resource], ...]] = (GameServer, Blueprint, Backup, Schedule)

LABELS: Final = {"app.kubernetes.io/part-of": "stellarstack"}

HEADER: Final = (
    "# Generated from the models in stellarstack.api by `make crds`; do not edit by hand.\n"
)


def _rule(rule: str, message: str, field: str | None = None) -> Schema:
    """One CEL validation; `field` (e.g. `.node`) is where the API server reports it."""
    validation: Schema = {"rule": rule, "message": message}
    if field is not None:
        validation["fieldPath"] = field
    return validation


# Cross-field rules the API server checks with CEL (GA since Kubernetes 1.29; `fieldPath` needs
# 1.28+), keyed by the model class they sit on. They mirror model validators with the same
# messages, so `kubectl apply` refuses what a runtime would otherwise only report later; the
# models remain the complete check. Lists are bounded by `maxItems` and strings by
# `maxLength`/`enum`, which keeps the API server's cost estimate far below its limit.
CEL_RULES: Final[Mapping[str, tuple[Schema, ...]]] = {
    "GameServerSpec": (
        # Unique names need no rule: `spec.ports` is a list-map keyed by name (see LIST_MAPS).
        _rule(
            "!has(self.ports) || self.ports.all(p, self.ports.exists_one(q, q.port == p.port "
            "&& (q.protocol == p.protocol || q.protocol == 'TCPUDP' || p.protocol == 'TCPUDP')))",
            "each port number may be used once per protocol",
            ".ports",
        ),
    ),
    "BlueprintSpec": (
        _rule(
            "!has(self.ports) || self.ports.all(p, self.ports.exists_one(q, q.port == p.port "
            "&& (q.protocol == p.protocol || q.protocol == 'TCPUDP' || p.protocol == 'TCPUDP')))",
            "each port number may be used once per protocol",
            ".ports",
        ),
        _rule(
            "!has(self.ports) || self.ports.filter(p, has(p.primary) && p.primary).size() <= 1",
            "only one port can be primary",
            ".ports",
        ),
    ),
    "Placement": (
        _rule(
            "self.type != 'DockerNode' || has(self.node)",
            "required when type is DockerNode",
            ".node",
        ),
    ),
    "StopMethod": (
        _rule(
            "self.type != 'Command' || has(self.command)",
            "required when type is Command",
            ".command",
        ),
    ),
    "ConfigEdit": (
        _rule(
            "has(self.value) || (has(self.replacements) && size(self.replacements) > 0)",
            "either value or replacements is required",
            ".value",
        ),
    ),
    "BackupStorage": (
        _rule("self.type != 'S3' || has(self.s3)", "required when type is S3", ".s3"),
    ),
    "Task": (
        _rule(
            "self.action != 'Power' || has(self.power)",
            "required when action is Power",
            ".power",
        ),
        _rule(
            "self.action == 'Power' || !has(self.power)",
            "only allowed when action is Power",
            ".power",
        ),
        _rule(
            "self.action != 'Command' || has(self.command)",
            "required when action is Command",
            ".command",
        ),
        _rule(
            "self.action == 'Command' || !has(self.command)",
            "only allowed when action is Command",
            ".command",
        ),
        _rule(
            "self.action == 'Backup' || !has(self.backup)",
            "only allowed when action is Backup",
            ".backup",
        ),
    ),
    "RetentionPolicy": (
        _rule(
            "has(self.keepLast) || has(self.keepDaily) || has(self.keepWeekly)",
            "set at least one of keepLast, keepDaily, keepWeekly",
        ),
    ),
}


# Lists whose items are identified by keys (`x-kubernetes-list-type: map`), by path in the kind.
# The API server then refuses duplicate keys itself, and server-side apply merges entries by key
# instead of replacing the whole list: GitOps and the panel can each own different ports.
LIST_MAPS: Final[Mapping[str, tuple[str, ...]]] = {
    "spec.ports": ("name",),
    "status.conditions": ("type",),
}


def _column(name: str, json_path: str, kind: str = "string", description: str = "") -> Schema:
    column: Schema = {"name": name, "type": kind, "jsonPath": json_path}
    if description:
        column["description"] = description
    return column


_AGE = _column("Age", ".metadata.creationTimestamp", "date")

PRINTER_COLUMNS: Final[Mapping[str, tuple[Schema, ...]]] = {
    "GameServer": (
        _column("State", ".status.state", description="Where the server is in its lifecycle"),
        _column("Address", ".status.address", description="Address players connect to"),
        _column("Port", ".status.ports[0].port", "integer", "The primary port at the address"),
        _column("Node", ".status.node", description="Node running the server"),
        _AGE,
    ),
    "Blueprint": (
        _column("Display Name", ".spec.displayName"),
        _column("Phase", ".status.phase"),
        _AGE,
    ),
    "Backup": (
        _column("GameServer", ".spec.gameServer"),
        _column("Phase", ".status.phase"),
        _column("Size", ".status.sizeBytes", "integer", "Archive size in bytes"),
        _AGE,
    ),
    "Schedule": (
        _column("GameServer", ".spec.gameServer"),
        _column("Cron", ".spec.cron"),
        _column("Next Run", ".status.nextRunAt", "date"),
        _column("Last Result", ".status.lastResult"),
        _AGE,
    ),
}

# Keywords of JSON Schema that carry over to the API server's OpenAPI v3 dialect unchanged.
_KEPT_KEYWORDS: Final = frozenset(
    {
        "type",
        "description",
        "enum",
        "format",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
        "required",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
    }
)
# Keywords that only annotate (titles, examples) or that pruning replaces (additionalProperties:
# false): dropped without loss of meaning.
_DROPPED_KEYWORDS: Final = frozenset({"title", "examples", "$schema", "additionalProperties"})
# Formats the API server knows (k8s.io/kube-openapi strfmt); others would only be ignored there.
_KNOWN_FORMATS: Final = frozenset(
    {
        "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid",
        "uuid3", "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor",
        "rgbcolor", "byte", "password", "date", "duration", "datetime", "date-time",
        "int32", "int64", "float", "double",
    }
)  # fmt: skip
_NULL: Final = {"type": "null"}
_INT_OR_STRING: Final[Schema] = {
    "x-kubernetes-int-or-string": True,
    "anyOf": [{"type": "integer"}, {"type": "string"}],
}


class CrdGenerationError(ValueError):
    """A model construct that a structural schema cannot express; the message names the path."""


# ---------------------------------------------------------------------------------------------
# Schema conversion


def kubernetes_schema(model: type[Resource]) -> Schema:
    """The structural `openAPIV3Schema` of one kind, built from its model's JSON Schema."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: Mapping[str, Schema] = raw.get("$defs", {})
    properties = raw["properties"]
    schema: Schema = {
        "type": "object",
        "description": _text(raw.get("description", "")),
        "properties": {
            # Plain strings, as in every built-in kind: the API server sets and checks them.
            "apiVersion": {
                "type": "string",
                "description": "The API version, `stellarstack.io/v1alpha1`.",
            },
            "kind": {"type": "string", "description": f"The kind, `{model.KIND}`."},
            "metadata": metadata_schema(model),
        },
        "required": sorted(set(raw.get("required", ())) & {"spec"}),
    }
    for name in ("spec", "status"):
        if name in properties:
            schema["properties"][name] = _convert(properties[name], defs, name, ())
    unknown = set(properties) - {"apiVersion", "kind", "metadata", "spec", "status"}
    if unknown:
        raise CrdGenerationError(f"{model.KIND}: unexpected top-level fields {sorted(unknown)}")
    return schema


def metadata_schema(model: type[Resource]) -> Schema:
    """`metadata` restricted as far as Kubernetes allows: only `name` and `generateName`.

    The name limits make the API server refuse a name that child objects could not carry
    (e.g. a 300-character GameServer) at `kubectl apply`, not later in the operator.
    """
    name: Schema = {"type": "string", "maxLength": model.MAX_NAME_LENGTH}
    pattern = ecma_pattern(model.NAME_PATTERN.pattern)
    if pattern is not None:
        name["pattern"] = pattern
    return {"type": "object", "properties": {"name": name}}


def _convert(node: Schema, defs: Mapping[str, Schema], path: str, seen: tuple[str, ...]) -> Schema:
    """One JSON Schema node as a structural schema node, with `$ref`s inlined."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            raise CrdGenerationError(f"{path}: recursive type {name} cannot be inlined")
        target = _convert(defs[name], defs, path, (*seen, name))
        rules = CEL_RULES.get(name)
        if rules:
            target["x-kubernetes-validations"] = [dict(rule) for rule in rules]
        # The field's own description and default win over the referenced type's.
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _merge(target, _convert(siblings, defs, path, seen) if siblings else {})
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        return _convert_union(node, defs, path, seen)
    for keyword in ("oneOf", "allOf", "not", "prefixItems", "patternProperties"):
        if keyword in node:
            raise CrdGenerationError(f"{path}: `{keyword}` has no structural equivalent")

    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS or key in ("properties", "items", "const", "default"):
            continue
        if key == "description":
            out[key] = _text(value)
        elif key == "pattern":
            pattern = ecma_pattern(value)
            if pattern is not None:
                out[key] = pattern
        elif key == "format":
            if value in _KNOWN_FORMATS:
                out[key] = value
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            # Draft 2020-12 gives the bound; OpenAPI v3.0 gives a flag beside minimum/maximum.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "uniqueItems":
            # Refused by the API server (quadratic); the models check uniqueness instead.
            continue
        elif key == "anyOf":
            out[key] = value  # the int-or-string shape, already structural
        elif key in _KEPT_KEYWORDS:
            out[key] = value
        else:
            raise CrdGenerationError(f"{path}: JSON Schema keyword `{key}` is not supported")
    if "const" in node:
        out["enum"] = [node["const"]]
    if out.get("enum") and out.get("type") == "string" and "maxLength" not in out:
        # An enum bounds the length anyway; saying so keeps CEL cost estimates small.
        out["maxLength"] = max(len(str(value)) for value in out["enum"])
    if "properties" in node:
        out["properties"] = {}
        for name, child in node["properties"].items():
            converted = _convert(child, defs, f"{path}.{name}", seen)
            keys = LIST_MAPS.get(f"{path}.{name}")
            if keys is not None:
                converted["x-kubernetes-list-type"] = "map"
                converted["x-kubernetes-list-map-keys"] = list(keys)
            out["properties"][name] = converted
        if "required" in out:
            out["required"] = sorted(out["required"])
    if "items" in node:
        out["items"] = _convert(node["items"], defs, f"{path}[]", seen)
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        if "properties" in node:
            raise CrdGenerationError(f"{path}: properties and additionalProperties together")
        out["additionalProperties"] = _convert(additional, defs, f"{path}.*", seen)
    elif out.get("type") == "object" and "properties" not in node and additional is not False:
        # A free-form object (dict[str, Any]): the one place unknown fields are kept on purpose.
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "default" in node and node["default"] is not None:
        out["default"] = node["default"]
    return out


def _convert_union(
    node: Schema, defs: Mapping[str, Schema], path: str, seen: tuple[str, ...]
) -> Schema:
    """`X | None` becomes X; `int | float` becomes number; `int | str` becomes int-or-string."""
    branches = [b for b in node["anyOf"] if b != _NULL]
    allows_null = len(branches) < len(node["anyOf"])
    siblings = {k: v for k, v in node.items() if k != "anyOf"}
    converted = [_convert(b, defs, path, seen) for b in branches]
    types = {b.get("type") for b in converted}
    if len(converted) == 1:
        base = converted[0]
    elif types <= {"integer", "number"}:
        base = {"type": "number"}
    elif types == {"integer", "string"}:
        base = dict(_INT_OR_STRING)
    else:
        raise CrdGenerationError(f"{path}: a union of {sorted(map(str, types))} is not structural")
    out = _merge(base, _convert(siblings, defs, path, seen) if siblings else {})
    # Non-nullable fields lose an explicit null to pruning, which is what the models do with it
    # (null and absent both mean the default). Only a field whose default is not null needs null
    # to survive, so that "explicitly nothing" stays distinguishable.
    if allows_null and node.get("default") is not None:
        out["nullable"] = True
    return out


def _merge(base: Schema, override: Schema) -> Schema:
    merged = dict(base)
    merged.update(override)
    return merged


def _text(description: str) -> str:
    # Docstrings are wrapped for the source's line length; the wrapping carries no meaning.
    return " ".join(description.split())


# Python-only regular expression syntax and its ECMA-262/RE2 spelling. The API server compiles
# patterns with Go's RE2, clients with ECMA-262; both must accept what we emit.
_PY_ONLY_REWRITES: Final = ((r"\A", "^"), (r"\Z", "$"), ("(?P<", "(?<"))
_UNSUPPORTED: Final = re.compile(r"\(\?[=!]|\(\?<[=!]|\(\?[aiLmsux]|\\[1-9]|\(\?P=|\\[gk]<|\(\?\(")


def ecma_pattern(pattern: str) -> str | None:
    """The pattern in syntax Go's RE2 and ECMA-262 both accept, or None when it has none.

    None means the check stays in the model only: lookarounds, back-references and inline flags
    have no RE2 equivalent.
    """
    for python, portable in _PY_ONLY_REWRITES:
        pattern = pattern.replace(python, portable)
    # RE2 spells named groups `(?P<name>` or `(?<name>` (Go 1.22+); a plain group works everywhere.
    pattern = re.sub(r"\(\?<([A-Za-z_]\w*)>", "(", pattern)
    if _UNSUPPORTED.search(pattern):
        return None
    return pattern


# ---------------------------------------------------------------------------------------------
# Manifests


def crd_name(model: type[Resource]) -> str:
    """`<plural>.<group>`, the name Kubernetes requires for the CRD object."""
    return f"{model.PLURAL}.{GROUP}"


def build_crd(model: type[Resource]) -> Schema:
    """The CustomResourceDefinition manifest of one kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name(model), "labels": dict(LABELS)},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced" if model.NAMESPACED else "Cluster",
            "names": {
                "plural": model.PLURAL,
                "singular": model.KIND.lower(),
                "kind": model.KIND,
                "listKind": f"{model.KIND}List",
                "shortNames": list(model.SHORT_NAMES),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": kubernetes_schema(model)},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        dict(column) for column in PRINTER_COLUMNS[model.KIND]
                    ],
                }
            ],
        },
    }


def crd_file_name(model: type[Resource]) -> str:
    """File name of a kind's CRD in the generated folder."""
    return f"{crd_name(model)}.yaml"


def build_all_crds() -> dict[str, Schema]:
    """Every CRD manifest by file name, e.g. `gameservers.stellarstack.io.yaml`."""
    return {crd_file_name(model): build_crd(model) for model in MODELS}


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors: generated files are diffed and read by people."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render_yaml(manifest: Mapping[str, Any]) -> str:
    """The manifest as YAML, byte-for-byte the same for the same input.

    Mapping keys are sorted (their order means nothing); lists keep their order (it does).
    """
    body = yaml.dump(
        manifest,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=True,
        allow_unicode=True,
        width=100,
    )
    return HEADER + body


def write_crds(directory: Path) -> list[Path]:
    """Write every CRD into `directory`; returns the paths written (only files that changed)."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, manifest in build_all_crds().items():
        path = directory / name
        text = render_yaml(manifest)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def stale_crds(directory: Path) -> list[str]:
    """Names of the CRD files in `directory` that are missing or differ from the models."""
    stale: list[str] = []
    for name, manifest in build_all_crds().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render_yaml(manifest):
            stale.append(name)
    return stale


# ---------------------------------------------------------------------------------------------
# Structural-schema check


_TYPES: Final = frozenset({"object", "array", "string", "integer", "number", "boolean"})
# Every field of apiextensions/v1 JSONSchemaProps; anything else is refused by the API server.
_SCHEMA_FIELDS: Final = frozenset(
    {
        "id", "$schema", "$ref", "description", "type", "format", "title", "default", "maximum",
        "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
        "maxItems", "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties",
        "minProperties", "required", "items", "allOf", "oneOf", "anyOf", "not", "properties",
        "additionalProperties", "patternProperties", "dependencies", "additionalItems",
        "definitions", "externalDocs", "example", "nullable",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type",
        "x-kubernetes-validations",
    }
)  # fmt: skip
# Inside anyOf/allOf/oneOf/not only value validations may appear (structural rule 3).
_GENERIC_FIELDS: Final = frozenset(
    {"description", "type", "default", "additionalProperties", "nullable", "title"}
)
_VALUE_VALIDATION_FIELDS: Final = ("anyOf", "allOf", "oneOf")


def structural_problems(schema: Mapping[str, Any]) -> list[str]:
    """Where an `openAPIV3Schema` breaks Kubernetes' structural-schema rules, offline.

    Checks what can be checked without an API server: every node typed (or int-or-string, or
    preserve-unknown-fields), arrays with `items`, no `$ref`/`definitions`, no
    `additionalProperties` beside `properties`, value validations free of types, defaults and
    descriptions, `metadata` restricted to `name`/`generateName`, `nullable` never inside a
    value validation, no `uniqueItems: true`, only keywords the API server knows, and patterns
    without Python-only syntax. CEL rules are not compiled (that needs an API server).
    Each problem starts with the JSON path of the node.
    """
    problems: list[str] = []
    if schema.get("type") != "object":
        problems.append("openAPIV3Schema: the root must be `type: object`")
    _check_node(schema, "openAPIV3Schema", problems)
    metadata = schema.get("properties", {}).get("metadata")
    if metadata is not None:
        problems.extend(_metadata_problems(metadata))
    return problems


def _check_node(node: Mapping[str, Any], path: str, problems: list[str]) -> None:
    unknown = sorted(set(node) - _SCHEMA_FIELDS)
    if unknown:
        problems.append(f"{path}: unknown keywords {unknown}")
    for keyword in ("$ref", "definitions", "id", "$schema", "patternProperties", "dependencies"):
        if keyword in node:
            problems.append(f"{path}: `{keyword}` is not allowed")
    if node.get("uniqueItems") is True:
        problems.append(f"{path}: uniqueItems: true is not allowed (use x-kubernetes-list-type)")
    if node.get("additionalItems") is not None:
        problems.append(f"{path}: additionalItems is not allowed")
    int_or_string = node.get("x-kubernetes-int-or-string")
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if int_or_string is not None and int_or_string is not True:
        problems.append(f"{path}: x-kubernetes-int-or-string must be true when set")
    if preserve is not None and preserve is not True:
        problems.append(f"{path}: x-kubernetes-preserve-unknown-fields must be true when set")
    kind = node.get("type")
    if int_or_string:
        if kind is not None:
            problems.append(f"{path}: x-kubernetes-int-or-string nodes must not set `type`")
        if not _int_or_string_branches_ok(node):
            problems.append(
                f"{path}: x-kubernetes-int-or-string allows only anyOf/allOf of "
                "[{type: integer}, {type: string}]"
            )
    elif kind is None:
        if not preserve:
            problems.append(f"{path}: `type` is required")
    elif kind not in _TYPES:
        problems.append(f"{path}: `type` must be one of {sorted(_TYPES)}, not {kind!r}")
    if kind == "array" and not isinstance(node.get("items"), Mapping):
        problems.append(f"{path}: an array needs `items` (one schema)")
    if kind not in (None, "array") and "items" in node:
        problems.append(f"{path}: `items` only belongs to arrays")
    if kind not in (None, "object") and ("properties" in node or "additionalProperties" in node):
        problems.append(f"{path}: `properties` only belong to objects")
    additional = node.get("additionalProperties")
    if additional is not None:
        if "properties" in node:
            problems.append(f"{path}: additionalProperties and properties are mutually exclusive")
        if additional is False:
            problems.append(f"{path}: additionalProperties: false is not allowed (pruning is)")
    if node.get("x-kubernetes-list-type") == "map":
        problems.extend(_list_map_problems(node, path))
    pattern = node.get("pattern")
    if isinstance(pattern, str) and ecma_pattern(pattern) != pattern:
        problems.append(f"{path}: pattern {pattern!r} uses syntax RE2/ECMA-262 do not accept")
    fmt = node.get("format")
    if fmt is not None and fmt not in _KNOWN_FORMATS:
        problems.append(f"{path}: format {fmt!r} is unknown to Kubernetes")
    enum = node.get("enum")
    if enum is not None and kind == "string" and not all(isinstance(v, str) for v in enum):
        problems.append(f"{path}: enum values must be strings")
    for key, child in (node.get("properties") or {}).items():
        _check_node(child, f"{path}.{key}", problems)
    if isinstance(node.get("items"), Mapping):
        _check_node(node["items"], f"{path}[*]", problems)
    if isinstance(additional, Mapping):
        _check_node(additional, f"{path}.*", problems)
    for keyword in _VALUE_VALIDATION_FIELDS:
        for index, branch in enumerate(node.get(keyword) or ()):
            _check_value_validation(branch, node, f"{path}.{keyword}[{index}]", problems)
    if "not" in node:
        _check_value_validation(node["not"], node, f"{path}.not", problems)


def _list_map_problems(node: Mapping[str, Any], path: str) -> list[str]:
    """A list-map's keys must be scalar properties of its items that are always present."""
    items = node.get("items") or {}
    keys = node.get("x-kubernetes-list-map-keys") or []
    if node.get("type") != "array" or items.get("type") != "object" or not keys:
        return [f"{path}: a list-map needs object items and x-kubernetes-list-map-keys"]
    problems: list[str] = []
    for key in keys:
        prop = (items.get("properties") or {}).get(key)
        if prop is None or prop.get("type") not in ("string", "integer", "boolean"):
            problems.append(f"{path}: list-map key {key} must be a scalar property of the items")
        elif key not in (items.get("required") or []) and "default" not in prop:
            problems.append(f"{path}: list-map key {key} must be required or have a default")
    return problems


def _int_or_string_branches_ok(node: Mapping[str, Any]) -> bool:
    allowed = ([{"type": "integer"}, {"type": "string"}], [{"type": "string"}, {"type": "integer"}])
    for keyword in _VALUE_VALIDATION_FIELDS:
        if keyword in node and node[keyword] not in allowed:
            return False
    return True


def _check_value_validation(
    branch: Mapping[str, Any], parent: Mapping[str, Any], path: str, problems: list[str]
) -> None:
    """Value validations may constrain values but never introduce types or shapes."""
    is_int_or_string = bool(parent.get("x-kubernetes-int-or-string"))
    for key in sorted(set(branch) & _GENERIC_FIELDS):
        if key == "type" and is_int_or_string:
            continue
        problems.append(f"{path}: `{key}` is not allowed inside a value validation")
    for key in branch:
        if key.startswith("x-kubernetes-"):
            problems.append(f"{path}: `{key}` is not allowed inside a value validation")
    parent_properties = parent.get("properties") or {}
    for name in branch.get("properties") or {}:
        if name not in parent_properties:
            problems.append(f"{path}: property {name} must also be specified outside")
    if "items" in branch and "items" not in parent:
        problems.append(f"{path}: items must also be specified outside")


def _metadata_problems(metadata: Mapping[str, Any]) -> list[str]:
    path = "openAPIV3Schema.metadata"
    problems: list[str] = []
    if metadata.get("type") != "object":
        problems.append(f"{path}: must be `type: object`")
    extra = sorted(set(metadata) - {"type", "properties"})
    if extra:
        problems.append(f"{path}: only name and generateName may be restricted, found {extra}")
    for name, child in (metadata.get("properties") or {}).items():
        if name not in ("name", "generateName"):
            problems.append(f"{path}.{name}: only name and generateName may be restricted")
        elif child.get("type") != "string":
            problems.append(f"{path}.{name}: must be `type: string`")
        elif "default" in child:
            problems.append(f"{path}.{name}: must not have a default")
    return problems
