"""Config-file edits on a real directory, as both runtimes apply them: through `SafeRoot`
(links planted by a game are refused, nothing outside changes) and as the
`stellarstack configfiles apply` command that a game Pod's init container runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stellarstack.api.blueprint import ConfigParser
from stellarstack.api.configfiles import PLANS_ENV, plans_to_json
from stellarstack.api.workload import ConfigEditPlan, ConfigFilePlan
from stellarstack.nodeproxy.configedits import apply_config_files
from stellarstack.nodeproxy.files import SafeRoot
from support.files_sandbox import SECRET, Sandbox


def plan(path: str, parser: str, *edits: tuple[str, str]) -> ConfigFilePlan:
    return ConfigFilePlan(
        path=path,
        parser=ConfigParser(parser),
        edits=tuple(ConfigEditPlan(key, value, ()) for key, value in edits),
    )


PROPERTIES = plan("server.properties", "properties", ("server-port", "30000"), ("motd", "hi"))


def test_edits_existing_creates_structured_and_leaves_absent_line_files(tmp_path: Path) -> None:
    (tmp_path / "server.properties").write_text("# keep me\nserver-port=25565\n")
    plans = [
        PROPERTIES,
        plan("config/deep/settings.json", "json", ("a.b", "1")),
        plan("missing.cfg", "file", ("SERVER_NAME", "SERVER_NAME x")),
    ]
    with SafeRoot(tmp_path) as root:
        assert apply_config_files(root, plans) == []
    assert (tmp_path / "server.properties").read_text() == (
        "# keep me\nserver-port=30000\nmotd=hi\n"
    )
    assert (
        tmp_path / "config/deep/settings.json"
    ).read_text() == '{\n  "a": {\n    "b": "1"\n  }\n}\n'
    assert not (tmp_path / "missing.cfg").exists()


def test_an_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    target = tmp_path / "server.properties"
    target.write_text("server-port=30000\nmotd=hi\n")
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    with SafeRoot(tmp_path) as root:
        assert apply_config_files(root, [PROPERTIES]) == []
    assert target.stat().st_mtime_ns == 1_000_000_000


def test_one_broken_file_is_reported_and_the_others_are_still_edited(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    with SafeRoot(tmp_path) as root:
        problems = apply_config_files(root, [plan("broken.json", "json", ("a", "1")), PROPERTIES])
    assert len(problems) == 1
    assert problems[0].startswith("broken.json: not edited: ")
    assert (tmp_path / "broken.json").read_text() == "{not json"
    assert "server-port=30000" in (tmp_path / "server.properties").read_text()


@pytest.mark.parametrize(
    ("link", "target", "plan_path"),
    [
        ("server.properties", "../outside/f.txt", "server.properties"),
        ("server.properties", "/{outside}/canary.txt", "server.properties"),
        ("config", "../outside/dir", "config/f.txt"),
        ("server.properties", "../outside/missing.txt", "server.properties"),
    ],
)
def test_links_out_of_the_root_are_refused_and_nothing_outside_changes(
    tmp_path: Path, link: str, target: str, plan_path: str
) -> None:
    box = Sandbox.create(tmp_path)
    (box.root / link).symlink_to(target.replace("/{outside}", str(box.outside)))
    before = box.snapshot_outside()
    with SafeRoot(box.root) as root:
        problems = apply_config_files(root, [plan(plan_path, "properties", ("k", "v"))])
    assert len(problems) == 1, problems
    assert "link" in problems[0]
    assert box.snapshot_outside() == before
    assert (box.root / link).is_symlink()  # the link itself is left as it was
    assert SECRET not in b"".join(
        p.read_bytes() for p in box.root.rglob("*") if p.is_file() and not p.is_symlink()
    )


# -- the command ------------------------------------------------------------------------------


def stellarstack() -> str:
    executable = shutil.which("stellarstack", path=str(Path(sys.executable).parent))
    assert executable, "the stellarstack entry point is installed (make install)"
    return executable


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [stellarstack(), "configfiles", "apply", *args],
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_command_applies_plans_from_the_environment(tmp_path: Path) -> None:
    box = Sandbox.create(tmp_path)
    (box.root / "server.properties").write_text("server-port=1\n")
    (box.root / "evil.properties").symlink_to(box.outside / "canary.txt")
    before = box.snapshot_outside()
    plans = [PROPERTIES, plan("evil.properties", "properties", ("k", "v"))]
    result = run("--root", str(box.root), env={PLANS_ENV: plans_to_json(plans)})
    # A refused file is reported but does not stop the game from starting (exit 0), as on Docker.
    assert result.returncode == 0, result.stderr
    assert "config file evil.properties: not edited" in result.stderr
    assert "1 of 2 applied" in result.stdout
    assert (box.root / "server.properties").read_text() == "server-port=30000\nmotd=hi\n"
    assert (box.root / "evil.properties").is_symlink()
    assert box.snapshot_outside() == before


def test_command_reads_plans_from_stdin(tmp_path: Path) -> None:
    result = run("--root", str(tmp_path), "--plans", "-", stdin=plans_to_json([PROPERTIES]))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "server.properties").read_text() == "server-port=30000\nmotd=hi\n"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {PLANS_ENV: "{"}, "config-file plans: not JSON"),
        ((), {PLANS_ENV: '{"version": 9, "files": []}'}, "version: 9 is not supported"),
        (("--owner", "me"), {PLANS_ENV: '{"version": 1, "files": []}'}, "--owner: 'me'"),
        (("--plans", "/nonexistent/plans.json"), {}, "--plans: "),
    ],
)
def test_command_refuses_bad_input_naming_it(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run("--root", str(tmp_path), *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr


def test_command_without_plans_or_root_says_which(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != PLANS_ENV}
    result = subprocess.run(
        [stellarstack(), "configfiles", "apply", "--root", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"${PLANS_ENV}: not set" in result.stderr
    missing = run("--root", str(tmp_path / "absent"), env={PLANS_ENV: plans_to_json([])})
    assert missing.returncode == 2
    assert "--root: " in missing.stderr
