"""`stellarstack operator`: the Kopf operator process."""

from __future__ import annotations

import argparse
import logging
import secrets
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
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--standalone",
        action="store_true",
        help="do not coordinate with other operator instances (peering); for one replica",
    )
    peering.add_argument(
        "--peering",
        metavar="NAME",
        default=None,
        help="coordinate replicas through Kopf's peering object NAME (a ClusterKopfPeering, or "
        "a KopfPeering in each namespace given with -n), which must exist: the replica with the "
        "highest priority acts, the others pause until it is gone",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority; default: a random one, so that replicas never tie (Kopf "
        "pauses every replica of a tie)",
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="serve a liveness endpoint, e.g. http://0.0.0.0:8080/healthz",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics on this port at /metrics; default: not served",
    )
    parser.add_argument(
        "--metrics-address",
        default="0.0.0.0",  # a Pod's port, reached by the Prometheus scraper
        help="address the metrics port binds to (default %(default)s)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="text lines, or one JSON object per line (with the object's namespace and name "
        "where a line is about one)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import kopf

    # Importing the module registers its handlers with Kopf's default registry.
    import stellarstack.operator.handlers  # noqa: F401
    from stellarstack.operator.metrics import Metrics

    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        raise SystemExit(f"--metrics-port: {args.metrics_port} is not a port number")
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL,
        log_refkey="object" if args.log_format == "json" else None,
    )
    log = logging.getLogger("stellarstack.operator")
    metrics = Metrics()
    server = None
    if args.metrics_port is not None:
        server = metrics.serve(args.metrics_port, args.metrics_address)
        log.info("metrics on http://%s:%d/metrics", args.metrics_address, args.metrics_port)
    priority = args.priority
    if args.peering is not None and priority is None:
        priority = secrets.randbelow(2**31)
    if args.peering is not None:
        log.info("peering through %r with priority %d", args.peering, priority)
    try:
        kopf.run(
            standalone=args.standalone,
            peering_name=args.peering,
            priority=priority,
            namespaces=args.namespace,
            clusterwide=not args.namespace,
            liveness_endpoint=args.liveness,
            memo=kopf.Memo(metrics=metrics),
        )
    finally:
        if server is not None:
            server.shutdown()
    return 0
