"""`stellarstack operator`: the Kopf operator process."""

from __future__ import annotations

import argparse
import logging
from typing import Any


def register(commands: Any) -> None:
    """Add the `operator` sub-command to the `stellarstack` CLI (an entry point)."""
    parser = commands.add_parser(
        "operator",
        help="run the Kubernetes operator",
        description="Run the operator: it reconciles GameServers and Blueprints into Pods, "
        "volumes, Services and install Jobs. Uses in-cluster credentials when run in a Pod, "
        "else the current kubeconfig context.",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch GameServers only in this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="do not coordinate with other operator instances (peering); for one replica",
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="serve a liveness endpoint, e.g. http://0.0.0.0:8080/healthz",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import kopf

    # Importing the module registers its handlers with Kopf's default registry.
    import stellarstack.operator.handlers  # noqa: F401

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    kopf.run(
        standalone=args.standalone,
        namespaces=args.namespace,
        clusterwide=not args.namespace,
        liveness_endpoint=args.liveness,
    )
    return 0
