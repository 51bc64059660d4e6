"""The rendered config-file plans as a JSON document: round trip, and refusals naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stellarstack.api.blueprint import ConfigParser
from stellarstack.api.configfiles import ConfigEditError, plans_from_json, plans_to_json
from stellarstack.api.workload import ConfigEditPlan, ConfigFilePlan

PLANS = (
    ConfigFilePlan(
        path="server.properties",
        parser=ConfigParser.PROPERTIES,
        edits=(
            ConfigEditPlan("server-port", "25565", ()),
            ConfigEditPlan("motd", 'ünïcode "quoted"\nnext', ()),
        ),
    ),
    ConfigFilePlan(
        path="config/paper.yml",
        parser=ConfigParser.YAML,
        edits=(ConfigEditPlan("a.b", None, (("regex:^t", "false"), ("x", "y"))),),
    ),
    ConfigFilePlan(
        path="start.txt", parser=ConfigParser.FILE, edits=(ConfigEditPlan("", "x", ()),)
    ),
)


def test_round_trip_keeps_every_field() -> None:
    assert plans_from_json(plans_to_json(PLANS)) == PLANS
    assert plans_from_json(plans_to_json(())) == ()


def test_document_is_deterministic() -> None:
    # The document is part of the Pod spec: the same plans must give the same text.
    assert plans_to_json(PLANS) == plans_to_json(list(PLANS))
    assert json.loads(plans_to_json(PLANS))["version"] == 1


def good() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(plans_to_json(PLANS))
    return loaded


def bent(change: str) -> str:
    doc = good()
    edit = doc["files"][0]["edits"][0]
    if change == "version":
        doc["version"] = 2
    elif change == "files":
        doc["files"] = {}
    elif change == "path-absolute":
        doc["files"][0]["path"] = "/etc/passwd"
    elif change == "path-dotdot":
        doc["files"][0]["path"] = "config/../../x"
    elif change == "path-type":
        doc["files"][0]["path"] = 7
    elif change == "parser":
        doc["files"][0]["parser"] = "toml"
    elif change == "edits":
        doc["files"][0]["edits"] = None
    elif change == "key":
        del edit["key"]
    elif change == "value":
        edit["value"] = 3
    elif change == "replacements":
        edit["replacements"] = [["only-match"]]
    elif change == "replacement-type":
        edit["replacements"] = [["m", False]]
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("version", "version: 2 is not supported"),
        ("files", "files: expected a list"),
        ("path-absolute", "files[0].path: '/etc/passwd' must be relative"),
        ("path-dotdot", "files[0].path: .* must not contain '..'"),
        ("path-type", r"files\[0\].path: expected a string, not int"),
        ("parser", r"files\[0\].parser: 'toml' is not one of properties, ini"),
        ("edits", r"files\[0\].edits: expected a list"),
        ("key", r"files\[0\].edits\[0\].key: expected a string, not NoneType"),
        ("value", r"files\[0\].edits\[0\].value: expected a string, not int"),
        ("replacements", r"files\[0\].edits\[0\].replacements\[0\]: expected \[match, value\]"),
        ("replacement-type", r"files\[0\].edits\[0\].replacements\[0\]\[1\]: expected a string"),
    ],
)
def test_bad_documents_are_refused_naming_the_field(change: str, message: str) -> None:
    with pytest.raises(ConfigEditError, match=message.replace("[0]", r"\[0\]")):
        plans_from_json(bent(change))


@pytest.mark.parametrize("text", ["", "not json", "[]", "null"])
def test_not_a_plans_document(text: str) -> None:
    with pytest.raises(ConfigEditError, match="config-file plans"):
        plans_from_json(text)
