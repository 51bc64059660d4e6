"""Every public egg in the corpus imports, and survives export and re-import.

The corpus is a folder of real Pterodactyl/Pelican eggs kept next to the repository (it is test
data, not part of the project): `../shared/eggs` relative to the repository root, or the folder
named by the `STELLARSTACK_EGGS` environment variable. Without it these tests are skipped.

What is checked, per egg:

* it imports, or it is listed in `EXPECTED_REJECTIONS` and the error says why;
* egg -> Blueprint -> egg (same format) -> Blueprint gives an equal Blueprint;
* the exported egg keeps every field that maps: the original and the exported document are
  compared field by field after normalisation (JSON-text fields parsed, `\\r\\n` -> `\\n`, rules
  compared as typed rules, placeholders compared in StellarStack form);
* exporting to every other format and to YAML text re-imports to the same Blueprint, apart from
  what that format cannot hold.

What does not round-trip (by design; docs/eggs.md has the full list): `_comment`, `config.logs`,
`config.startup.userInteraction` and other unknown keys; the order and spelling of rules (they
are compared as typed rules: `size:32` comes back as `min:32|max:32`, `int` as `integer`);
`^^C` and `^c` come back as `^C`, and an unknown signal such as `^X` as `^SIGKILL` (what the
node daemon sends for it); the `yml` parser as `yaml`; a leading `/` on a config-file
path is dropped; typed find values (`true`, `0`) come back as text; the Pterodactyl and Pelican
spellings of the same placeholder (`{{server.build.default.port}}` and
`{{server.allocations.default.port}}`, `{{env.X}}`, `{{server.environment.X}}`) come back in the
target format's own spelling; a placeholder naming an undeclared variable in a config file
resolves to the empty text (as the panel does); an undeclared `{{X}}` in a startup command
becomes `${X}`; an install step without container or script is dropped. Eggs have no field for
ports: export leaves a Blueprint's ports out, and import infers the one primary port again from
the same startup, config-file and install text.
"""

from __future__ import annotations

import functools
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.eggs import (
    EGG_FORMATS,
    EggError,
    blueprint_from_egg,
    dump_egg,
    export_egg,
    import_egg,
    load_document,
    parse_rules,
)
from stellarstack.api.eggs.placeholders import import_config_value, import_startup


def _corpus_root() -> Path:
    override = os.environ.get("STELLARSTACK_EGGS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "shared" / "eggs"


CORPUS = _corpus_root()

# Eggs that cannot be imported, by path relative to the corpus, with the text the error must
# contain. Each is a real limitation, not a bug to hide:
EXPECTED_REJECTIONS: dict[str, str] = {}


def _egg_paths() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(
        path.relative_to(CORPUS).as_posix()
        for path in CORPUS.rglob("*")
        if path.suffix in (".json", ".yaml", ".yml") and path.is_file()
    )


EGGS = _egg_paths()
_ABSENT = pytest.mark.skip(
    reason="egg corpus not found (../shared/eggs next to the repository, or set STELLARSTACK_EGGS)"
)
PARAMS: list[Any] = list(EGGS) or [pytest.param("<no corpus>", marks=_ABSENT)]
IMPORTABLE: list[Any] = [egg for egg in EGGS if egg not in EXPECTED_REJECTIONS] or [
    pytest.param("<no corpus>", marks=_ABSENT)
]


@functools.cache
def _raw(relative: str) -> bytes:
    return (CORPUS / relative).read_bytes()


@functools.cache
def _imported(relative: str) -> Blueprint:
    return import_egg(_raw(relative))


def _original(relative: str) -> dict[str, Any]:
    document = load_document(_raw(relative))
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("relative", PARAMS)
def test_egg_imports_or_is_an_expected_rejection(relative: str) -> None:
    if relative in EXPECTED_REJECTIONS:
        with pytest.raises(EggError) as caught:
            import_egg(_raw(relative))
        assert EXPECTED_REJECTIONS[relative] in str(caught.value)
        return
    blueprint = _imported(relative)
    assert blueprint.spec.source is not None
    assert blueprint.spec.source.format == _original(relative)["meta"]["version"]
    assert blueprint.metadata.name
    assert len(blueprint.metadata.name) <= 63


def test_corpus_counts() -> None:
    if not EGGS:
        pytest.skip("egg corpus not found (../shared/eggs, or set STELLARSTACK_EGGS)")
    imported: list[str] = []
    rejected: dict[str, str] = {}
    for relative in EGGS:
        try:
            import_egg(_raw(relative))
        except EggError as exc:
            rejected[relative] = str(exc)
        else:
            imported.append(relative)
    print(f"\negg corpus: {len(EGGS)} eggs, {len(imported)} imported, {len(rejected)} rejected")
    for relative, reason in rejected.items():
        print(f"  rejected {relative}: {reason}")
    assert set(rejected) == set(EXPECTED_REJECTIONS)
    assert len(imported) + len(rejected) == len(EGGS)
    assert len(imported) >= 420


@pytest.mark.parametrize("relative", IMPORTABLE)
def test_an_egg_that_hands_the_game_its_port_declares_it(relative: str) -> None:
    """Eggs give the game its allocation through SERVER_PORT (startup) or the default port
    path (config files); such an egg declares exactly that one port, primary, so a server made
    from it alone is reachable."""
    spec = _imported(relative).spec
    texts = [command.command for command in spec.startup_commands] + [
        text
        for config in spec.config_files
        for edit in config.edits
        for text in [edit.value or "", *(r.value for r in edit.replacements)]
    ]
    if any("{{SERVER_PORT}}" in text for text in texts):
        [port] = spec.ports
        assert (port.primary, port.variable) == (True, "SERVER_PORT")
        assert spec.default_game_ports()[0].port == port.port
    else:
        assert spec.ports == []


# Real eggs whose port the import can tell apart from the fallback (TCP on 25565), with what it
# finds: both transports named in the config, the number written in the install script, a
# SteamCMD game, and the common case.
KNOWN_PORTS: dict[str, tuple[str, int]] = {
    "pelican-eggs-games-standalone/gta/fivem/egg-five-m.json": ("TCPUDP", 25565),
    "parkervcp-eggs/game_eggs/terraria/vanilla/egg-terraria-vanilla.json": ("TCP", 7777),
    "parkervcp-eggs/game_eggs/steamcmd_servers/valheim/valheim_vanilla/egg-valheim.json": (
        "TCPUDP",
        25565,
    ),
    "pterodactyl-panel/database/Seeders/eggs/minecraft/egg-paper.json": ("TCP", 25565),
}


@pytest.mark.parametrize("relative", sorted(KNOWN_PORTS))
def test_known_eggs_declare_their_port(relative: str) -> None:
    if relative not in EGGS:
        pytest.skip(f"{relative} is not in the egg corpus")
    [port] = _imported(relative).spec.ports
    assert (port.protocol.value, port.port) == KNOWN_PORTS[relative]


@pytest.mark.parametrize("relative", IMPORTABLE)
def test_round_trip_gives_an_equal_blueprint(relative: str) -> None:
    blueprint = _imported(relative)
    exported = export_egg(blueprint)
    assert exported["meta"]["version"] == _original(relative)["meta"]["version"]
    json.dumps(exported)  # JSON-serialisable
    again = blueprint_from_egg(exported, name=blueprint.metadata.name)
    assert again == blueprint


@pytest.mark.parametrize("relative", IMPORTABLE)
def test_exported_egg_keeps_every_mapped_field(relative: str) -> None:
    original = _original(relative)
    exported = export_egg(_imported(relative))
    before = normalised_egg(original)
    after = normalised_egg(exported)
    for field in before:
        assert after[field] == before[field], field


@pytest.mark.parametrize("relative", IMPORTABLE)
def test_every_format_and_yaml_text_re_import(relative: str) -> None:
    blueprint = _imported(relative)
    source = _original(relative)["meta"]["version"]
    # Every format as JSON text, and the egg's own format as YAML text too.
    for target, fmt in [(target, "json") for target in EGG_FORMATS] + [(source, "yaml")]:
        text = dump_egg(export_egg(blueprint, format=target), fmt)
        again = import_egg(text, name=blueprint.metadata.name)
        assert _without_format_losses(again, target) == _without_format_losses(blueprint, target), (
            target,
            fmt,
        )


def _without_format_losses(blueprint: Blueprint, target: str) -> dict[str, Any]:
    """The blueprint as data, without what the target format cannot hold."""
    spec: dict[str, Any] = blueprint.to_wire()["spec"]
    spec.get("source", {}).pop("format", None)
    if target != "PLCN_v3":
        spec["startupCommands"] = spec["startupCommands"][:1]
        spec["startupCommands"][0]["name"] = "Default"
    if target == "PTDL_v1":
        for image in spec["images"]:
            image["name"] = image["image"]
    return spec


# --- field-by-field normalisation of egg documents ---------------------------------------


def normalised_egg(egg: dict[str, Any]) -> dict[str, Any]:
    """The fields of an egg that map to a Blueprint, in one canonical form per meaning."""
    version = egg["meta"]["version"]
    variables = [_variable(entry, index) for index, entry in enumerate(egg.get("variables") or [])]
    known = {entry["env_variable"] for entry in variables}
    config = egg.get("config") or {}
    files = _json(config.get("files"))
    exported_at = egg.get("exported_at")
    return {
        "name": egg["name"].strip(),
        "author": egg.get("author") or "",
        "description": egg.get("description") or "",
        "uuid": egg.get("uuid") or None,
        "image": egg.get("image") or None,
        "meta.update_url": egg["meta"].get("update_url") or None,
        "exported_at": _timestamp(exported_at) if exported_at else None,
        "tags": _list(egg.get("tags")),
        "features": _list(egg.get("features")),
        "file_denylist": _list(egg.get("file_denylist")),
        "images": _images(egg),
        "startup": _startup(egg, version, known),
        "config.stop": _stop(config.get("stop")),
        "config.startup.done": _done(_json(config.get("startup")).get("done")),
        "config.files": _files(files, known),
        "scripts.installation": _install(egg.get("scripts") or {}),
        "variables": variables,
    }


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    return dict(value) if isinstance(value, dict) else {}


def _timestamp(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _list(value: Any) -> list[str]:
    if not value:
        return []
    return list(value.values()) if isinstance(value, dict) else list(value)


def _images(egg: dict[str, Any]) -> list[tuple[str, str]]:
    images = egg.get("docker_images") or egg.get("images")
    if isinstance(images, dict):
        return [(label, image) for label, image in images.items()]
    return [(image, image) for image in images or []]


def _startup(egg: dict[str, Any], version: str, known: set[str]) -> dict[str, str]:
    commands = egg["startup_commands"] if version == "PLCN_v3" else {"Default": egg["startup"]}
    return {
        name: import_startup(command.replace("\r\n", "\n").strip(), known, "startup")
        for name, command in commands.items()
    }


_SIGNALS = {"SIGINT", "SIGTERM", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL"}


def _stop(stop: Any) -> str:
    """`^C`-style stops as the signal they send; console commands as they are."""
    text = (stop or "").strip()
    if not text.startswith("^"):
        return text
    name = text.lstrip("^").upper()
    if name == "C":
        return "signal SIGINT"
    name = name if name.startswith("SIG") else "SIG" + name
    # The node daemon sends SIGKILL for a signal name it does not know (`^X`).
    return f"signal {name if name in _SIGNALS else 'SIGKILL'}"


def _done(done: Any) -> list[str]:
    return [item for item in (done if isinstance(done, list) else [done]) if item]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _files(files: dict[str, Any], known: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, spec in files.items():
        find: dict[str, Any] = {}
        for key, value in (spec.get("find") or {}).items():
            if isinstance(value, dict):
                find[key] = {
                    match: import_config_value(_scalar(new), known, key)
                    for match, new in value.items()
                }
            else:
                find[key] = import_config_value(_scalar(value), known, key)
        if find:
            parser = "yaml" if spec["parser"] == "yml" else spec["parser"]
            out[re.sub(r"^(\./|/)+", "", path)] = {"parser": parser, "find": find}
    return out


def _install(scripts: dict[str, Any]) -> dict[str, str] | None:
    installation = scripts.get("installation") or {}
    container = (installation.get("container") or "").strip()
    script = (installation.get("script") or "").replace("\r\n", "\n")
    if not container or not script.strip():
        return None
    return {
        "container": container,
        "entrypoint": installation.get("entrypoint") or "bash",
        "script": script,
    }


def _variable(entry: dict[str, Any], index: int) -> dict[str, Any]:
    default = entry.get("default_value")
    return {
        "name": entry["name"].strip(),
        "description": (entry.get("description") or "").replace("\r\n", "\n"),
        "env_variable": entry["env_variable"],
        "default_value": "" if default is None else _scalar(default),
        "user_viewable": bool(entry.get("user_viewable", True)),
        "user_editable": bool(entry.get("user_editable", False)),
        "rules": parse_rules(entry.get("rules"), f"variables[{index}].rules"),
        "sort": entry.get("sort"),
        "field_type": entry.get("field_type") or "text",
    }


def test_normalisation_sees_a_real_difference() -> None:
    """The field comparison is not vacuous: a changed field is reported."""
    egg = {
        "meta": {"version": "PTDL_v2"},
        "name": "Toy",
        "docker_images": {"Toy": "localhost/toy:1"},
        "startup": "toy --port {{SERVER_PORT}}",
        "config": {"files": "{}", "startup": '{"done": "ready"}', "stop": "^C"},
        "scripts": {"installation": {"script": None, "container": "", "entrypoint": "bash"}},
        "variables": [],
    }
    changed = json.loads(json.dumps(egg))
    changed["config"]["startup"] = '{"done": "started"}'
    assert normalised_egg(egg) != normalised_egg(changed)
    assert normalised_egg(egg) == normalised_egg(export_egg(blueprint_from_egg(egg)))
