"""Reading YAML manifests and reporting problems as `field.path: message`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stellarstack.api.manifests import (
    KINDS,
    ManifestError,
    format_path,
    load_manifests,
    parse_document,
    validate_document,
)

GAMESERVER = """\
apiVersion: stellarstack.io/v1alpha1
kind: GameServer
metadata: {name: toy}
spec: {blueprint: toy}
"""


def test_load_manifests_counts_documents_as_a_reader_does(tmp_path: Path) -> None:
    file = tmp_path / "games.yaml"
    file.write_text("---\n" + GAMESERVER + "---\n---\n" + GAMESERVER.replace("toy}", "two}", 1))
    loaded = load_manifests(file)
    # The leading `---` opens document 0; the empty document 2 is skipped but counted.
    assert [(path, index) for path, index, _ in loaded] == [(file, 0), (file, 2)]
    assert loaded[1][2]["metadata"]["name"] == "two"


def test_load_manifests_walks_directories_in_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.yml").write_text(GAMESERVER)
    (tmp_path / "a.yaml").write_text(GAMESERVER)
    (tmp_path / "notes.txt").write_text("not a manifest")
    files = [path.relative_to(tmp_path).as_posix() for path, _, _ in load_manifests(tmp_path)]
    assert files == ["a.yaml", "b/x.yml"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: [unclosed\n", "line 2"),
        ("- just\n- a list\n", "document 0 is a list, not a mapping"),
    ],
)
def test_load_manifests_refuses_what_is_not_a_manifest(
    tmp_path: Path, text: str, message: str
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(ValueError, match=message) as caught:
        load_manifests(file)
    assert str(file) in str(caught.value)


def test_load_manifests_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_manifests(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("spec", "ports", 0, "port"), "spec.ports[0].port"),
        (("spec", "variables", "SERVER_NAME"), "spec.variables.SERVER_NAME"),
        (("spec", "readiness", "probe", "port", "str"), "spec.readiness.probe.port"),
        (("spec", "x", "function-after[_check(), str]"), "spec.x"),
        ((), ""),
    ],
)
def test_format_path(loc: tuple[int | str, ...], path: str) -> None:
    assert format_path(loc) == path


def _gameserver(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stellarstack.io/v1alpha1",
        "kind": "GameServer",
        "metadata": {"name": "toy"},
        "spec": {"blueprint": "toy", **spec},
    }


@pytest.mark.parametrize(
    ("document", "problems"),
    [
        (_gameserver(), []),
        (
            _gameserver(ports=[{"name": "game", "port": 70000, "protocol": "SCTP"}]),
            [
                "spec.ports[0].port: Input should be less than or equal to 65535",
                "spec.ports[0].protocol: Input should be 'TCP', 'UDP' or 'TCPUDP'",
            ],
        ),
        (
            # A cross-field check at spec level names the port it is about.
            _gameserver(ports=[{"name": "a", "port": 1}, {"name": "b", "port": 1}]),
            ["spec.ports[1].port: UDP 1 is already used by port a"],
        ),
        (
            _gameserver(memroy="1Gi"),
            ["spec.memroy: unknown field (check its spelling and indentation)"],
        ),
        ({**_gameserver(), "spec": {}}, ["spec.blueprint: required"]),
        (
            {**_gameserver(), "metadata": {"name": "x" * 46}},
            [
                "metadata.name: at most 45 characters for a GameServer (got 46); child objects "
                "append suffixes to it"
            ],
        ),
        (
            {**_gameserver(), "kind": "Pod"},
            ["kind: must be one of Backup, Blueprint, GameServer, Schedule (got 'Pod')"],
        ),
        (
            {**_gameserver(), "apiVersion": "v1"},
            ["apiVersion: must be stellarstack.io/v1alpha1 (got 'v1')"],
        ),
    ],
)
def test_validate_document(document: dict[str, Any], problems: list[str]) -> None:
    assert validate_document(document) == problems


def test_blueprint_problems_are_reported_one_by_one() -> None:
    document = {
        "apiVersion": "stellarstack.io/v1alpha1",
        "kind": "Blueprint",
        "metadata": {"name": "b"},
        "spec": {
            "displayName": "B",
            "images": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}],
            "startupCommands": [{"name": "s", "command": "run {{NOPE}}"}],
        },
    }
    assert validate_document(document) == [
        "spec.images: names must be unique (a)",
        "spec.startupCommands[0].command: placeholder {{NOPE}} names no variable",
    ]


def test_parse_document_returns_the_model() -> None:
    resource = parse_document(_gameserver())
    assert isinstance(resource, KINDS["GameServer"])
    with pytest.raises(ManifestError) as caught:
        parse_document({**_gameserver(), "kind": "Nope"})
    assert caught.value.problems[0].startswith("kind:")
