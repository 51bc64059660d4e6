"""`stellarstack nodeproxy`: the node agent process (node API plus reconcile loop)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stellarstack.nodeproxy.settings import NodeSettings

if TYPE_CHECKING:  # imported lazily at run time: docker and asyncssh are heavy imports
    from stellarstack.nodeproxy.runtime.docker import DockerRuntime
    from stellarstack.nodeproxy.sftp import SftpService
    from stellarstack.nodeproxy.store import Store


def register(commands: Any) -> None:
    """Add the `nodeproxy` sub-command to the `stellarstack` CLI (an entry point)."""
    parser = commands.add_parser(
        "nodeproxy",
        help="run the node agent for a bare Docker host",
        description="Run the node agent: it reconciles the GameServers the panel sends into "
        "Docker containers and serves the node API. Configured by STELLARSTACK_NODE_* "
        "environment variables (STELLARSTACK_NODE_TOKEN is required).",
    )
    parser.set_defaults(handler=_run)
    # `stellarstack nodeproxy` alone runs the agent; `stellarstack nodeproxy files` serves one
    # GameServer's files (its files Pod on Kubernetes).
    services = parser.add_subparsers(dest="nodeproxy_command", metavar="SERVICE")
    files = services.add_parser(
        "files",
        help="serve the files of one GameServer (its files Pod on Kubernetes)",
        description="Serve the node API's files routes for one GameServer over its data "
        "directory, accepting only server tokens the panel signed for that server.",
    )
    files.add_argument("--root", type=Path, required=True, help="the server's data directory")
    files.add_argument("--server", required=True, metavar="NAMESPACE/NAME")
    files.add_argument(
        "--resources",
        type=Path,
        required=True,
        help="YAML with the GameServer and its Blueprint (deny-list and disk quota)",
    )
    files.add_argument(
        "--public-key-file", type=Path, required=True, help="the panel's Ed25519 key (PEM)"
    )
    files.add_argument(
        "--audience",
        default="kubernetes",
        help="audience the server tokens must carry (default: kubernetes)",
    )
    files.add_argument("--listen", default="0.0.0.0:8080", metavar="HOST:PORT")
    files.add_argument(
        "--sftp-listen", default=None, metavar="HOST:PORT", help="also serve SFTP here"
    )
    files.add_argument(
        "--sftp-host-key", type=Path, default=None, help="the SFTP host key (OpenSSH ed25519)"
    )
    files.set_defaults(handler=_run_files)


def _run_files(args: argparse.Namespace) -> int:
    # Imported here: the web stack is a heavy import that other commands do not need.
    from stellarstack.nodeproxy.filesservice import run_files

    return run_files(args)


def _run(_: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = NodeSettings()  # read from the environment
    asyncio.run(serve(settings))
    return 0


async def serve(settings: NodeSettings) -> None:
    """Run the node API and the reconcile loop until SIGTERM or SIGINT."""
    import docker
    import uvicorn

    from stellarstack.api.workload import WorkloadSettings
    from stellarstack.nodeproxy.agent import AgentSettings, NodeAgent
    from stellarstack.nodeproxy.api.app import NodeServices, create_app
    from stellarstack.nodeproxy.backups import BackupService
    from stellarstack.nodeproxy.runtime.containers import DockerSettings
    from stellarstack.nodeproxy.runtime.docker import DockerRuntime
    from stellarstack.nodeproxy.schedules import ScheduleService
    from stellarstack.nodeproxy.store import Store

    settings.servers_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.state_file)
    runtime = DockerRuntime(
        docker.from_env(timeout=120),
        DockerSettings(
            data_root=settings.servers_dir,
            agent_id=settings.agent_id,
            bind_address=settings.publish_address,
            workload=WorkloadSettings(),
        ),
    )
    backups = BackupService(store, runtime, settings.data_dir / "backups")
    agent = NodeAgent(store, runtime, AgentSettings(probe_host=settings.probe_host), backups)
    agent.attach_schedules(ScheduleService(store, runtime, agent.wake))
    app = create_app(NodeServices(settings, store, runtime, agent), run_agent=True)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            ssl_certfile=settings.tls_cert,
            ssl_keyfile=settings.tls_key,
            log_level="info",
            ws_max_size=settings.console_message_bytes,
        )
    )
    sftp = _sftp_service(settings, store, runtime)
    try:
        if sftp is not None:
            await sftp.start()
        # uvicorn handles SIGTERM/SIGINT; its shutdown ends the reconcile loop (the lifespan).
        await server.serve()
    finally:
        if sftp is not None:
            await sftp.close()
        store.close()


def _sftp_service(
    settings: NodeSettings, store: Store, runtime: DockerRuntime
) -> SftpService | None:
    """The SFTP server when `sftp_port` is set (else None), on the same store and data dirs
    as the node API, creating files as the game user."""
    if settings.sftp_port is None or settings.sftp_users_file is None:
        return None
    from stellarstack.api.runtime import ServerKey
    from stellarstack.nodeproxy.sftp import LocalAuthenticator, SftpService

    workload = runtime.workload_settings
    return SftpService(
        store=store,
        data_dir=lambda namespace, name: runtime.prepare_data_dir(ServerKey(namespace, name)),
        authenticator=LocalAuthenticator(settings.sftp_users_file),
        host_key=settings.sftp_host_key,
        owner=(workload.run_as_user, workload.run_as_group),
        host=settings.sftp_host,
        port=settings.sftp_port,
    )
