"""The `stellarstack` command.

The API package owns the offline commands (validate, blueprint, crds). The components
(operator, panel, nodeproxy) add their own sub-commands through the `stellarstack.commands`
entry-point group, so this package never imports them: each entry point names a function
`register(subparsers)` that adds a sub-parser whose `handler` default runs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

COMMAND_GROUP = "stellarstack.commands"

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The full parser, including the sub-commands components register."""
    parser = argparse.ArgumentParser(
        prog="stellarstack",
        description="StellarStack: game servers on Kubernetes and on bare Docker hosts.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate",
        help="validate manifests offline against the resource models",
        description="Validate GameServer, Blueprint, Backup and Schedule manifests (YAML or "
        "JSON, one or many documents per file) without a cluster. Every error is printed with "
        "its file, document, resource and field path; the exit code is 1 when any was found.",
    )
    validate.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        type=Path,
        metavar="FILE|DIR",
        help="a manifest file or a directory searched recursively for *.yaml/*.yml/*.json; "
        "may be given more than once",
    )
    validate.set_defaults(handler=_validate)

    blueprint = commands.add_parser(
        "blueprint",
        help="import and export Pterodactyl/Pelican eggs",
        description="Convert between Pterodactyl/Pelican eggs and Blueprint manifests.",
    )
    blueprint_commands = blueprint.add_subparsers(dest="blueprint_command", required=True)
    importer = blueprint_commands.add_parser(
        "import",
        help="turn an egg (PTDL_v1/v2, PLCN_v1-v3; JSON or YAML) into a Blueprint",
        description="Read an egg and print (or write) the equivalent Blueprint manifest.",
    )
    importer.add_argument("egg", type=Path, help="the egg file")
    importer.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    importer.add_argument("--name", help="metadata.name of the Blueprint (default: from the egg)")
    importer.set_defaults(handler=_blueprint_import)
    exporter = blueprint_commands.add_parser(
        "export",
        help="turn a Blueprint manifest into an egg",
        description="Read a Blueprint manifest and print (or write) the equivalent egg.",
    )
    exporter.add_argument("blueprint", type=Path, help="the Blueprint manifest (YAML or JSON)")
    exporter.add_argument(
        "--format",
        dest="egg_format",
        choices=["PTDL_v1", "PTDL_v2", "PLCN_v1", "PLCN_v2", "PLCN_v3"],
        help="egg format (default: the format it was imported from, else PLCN_v3)",
    )
    exporter.add_argument("--yaml", action="store_true", help="write YAML instead of JSON")
    exporter.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    exporter.set_defaults(handler=_blueprint_export)

    crds = commands.add_parser(
        "crds",
        help="print the CustomResourceDefinitions (pipe into `kubectl apply -f -`)",
        description="Print the generated CRD manifests, or write/check them in a directory.",
    )
    mode = crds.add_mutually_exclusive_group()
    mode.add_argument("--write", type=Path, metavar="DIR", help="write one file per CRD")
    mode.add_argument(
        "--check",
        type=Path,
        metavar="DIR",
        help="exit 1 when the files in DIR differ from what the models generate",
    )
    crds.set_defaults(handler=_crds)

    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            register: Callable[[Any], None] = entry.load()
        except ImportError as exc:
            # One broken component must not take the other commands down with it.
            print(
                f"stellarstack: the {entry.name!r} command is unavailable: {exc}", file=sys.stderr
            )
            continue
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `stellarstack` script."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


def _validate(args: argparse.Namespace) -> int:
    from stellarstack.api.manifests import load_manifests, validate_document
    from stellarstack.api.references import check_references, where

    paths: list[Path] = args.filename
    errors = 0
    documents = []
    for path in paths:
        try:
            documents.extend(load_manifests(path))
        except (OSError, ValueError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            errors += 1
    for file, index, document in documents:
        for problem in validate_document(document):
            print(f"{where(file, index, document)}: {problem}", file=sys.stderr)
            errors += 1
    for problem in check_references(documents):
        print(problem, file=sys.stderr)
        errors += 1
    count = len(documents)
    if errors:
        print(f"{errors} error(s) in {count} document(s)", file=sys.stderr)
        return 1
    print(f"{count} document(s) valid")
    return 0


def _blueprint_import(args: argparse.Namespace) -> int:
    import yaml

    from stellarstack.api.eggs import EggError, import_egg

    try:
        blueprint = import_egg(args.egg.read_bytes(), name=args.name)
    except (OSError, EggError) as exc:
        print(f"{args.egg}: {exc}", file=sys.stderr)
        return 1
    text = yaml.safe_dump(blueprint.to_wire(), sort_keys=False, allow_unicode=True)
    _emit(text, args.output)
    return 0


def _blueprint_export(args: argparse.Namespace) -> int:
    import yaml
    from pydantic import ValidationError

    from stellarstack.api.blueprint import Blueprint
    from stellarstack.api.eggs import EggError, dump_egg, export_egg

    try:
        blueprint = Blueprint.model_validate(yaml.safe_load(args.blueprint.read_text()))
        options = {} if args.egg_format is None else {"format": args.egg_format}
        document = export_egg(blueprint, **options)
    except (OSError, yaml.YAMLError, ValidationError, EggError) as exc:
        print(f"{args.blueprint}: {exc}", file=sys.stderr)
        return 1
    _emit(dump_egg(document, "yaml" if args.yaml else "json"), args.output)
    return 0


def _crds(args: argparse.Namespace) -> int:
    from stellarstack.api.crdgen import build_all_crds, render_yaml, stale_crds, write_crds

    if args.write is not None:
        for path in write_crds(args.write):
            print(f"wrote {path}")
        return 0
    if args.check is not None:
        stale = stale_crds(args.check)
        for name in stale:
            print(f"{args.check / name}: differs from the models; run `make crds`", file=sys.stderr)
        return 1 if stale else 0
    sys.stdout.write("".join("---\n" + render_yaml(crd) for crd in build_all_crds().values()))
    return 0


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        print(f"wrote {output}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
