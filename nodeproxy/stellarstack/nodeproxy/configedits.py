"""A blueprint's config-file edits applied to a server's data directory, confined to it.

Both runtimes run this before every start of a game: the node agent on the host's data
directory, and on Kubernetes the game Pod's init container (`stellarstack configfiles apply`,
running the StellarStack image as the game's own unprivileged user) on the data volume. The
editing itself is the pure `stellarstack.api.configfiles`; this module only reads and writes,
through `SafeRoot`, so a game that replaced a config file (or a directory on its path) with a
symlink gets an error, never a write outside its directory.

A file that cannot be edited (it does not parse, it is a link, it is too large) is reported and
skipped, and the others are still edited: the game may start without the change, as it would
with a hand-edited file. Only a bad plan document or an unusable root is an error of the
command itself.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from typing import Any

from stellarstack.api.configfiles import (
    MAX_CONFIG_BYTES,
    PLANS_ENV,
    ConfigEditError,
    apply_config_file,
    creates_missing_file,
    plans_from_json,
)
from stellarstack.api.workload import ConfigFilePlan
from stellarstack.nodeproxy.files import FileError, FileErrorCode, SafeRoot


def apply_config_files(root: SafeRoot, plans: Iterable[ConfigFilePlan]) -> list[str]:
    """Edit every planned file under `root`; return one problem per file left unedited.

    A missing file is created for the structured formats and left absent for `file` and `xml`
    (whose edits only replace what exists), as `creates_missing_file` says.
    """
    problems: list[str] = []
    for plan in plans:
        try:
            try:
                raw = root.read_bytes(plan.path, max_bytes=MAX_CONFIG_BYTES)
                text = raw.decode("utf-8", "replace")
            except FileError as exc:
                if exc.code is not FileErrorCode.NOT_FOUND:
                    raise
                if not creates_missing_file(plan.parser):
                    continue
                text = ""
            edited = apply_config_file(text, plan)
            if edited == text:
                continue  # nothing to change: leave the file (and its mtime) alone
            parent = plan.path.rpartition("/")[0]
            if parent:
                root.mkdir(parent)
            root.write(plan.path, [edited.encode()])
        except (FileError, ConfigEditError) as exc:
            problems.append(f"{plan.path}: not edited: {exc}")
    return problems


# -- `stellarstack configfiles apply` ---------------------------------------------------------


def register(commands: Any) -> None:
    """Add the `configfiles` sub-command to the `stellarstack` CLI (an entry point)."""
    parser = commands.add_parser(
        "configfiles",
        help="apply a blueprint's rendered config-file edits to a data directory",
        description="Config-file edits, as the runtimes apply them before each start.",
    )
    actions = parser.add_subparsers(dest="configfiles_command", required=True)
    apply = actions.add_parser(
        "apply",
        help="edit the files under --root (what a game Pod's init container runs)",
        description="Apply rendered config-file edits (the JSON document the operator writes) "
        "to the files under --root, never following a symlink out of it. Files that cannot "
        "be edited are reported on stderr and skipped; the exit code is 0 then. It is 2 when "
        "the plans or the root are unusable.",
    )
    apply.add_argument("--root", required=True, help="the server's data directory")
    apply.add_argument(
        "--plans",
        metavar="FILE",
        help=f"read the plans from FILE ('-' for stdin) instead of ${PLANS_ENV}",
    )
    apply.add_argument(
        "--owner",
        metavar="UID:GID",
        help="owner of files and directories it creates (default: the running user)",
    )
    apply.set_defaults(handler=_apply)


def _apply(args: argparse.Namespace) -> int:
    try:
        plans = plans_from_json(_read_plans(args.plans))
        owner = _owner(args.owner)
        root = SafeRoot(args.root, owner=owner)
    except (ConfigEditError, ValueError) as exc:
        print(f"stellarstack configfiles apply: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"stellarstack configfiles apply: --root: {exc}", file=sys.stderr)
        return 2
    with root:
        problems = apply_config_files(root, plans)
    for problem in problems:
        print(f"config file {problem}", file=sys.stderr)
    edited = len(plans) - len(problems)
    print(f"config files: {edited} of {len(plans)} applied under {args.root}")
    return 0


def _read_plans(source: str | None) -> str:
    if source is None:
        text = os.environ.get(PLANS_ENV)
        if text is None:
            raise ValueError(f"${PLANS_ENV}: not set (or pass --plans FILE)")
        return text
    if source == "-":
        return sys.stdin.read()
    try:
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ValueError(f"--plans: {exc}") from exc


def _owner(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    uid, sep, gid = text.partition(":")
    if not (sep and uid.isdigit() and gid.isdigit()):
        raise ValueError(f"--owner: {text!r} is not UID:GID")
    return int(uid), int(gid)
