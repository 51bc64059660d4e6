"""The `stellarstack` command as users run it: a real process, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "stellarstack"

EGG = {
    "meta": {"version": "PTDL_v2", "update_url": None},
    "name": "Tiny Game",
    "author": "ops@example.com",
    "description": "A tiny game.",
    "features": None,
    "docker_images": {"Default": "ghcr.io/example/tiny:1"},
    "file_denylist": [],
    "startup": "./tiny --port {{SERVER_PORT}} --name {{SERVER_NAME}}",
    "config": {
        "files": "{}",
        "startup": '{"done": "ready"}',
        "logs": "{}",
        "stop": "^C",
    },
    "scripts": {
        "installation": {"script": "echo hi", "container": "debian:bookworm", "entrypoint": "bash"}
    },
    "variables": [
        {
            "name": "Server name",
            "description": "",
            "env_variable": "SERVER_NAME",
            "default_value": "Tiny",
            "user_viewable": True,
            "user_editable": True,
            "rules": "required|string|max:20",
            "field_type": "text",
        }
    ],
}


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=60)


def test_validate_examples() -> None:
    result = run("validate", "-f", ROOT / "examples")
    assert result.returncode == 0, result.stderr
    assert "document(s) valid" in result.stdout


def test_validate_reports_every_error_with_file_resource_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: stellarstack.io/v1alpha1\nkind: GameServer\nmetadata: {name: ok-one}\n"
        "spec: {blueprint: toy, ports: [{name: game, port: 0}]}\n---\n"
        "apiVersion: stellarstack.io/v1alpha1\nkind: Schedule\nmetadata: {name: s}\n"
        "spec: {gameServer: ok-one, cron: '* * * * * *', tasks: [{action: Power}]}\n"
    )
    result = run("validate", "-f", bad)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(
        line.startswith(f"{bad}#0 GameServer/ok-one: spec.ports[0].port") for line in lines
    ), lines
    assert any(line.startswith(f"{bad}#1 Schedule/s: spec.cron") for line in lines), lines
    assert any("spec.tasks[0]" in line for line in lines), lines


def test_validate_checks_variables_against_the_blueprint(tmp_path: Path) -> None:
    examples = yaml.safe_load_all((ROOT / "examples" / "toy.yaml").read_text())
    documents = [d for d in examples if d]
    for document in documents:
        if document["kind"] == "GameServer":
            document["spec"]["variables"] = {"NO_SUCH_VARIABLE": "1"}
    target = tmp_path / "toy.yaml"
    target.write_text(yaml.safe_dump_all(documents))
    result = run("validate", "-f", target)
    assert result.returncode == 1
    assert "spec.variables.NO_SUCH_VARIABLE: the blueprint has no variable" in result.stderr


def test_blueprint_import_and_export_round_trip(tmp_path: Path) -> None:
    egg = tmp_path / "egg-tiny.json"
    egg.write_text(json.dumps(EGG))
    blueprint = tmp_path / "tiny.yaml"
    imported = run("blueprint", "import", egg, "-o", blueprint)
    assert imported.returncode == 0, imported.stderr
    document = yaml.safe_load(blueprint.read_text())
    assert document["kind"] == "Blueprint"
    assert document["spec"]["stop"]["signal"] == "SIGINT"
    assert run("validate", "-f", blueprint).returncode == 0

    exported = run("blueprint", "export", blueprint, "--format", "PTDL_v2")
    assert exported.returncode == 0, exported.stderr
    egg_again = json.loads(exported.stdout)
    assert egg_again["meta"]["version"] == "PTDL_v2"
    assert egg_again["startup"] == EGG["startup"]
    assert egg_again["variables"][0]["env_variable"] == "SERVER_NAME"


def test_blueprint_import_refuses_a_hostile_egg(tmp_path: Path) -> None:
    hostile = dict(EGG)
    hostile["config"] = {
        **EGG["config"],  # type: ignore[dict-item]
        "files": json.dumps({"../../etc/passwd": {"parser": "file", "find": {"root": "x"}}}),
    }
    egg = tmp_path / "hostile.json"
    egg.write_text(json.dumps(hostile))
    result = run("blueprint", "import", egg)
    assert result.returncode == 1
    assert "config.files" in result.stderr
    assert "../../etc/passwd" in result.stderr


def test_crds_prints_all_four(tmp_path: Path) -> None:
    result = run("crds")
    assert result.returncode == 0
    kinds = [d["spec"]["names"]["kind"] for d in yaml.safe_load_all(result.stdout) if d]
    assert sorted(kinds) == ["Backup", "Blueprint", "GameServer", "Schedule"]
    assert run("crds", "--check", ROOT / "crds").returncode == 0
    stale = tmp_path / "crds"
    assert run("crds", "--write", stale).returncode == 0
    (stale / "gameservers.stellarstack.io.yaml").write_text("stale\n")
    checked = run("crds", "--check", stale)
    assert checked.returncode == 1
    assert "run `make crds`" in checked.stderr


def test_help_everywhere() -> None:
    for args in (
        [],
        ["validate"],
        ["blueprint"],
        ["blueprint", "import"],
        ["blueprint", "export"],
        ["crds"],
    ):
        result = run(*args, "--help")
        assert result.returncode == 0, (args, result.stderr)
        assert "usage: stellarstack" in result.stdout


def test_a_broken_component_leaves_the_other_commands_working(tmp_path: Path) -> None:
    # A distribution whose entry point names a module that does not exist.
    dist = tmp_path / "broken-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(
        "[stellarstack.commands]\nbroken = stellarstack.no_such_module:register\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [CLI, "validate", "-f", ROOT / "examples"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "the 'broken' command is unavailable" in result.stderr
