"""`stellarstack panel local`: everything a first look needs on one machine (`make run`).

The panel on http://localhost:8000 with its SQLite database, and — where a Docker engine
answers — a node agent started beside it and registered as the node "local", with a few
allocations on 127.0.0.1 and the example blueprints loaded, so a new user can create and start
a real server right away. State (database, keys, node data) lives in one directory, `.stellarstack`
by default; secrets are generated on first start and kept there (mode 0600).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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
NODE_PORT = 8443
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


@contextlib.contextmanager
def run_node(state: Path, *, token: str, public_key: str, port: int) -> Iterator[str]:
    """The node agent as a child process; yields its URL once it answers, stops it after."""
    data = state / "node"
    data.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "STELLARSTACK_NODE_TOKEN": token,
        "STELLARSTACK_NODE_DATA_DIR": str(data.resolve()),
        "STELLARSTACK_NODE_HOST": "127.0.0.1",
        "STELLARSTACK_NODE_PORT": str(port),
        "STELLARSTACK_NODE_AGENT_ID": NODE_NAME,
        "STELLARSTACK_NODE_PANEL_PUBLIC_KEY": public_key,
    }
    log_file = (state / "node.log").open("ab")
    process = subprocess.Popen(
        [*_stellarstack_command(), "nodeproxy"], env=env, stdout=log_file, stderr=log_file
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the node agent exited ({process.returncode}); see {state}/node.log"
                )
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node agent did not answer in 30 s; see {state}/node.log")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


def register_local_node(context: PanelContext, *, url: str, token: str) -> None:
    """Create or refresh the node "local", its location and allocations (idempotent)."""
    with transaction(context.sessions) as db:
        location = db.scalar(select(Location).where(Location.short == NODE_NAME))
        if location is None:
            location = Location(short=NODE_NAME, description="this machine")
            db.add(location)
            db.flush()
        node = db.scalar(select(Node).where(Node.name == NODE_NAME))
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
        node.url, node.token = url, token
        taken = set(db.scalars(select(Allocation.port).where(Allocation.node_id == node.id)))
        db.add_all(
            Allocation(node_id=node.id, ip="127.0.0.1", port=port)
            for port in LOCAL_PORTS
            if port not in taken
        )


def load_example_blueprints(context: PanelContext, examples: Path) -> int:
    """Add the Blueprints found in `examples/` that the panel does not have yet."""
    added = 0
    with transaction(context.sessions) as db:
        for path in sorted(examples.glob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if not isinstance(document, dict) or document.get("kind") != "Blueprint":
                    continue
                blueprint = Blueprint.model_validate(document)
                name = blueprint.metadata.name or ""
                if db.scalar(select(BlueprintRecord).where(BlueprintRecord.name == name)):
                    continue
                db.add(BlueprintRecord(name=name, document=blueprint.to_wire()))
                added += 1
    return added


def _exit_on_signal(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)


def run_local(
    state: Path, *, host: str, port: int, node_port: int = NODE_PORT, examples: Path | None
) -> int:
    import uvicorn

    from stellarstack.panel.api.app import create_app
    from stellarstack.panel.workers import default_background_tasks

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
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
    )
    context = build_context(settings)
    upgrade(context.engine)
    if examples is not None and examples.is_dir():
        log.info("example blueprints added: %d", load_example_blueprints(context, examples))
    app = create_app(context, background=default_background_tasks())
    with contextlib.ExitStack() as stack:
        if docker_available():
            url = stack.enter_context(
                run_node(
                    state,
                    token=values["node_token"],
                    public_key=context.public_key_pem,
                    port=node_port,
                )
            )
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
