"""`stellarstack panel local`: everything a first look needs on one machine (`make run`).

The panel on http://localhost:8000 with its SQLite database, and — where a Docker engine
answers — a node agent started beside it and registered as the node "local", with a few
allocations on 127.0.0.1 and the example blueprints loaded, so a new user can create and start
a real server right away. State (database, keys, node data) lives in one directory, `.stellarstack`
by default; secrets are generated on first start and kept there (mode 0600).

The node agent listens on 127.0.0.1:8443 when that is free and on any free port otherwise (a
port asked for with `--node-port` must be free, or the command stops saying so). Before the
node is registered, the agent answering there must prove it is the child just started: it has
to accept this state's node token and report that child's pid. Anything else listening on the
port (another agent, another program) is never registered.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import select

from stellarstack.api.blueprint import Blueprint
from stellarstack.panel.context import PanelContext, build_context
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.migrate import upgrade
from stellarstack.panel.db.models import Allocation, BlueprintRecord, Location, Node
from stellarstack.panel.settings import PanelSettings

log = logging.getLogger(__name__)
NODE_NAME = "local"
NODE_HOST = "127.0.0.1"
NODE_PORT = 8443
"""The node agent's port when it is free (the agent's own default)."""
NODE_START_ATTEMPTS = 3
"""Starts with a fresh free port when another process took the chosen one in the meantime."""
NODE_START_SECONDS = 30.0
# Ports handed to the local node: common game defaults, so examples work without changes.
LOCAL_PORTS = [*range(25565, 25575), *range(27015, 27025), *range(7777, 7787), 4534, 3979]


def _secrets(state: Path) -> dict[str, str]:
    path = state / "secrets.json"
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    values = {"secret_key": secrets.token_hex(32), "node_token": secrets.token_hex(32)}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(values, handle)
    return values


def docker_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no permission, no daemon: all mean "no local node"
        return False


def _stellarstack_command() -> list[str]:
    script = Path(sys.executable).with_name("stellarstack")
    if script.exists():
        return [str(script)]
    found = shutil.which("stellarstack")
    if found is None:
        raise RuntimeError("the `stellarstack` command is not installed")
    return [found]


class NodePortTakenError(RuntimeError):
    """The node port asked for with `--node-port` is in use."""

    def __init__(self, port: int) -> None:
        super().__init__(
            f"--node-port {port}: {NODE_HOST}:{port} is already in use (another node agent or "
            "program listens there); choose another port, or leave --node-port out to use a "
            "free one"
        )
        self.port = port


class NodeStartError(RuntimeError):
    """The node agent could not be started (the message says why and where its log is)."""


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind `host:port` now (with SO_REUSEADDR, as the agent binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def any_free_port(host: str) -> int:
    """A port the kernel reports free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def choose_node_port(requested: int | None, *, is_free: Callable[[int], bool]) -> int | None:
    """The port to start the agent on: `requested` when free (else `NodePortTakenError`);
    without one, `NODE_PORT` when free, else None (the caller takes any free port)."""
    if requested is not None:
        if not is_free(requested):
            raise NodePortTakenError(requested)
        return requested
    return NODE_PORT if is_free(NODE_PORT) else None


def is_own_agent(status_code: int, body: Any, *, pid: int) -> bool:
    """Whether an answer to `GET /api/v1/node` (sent with this state's token) comes from the
    agent process `pid`: it accepted the token and reports that pid and the local agent id."""
    return (
        status_code == 200
        and isinstance(body, dict)
        and body.get("pid") == pid
        and body.get("agentId") == NODE_NAME
    )


def _last_log_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace")[-4000:].strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start_agent(
    state: Path, *, token: str, public_key: str, port: int, log_file: Any
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the agent on `port` and wait until it proves to be this child (see `is_own_agent`).
    Raises `NodeStartError` when the child exits or does not prove itself in time; the child is
    stopped then."""
    data = state / "node"
    data.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "STELLARSTACK_NODE_TOKEN": token,
        "STELLARSTACK_NODE_DATA_DIR": str(data.resolve()),
        "STELLARSTACK_NODE_HOST": NODE_HOST,
        "STELLARSTACK_NODE_PORT": str(port),
        "STELLARSTACK_NODE_AGENT_ID": NODE_NAME,
        "STELLARSTACK_NODE_PANEL_PUBLIC_KEY": public_key,
    }
    process = subprocess.Popen(
        [*_stellarstack_command(), "nodeproxy"], env=env, stdout=log_file, stderr=log_file
    )
    url = f"http://{NODE_HOST}:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + NODE_START_SECONDS
    try:
        while True:
            if process.poll() is not None:
                raise NodeStartError(
                    f"the node agent exited ({process.returncode}) on port {port}: "
                    f"{_last_log_line(state / 'node.log')} (see {state}/node.log)"
                )
            try:
                answer = httpx.get(f"{url}/api/v1/node", headers=headers, timeout=2)
                body = answer.json() if answer.status_code == 200 else None
                if is_own_agent(answer.status_code, body, pid=process.pid):
                    return process, url
            except (httpx.HTTPError, ValueError):
                pass  # not listening yet, or something that is not a node agent
            if time.monotonic() > deadline:
                raise NodeStartError(
                    f"the node agent did not answer as itself on {url} within "
                    f"{NODE_START_SECONDS:.0f} s; see {state}/node.log"
                )
            time.sleep(0.3)
    except BaseException:
        _stop(process)
        raise


@contextlib.contextmanager
def run_node(state: Path, *, token: str, public_key: str, port: int | None = None) -> Iterator[str]:
    """The node agent as a child process; yields its URL once it proved to be that child, and
    stops it after. `port` is a fixed port (refused when taken); without one, 8443 or any
    free port. A start that fails because another process took the port in the meantime is
    retried on a new free port (at most `NODE_START_ATTEMPTS` times)."""
    with (state / "node.log").open("ab") as log_file:
        for attempt in range(1, NODE_START_ATTEMPTS + 1):
            chosen = choose_node_port(port, is_free=lambda p: port_is_free(NODE_HOST, p))
            if chosen is None:
                chosen = any_free_port(NODE_HOST)
            try:
                process, url = _start_agent(
                    state, token=token, public_key=public_key, port=chosen, log_file=log_file
                )
            except NodeStartError:
                lost_race = not port_is_free(NODE_HOST, chosen)
                if lost_race and port is not None:
                    raise NodePortTakenError(port) from None
                if not lost_race or attempt == NODE_START_ATTEMPTS:
                    raise
                log.warning("port %d was taken while the node agent started; trying again", chosen)
                continue
            try:
                yield url
            finally:
                _stop(process)
            return


def register_local_node(context: PanelContext, *, url: str, token: str) -> None:
    """Create or refresh the node "local", its location and allocations (idempotent)."""
    with transaction(context.sessions) as db:
        location = db.scalar(select(Location).where(Location.short == NODE_NAME))
        if location is None:
            location = Location(short=NODE_NAME, description="this machine")
            db.add(location)
            db.flush()
        node = db.scalar(select(Node).where(Node.name == NODE_NAME))
        if node is not None and node.url != url:
            # Last time the agent listened elsewhere: the node is the agent started now.
            log.info("node %r moves from %s to %s", NODE_NAME, node.url, url)
        if node is None:
            node = Node(
                name=NODE_NAME,
                location_id=location.id,
                url=url,
                token=token,
                agent_id=NODE_NAME,
                public_address="127.0.0.1",
            )
            db.add(node)
            db.flush()
        node.url, node.token, node.agent_id = url, token, NODE_NAME
        taken = set(db.scalars(select(Allocation.port).where(Allocation.node_id == node.id)))
        db.add_all(
            Allocation(node_id=node.id, ip="127.0.0.1", port=port)
            for port in LOCAL_PORTS
            if port not in taken
        )


EXAMPLE_DIGEST_ANNOTATION = "stellarstack.io/example-digest"
"""Set on blueprints `panel local` loads from examples/: the digest of the document as loaded."""


def _document_digest(document: dict[str, Any]) -> str:
    """A digest of a blueprint's wire form that ignores the example-digest annotation itself."""
    metadata = dict(document.get("metadata") or {})
    annotations = {
        key: value
        for key, value in (metadata.get("annotations") or {}).items()
        if key != EXAMPLE_DIGEST_ANNOTATION
    }
    metadata["annotations"] = annotations
    canonical = json.dumps({**document, "metadata": metadata}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _marked_example(blueprint: Blueprint) -> dict[str, Any]:
    document = blueprint.to_wire()
    metadata = document.setdefault("metadata", {})
    annotations = metadata.get("annotations") or {}
    metadata["annotations"] = {
        **annotations,
        EXAMPLE_DIGEST_ANNOTATION: _document_digest(document),
    }
    return document


def load_example_blueprints(context: PanelContext, examples: Path) -> tuple[int, int]:
    """Add the Blueprints found in `examples/` that the panel does not have yet, and refresh
    those it loaded itself earlier when the example changed since (a newer checkout). A
    blueprint an admin edited (its digest no longer matches its annotation) or made under an
    example's name is never overwritten. Returns (added, refreshed)."""
    added = refreshed = 0
    with transaction(context.sessions) as db:
        for path in sorted(examples.glob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if not isinstance(document, dict) or document.get("kind") != "Blueprint":
                    continue
                example = _marked_example(Blueprint.model_validate(document))
                name = example["metadata"]["name"]
                record = db.scalar(select(BlueprintRecord).where(BlueprintRecord.name == name))
                if record is None:
                    db.add(BlueprintRecord(name=name, document=example))
                    added += 1
                    continue
                loaded_as = (record.document.get("metadata") or {}).get("annotations") or {}
                untouched = loaded_as.get(EXAMPLE_DIGEST_ANNOTATION) == _document_digest(
                    record.document
                )
                if untouched and record.document != example:
                    record.document = example
                    refreshed += 1
    return added, refreshed


def _exit_on_signal(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)


def run_local(
    state: Path, *, host: str, port: int, node_port: int | None = None, examples: Path | None
) -> int:
    import uvicorn

    from stellarstack.panel.api.app import create_app
    from stellarstack.panel.workers import default_background_tasks

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request at INFO; the heartbeat and status sync would drown what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    state.mkdir(parents=True, exist_ok=True)
    values = _secrets(state)
    settings = PanelSettings(
        environment="development",
        secret_key=values["secret_key"],
        database_url=f"sqlite:///{(state / 'panel.db').resolve()}",
        data_dir=state,
        host=host,
        port=port,
        public_url=f"http://localhost:{port}",
        # The address `make run` prints is localhost; people also type the loopback address.
        extra_origins=[f"http://127.0.0.1:{port}"],
    )
    context = build_context(settings)
    upgrade(context.engine)
    if examples is not None and examples.is_dir():
        added, refreshed = load_example_blueprints(context, examples)
        log.info("example blueprints: %d added, %d refreshed from examples/", added, refreshed)
    app = create_app(context, background=default_background_tasks())
    with contextlib.ExitStack() as stack:
        if docker_available():
            try:
                url = stack.enter_context(
                    run_node(
                        state,
                        token=values["node_token"],
                        public_key=context.public_key_pem,
                        port=node_port,
                    )
                )
            except NodePortTakenError as exc:
                print(f"stellarstack panel local: {exc}", file=sys.stderr, flush=True)
                return 2
            except NodeStartError as exc:
                print(f"stellarstack panel local: {exc}", file=sys.stderr, flush=True)
                return 1
            register_local_node(context, url=url, token=values["node_token"])
            log.info("local Docker node registered as %r at %s", NODE_NAME, url)
        else:
            log.warning("no Docker engine answers: the panel runs without a local node")
        print(f"StellarStack panel: http://localhost:{port}  (state in {state})", flush=True)
        # uvicorn re-raises SIGTERM once it has shut down; with the default handler that would
        # end the process before the node agent is stopped, so SIGTERM becomes an exit here.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        uvicorn.run(app, host=host, port=port)
    return 0
