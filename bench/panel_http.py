"""The panel's API under load, against a minimal FastAPI + SQLAlchemy Core app running the same
SQL statements (and the same SHA-256 key check), in the same run.

`wrk` drives each endpoint of the real panel process (`stellarstack panel serve`) and of the
minimal app (written below, served by uvicorn the same way), one after the other, at each
number of connections, with one worker and then with `--workers 2`:

- `GET /api/servers`: a user's server list (25 servers, each with an allocation; API key);
- `GET /api/servers/{id}`: one server, its status read from its node now and stored;
- `GET /api/servers/{id}/files/list`: the root of its file tree, from its node;
- `POST /api/servers/{id}/power` (`start`): a power request to its node, logged.

The last three need a node agent with a running toy server (Docker and
`localhost/stellarstack/toy:1`); without them only the list is measured, and the report says
why. The machine is shared and noisy, so figures are reported as ratios, each with the load
average of the minute before it:

- requests/s: panel ÷ minimal (1.0 = the panel costs nothing over the same statements);
- p99 latency: panel ÷ minimal (lower is better);
- workers: the panel's requests/s with 2 workers ÷ with 1.

Errors (non-2xx answers, socket errors, timeouts) are counted and shown; none is expected.
SQLite by default; `--postgres` adds a throwaway PostgreSQL server (the test suite's, from the
Debian binaries), or `--postgres URL` uses an empty database there. Needs `wrk` (Debian
package); prints why and exits 0 without it. Every run is bounded (`--seconds` each).

Usage: python bench/panel_http.py [--seconds 5] [--connections 16,64,256] [--workers 1,2]
       [--postgres [URL]] [--no-node]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SERVERS = 25
TOY_IMAGE = "localhost/stellarstack/toy:1"
NAMESPACE = "default"
CLI = Path(sys.executable).with_name("stellarstack")

MINIMAL_APP = '''
"""A minimal FastAPI + SQLAlchemy Core app: the panel's SQL statements and nothing else (no
middleware, no dependencies, no permission model, no response models)."""

import hashlib
import hmac
import json
import os
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from sqlalchemy import (
    JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, bindparam,
    create_engine, event, func, insert, or_, select, update,
)

URL = os.environ["BENCH_DATABASE_URL"]
if URL.startswith("sqlite"):
    engine = create_engine(URL, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=10, max_overflow=14)

    @event.listens_for(engine, "connect")
    def _pragmas(connection, _):
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA busy_timeout=30000")
else:
    engine = create_engine(URL, pool_size=10, max_overflow=14)

Time = DateTime(timezone=True)
metadata = MetaData()
users = Table("users", metadata, Column("id", String), Column("role", String),
              Column("disabled_at", Time))
api_keys = Table("api_keys", metadata, Column("id", String), Column("user_id", String),
                 Column("prefix", String), Column("secret_hash", String),
                 Column("scopes", JSON), Column("expires_at", Time),
                 Column("revoked_at", Time), Column("last_used_at", Time),
                 Column("last_used_ip", String))
servers = Table(
    "servers", metadata, Column("id", String), Column("name", String),
    Column("description", String), Column("owner_id", String), Column("target_kind", String),
    Column("node_id", String), Column("kubernetes_target_id", String),
    Column("namespace", String), Column("resource_name", String), Column("blueprint", String),
    Column("external", Boolean), Column("suspended", Boolean),
    Column("allocation_limit", Integer), Column("backup_limit", Integer),
    Column("schedule_limit", Integer), Column("state", String), Column("status", JSON),
    Column("status_read_at", Time), Column("created_at", Time), Column("updated_at", Time),
)
subusers = Table("subusers", metadata, Column("server_id", String), Column("user_id", String),
                 Column("permissions", JSON))
allocations = Table("allocations", metadata, Column("id", String), Column("ip", String),
                    Column("port", Integer), Column("alias", String),
                    Column("server_id", String))
nodes = Table("nodes", metadata, Column("id", String), Column("url", String),
              Column("token", String))
blueprints = Table("blueprints", metadata, Column("name", String), Column("document", JSON))
activity = Table("activity_log", metadata, Column("id", String), Column("at", Time),
                 Column("event", String), Column("actor_id", String),
                 Column("api_key_id", String), Column("ip", String),
                 Column("target_type", String), Column("target_id", String),
                 Column("server_id", String), Column("properties", JSON))
webhooks = Table("webhooks", metadata, Column("id", String), Column("server_id", String),
                 Column("events", JSON), Column("enabled", Boolean))

KEY = (
    select(api_keys.c.id, api_keys.c.secret_hash, api_keys.c.scopes, api_keys.c.expires_at,
           api_keys.c.revoked_at, api_keys.c.last_used_at, users.c.id.label("user_id"),
           users.c.role, users.c.disabled_at)
    .join_from(api_keys, users, users.c.id == api_keys.c.user_id)
    .where(api_keys.c.prefix == bindparam("prefix"))
)
SERVER_COLUMNS = [c for c in servers.c if c.name != "updated_at"]
VISIBLE = or_(
    servers.c.owner_id == bindparam("user_id"),
    servers.c.id.in_(select(subusers.c.server_id)
                     .where(subusers.c.user_id == bindparam("user_id"))),
)
LIST = (select(*SERVER_COLUMNS).where(VISIBLE).order_by(servers.c.created_at, servers.c.id)
        .limit(bindparam("limit")).offset(bindparam("offset")))
COUNT = select(func.count()).select_from(servers).where(VISIBLE)
ALLOCATIONS = (select(allocations.c.server_id, allocations.c.id, allocations.c.ip,
                      allocations.c.port, allocations.c.alias)
               .where(allocations.c.server_id.in_(bindparam("ids", expanding=True)))
               .order_by(allocations.c.ip, allocations.c.port))
ONE = select(*SERVER_COLUMNS).where(servers.c.id == bindparam("id"))
NODE = select(nodes.c.url, nodes.c.token).where(nodes.c.id == bindparam("id"))
BLUEPRINT = select(blueprints.c.document).where(blueprints.c.name == bindparam("name"))
HOOKS = select(webhooks.c.id).where(webhooks.c.enabled.is_(True))
STATUS = (update(servers).where(servers.c.id == bindparam("sid"))
          .values(status=bindparam("status"), state=bindparam("state"),
                  status_read_at=bindparam("now")))
TOUCH = (update(api_keys).where(api_keys.c.id == bindparam("kid"))
         .values(last_used_at=bindparam("now"), last_used_ip=bindparam("ip")))

app = FastAPI()
client = httpx.AsyncClient(timeout=30)


def caller(connection, authorization, ip):
    prefix, _, secret = authorization[7:].partition(".")
    key = connection.execute(KEY, {"prefix": prefix}).one_or_none()
    digest = hashlib.sha256(secret.encode()).hexdigest()
    if key is None or not hmac.compare_digest(key.secret_hash.encode(), digest.encode()):
        raise HTTPException(401)
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at.replace(tzinfo=UTC) > timedelta(
        seconds=60
    ):
        with engine.begin() as writer:
            writer.execute(TOUCH, {"kid": key.id, "now": now, "ip": ip})
    return key


def server_of(connection, key, server_id):
    row = connection.execute(ONE, {"id": server_id}).one_or_none()
    if row is None or (row.owner_id != key.user_id and key.role != "admin"):
        raise HTTPException(404)
    return row


def allocations_by_server(connection, ids):
    found = {i: [] for i in ids}
    for row in connection.execute(ALLOCATIONS, {"ids": ids}):
        found[row.server_id].append({"id": row.id, "ip": row.ip, "port": row.port,
                                     "alias": row.alias})
    return found


def server_page(request, authorization, page, per_page):
    with engine.begin() as connection:
        key = caller(connection, authorization, request.client.host)
        rows = connection.execute(LIST, {"user_id": key.user_id, "limit": per_page,
                                         "offset": (page - 1) * per_page}).mappings().all()
        total = len(rows) if page == 1 and len(rows) < per_page else connection.execute(
            COUNT, {"user_id": key.user_id}).scalar_one()
        by_server = allocations_by_server(connection, [row["id"] for row in rows])
    items = [{**row, "allocations": by_server[row["id"]]} for row in rows]
    return {"items": items, "total": total, "page": page, "per_page": per_page}


@app.get("/api/servers")
def list_servers(request: Request, authorization: str = Header(), page: int = 1,
                 per_page: int = 50):
    """Returned as data: FastAPI encodes it (the usual way to write an endpoint)."""
    return server_page(request, authorization, page, per_page)


def iso(value):
    return value.isoformat() if isinstance(value, datetime) else str(value)


@app.get("/json/api/servers")
def list_servers_json(request: Request, authorization: str = Header(), page: int = 1,
                      per_page: int = 50):
    """The same JSON (ISO times) written by the standard library: the fastest plain way."""
    body = server_page(request, authorization, page, per_page)
    return Response(json.dumps(body, default=iso), media_type="application/json")


@app.get("/api/servers/{server_id}")
async def get_server(server_id: str, request: Request, authorization: str = Header()):
    def before():
        with engine.begin() as connection:
            key = caller(connection, authorization, request.client.host)
            row = server_of(connection, key, server_id)
            return row, connection.execute(NODE, {"id": row.node_id}).one()
    row, node = await run_in_threadpool(before)
    answer = await client.get(
        f"{node.url}/api/v1/namespaces/{row.namespace}/gameservers/{row.resource_name}",
        headers={"Authorization": f"Bearer {node.token}"})
    document = answer.json()

    def after():
        status = document.get("status") or {}
        with engine.begin() as connection:
            connection.execute(ONE, {"id": row.id}).one()
            connection.execute(STATUS, {"sid": row.id, "status": status,
                                        "state": status.get("state") or "Pending",
                                        "now": datetime.now(UTC)})
        with engine.begin() as connection:
            fresh = connection.execute(ONE, {"id": row.id}).mappings().one()
            connection.execute(BLUEPRINT, {"name": fresh["blueprint"]}).one_or_none()
            by_server = allocations_by_server(connection, [row.id])
        return {**fresh, "allocations": by_server[row.id], "spec": document.get("spec")}
    return await run_in_threadpool(after)


@app.get("/api/servers/{server_id}/files/list")
async def list_files(server_id: str, request: Request, authorization: str = Header(),
                     path: str = "/"):
    def before():
        with engine.begin() as connection:
            key = caller(connection, authorization, request.client.host)
            row = server_of(connection, key, server_id)
            return row, connection.execute(NODE, {"id": row.node_id}).one()
    row, node = await run_in_threadpool(before)
    answer = await client.get(
        f"{node.url}/api/v1/namespaces/{row.namespace}/gameservers/{row.resource_name}"
        "/files/list", params={"path": path},
        headers={"Authorization": f"Bearer {node.token}"})
    return Response(answer.content, status_code=answer.status_code,
                    media_type="application/json")


@app.post("/api/servers/{server_id}/power", status_code=202)
async def power(server_id: str, body: dict, request: Request, authorization: str = Header()):
    def before():
        with engine.begin() as connection:
            key = caller(connection, authorization, request.client.host)
            row = server_of(connection, key, server_id)
            return key, row, connection.execute(NODE, {"id": row.node_id}).one()
    key, row, node = await run_in_threadpool(before)
    answer = await client.post(
        f"{node.url}/api/v1/namespaces/{row.namespace}/gameservers/{row.resource_name}"
        "/power", json={"action": body["action"]},
        headers={"Authorization": f"Bearer {node.token}"})
    if answer.status_code >= 300:
        raise HTTPException(502)

    def log():
        with engine.begin() as connection:
            connection.execute(insert(activity).values(
                id=os.urandom(16).hex(), at=datetime.now(UTC),
                event=f"server.power.{body['action']}", actor_id=key.user_id,
                api_key_id=key.id, ip=request.client.host, target_type="server",
                target_id=row.id, server_id=row.id, properties={}))
            connection.execute(HOOKS).all()
    await run_in_threadpool(log)
    return {"action": body["action"], "request": None}
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(
    command: list[str], env: dict[str, str], url: str, log: Path, *, within: float = 120
) -> Iterator[None]:
    """Run `command` (in its own process group, workers included) until the block ends."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=output, start_new_session=True
        )
    try:
        deadline = time.monotonic() + within
        while True:
            if process.poll() is not None:
                raise SystemExit(f"server exited: {log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code < 500:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"server did not answer: {log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Run:
    rps: float
    p99_ms: float
    requests: int
    errors: int
    error_kinds: str
    load: float
    """The 1-minute load average just before the run."""

    def describe(self) -> str:
        errors = f" ERRORS {self.errors} ({self.error_kinds})" if self.errors else ""
        return f"{self.rps:7.0f} req/s p99 {self.p99_ms:7.1f} ms{errors}"


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    headers: dict[str, str],
    body: str | None,
    scratch: Path,
) -> Run:
    load = os.getloadavg()[0]
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if body is not None:
        script = scratch / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = [[{body}]]\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, url], check=True, capture_output=True, text=True, timeout=seconds + 60
    ).stdout
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99_match = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    total_match = re.search(r"(\d+) requests in", output)
    kinds = {
        kind: int(count)
        for kind, count in re.findall(r"(connect|read|write|timeout) (\d+)", output)
        if int(count)
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        kinds["non-2xx"] = int(non_2xx.group(1))
    errors = sum(kinds.values())
    rps = float(rps_match.group(1)) if rps_match else 0.0
    p99 = 0.0
    if p99_match:
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_match.group(2)]
        p99 = float(p99_match.group(1)) * scale
    requests = int(total_match.group(1)) if total_match else 0
    return Run(rps, p99, requests, errors, " ".join(f"{k} {v}" for k, v in kinds.items()), load)


# --- the database and what is in it ------------------------------------------------------


@contextlib.contextmanager
def database(kind: str, postgres: str | None, scratch: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{scratch}/panel-{uuid.uuid4().hex[:6]}.db"
        return
    if postgres and postgres != "start":
        yield postgres
        return
    sys.path.insert(0, str(REPO / "tests"))
    from support.postgres import run_postgres  # the test suite's throwaway server

    with run_postgres() as server:
        server.admin("CREATE DATABASE bench")
        yield server.url("bench")


@dataclass
class Node:
    url: str
    token: str


def node_unavailable() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.images.get(TOY_IMAGE)
        client.close()
    except Exception as exc:  # no engine, no image: the node endpoints cannot run here
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def node_with_toy(scratch: Path) -> Iterator[Node]:
    """A node agent with the toy blueprint and one running toy server, `bench-toy`."""
    sys.path.insert(0, str(REPO / "tests"))
    from support.runtime_harness import TOY_BLUEPRINT

    token = secrets.token_hex(32)
    port = free_port()
    agent = f"bench-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "STELLARSTACK_NODE_TOKEN": token,
        "STELLARSTACK_NODE_DATA_DIR": str(scratch / "node"),
        "STELLARSTACK_NODE_PORT": str(port),
        "STELLARSTACK_NODE_AGENT_ID": agent,
        "STELLARSTACK_NODE_PUBLISH_ADDRESS": "127.0.0.1",
    }
    url = f"http://127.0.0.1:{port}"
    with serve([str(CLI), "nodeproxy"], env, f"{url}/healthz", scratch / "node.log"):
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
            client.put("/api/v1/blueprints/toy", json=TOY_BLUEPRINT).raise_for_status()
            host_port = free_port()
            document = {
                "apiVersion": "stellarstack.io/v1alpha1",
                "kind": "GameServer",
                "metadata": {"name": "bench-toy", "namespace": NAMESPACE},
                "spec": {
                    "blueprint": "toy",
                    "resources": {"cpu": "500m", "memory": "128Mi", "disk": "1Gi", "pids": 64},
                    "ports": [
                        {"name": "status", "port": 7777, "protocol": "TCP", "hostPort": host_port}
                    ],
                },
            }
            where = f"/api/v1/namespaces/{NAMESPACE}/gameservers/bench-toy"
            client.put(where, json=document).raise_for_status()
            deadline = time.monotonic() + 120
            while client.get(f"{where}/status").json().get("state") != "Running":
                if time.monotonic() > deadline:
                    raise SystemExit("the toy server did not run within 120 s")
                time.sleep(0.5)
            try:
                yield Node(url, token)
            finally:
                client.delete(where)
                deadline = time.monotonic() + 60
                while client.get(where).status_code != 404 and time.monotonic() < deadline:
                    time.sleep(0.5)


@dataclass
class Seeded:
    key: str
    server_id: str | None
    """The server on the node (None without a node)."""


def seed(panel_url: str, database_url: str, node: Node | None) -> Seeded:
    """An admin, a user owning `SERVERS` servers (each with an allocation; one on the node
    when there is one) and the user's API key."""
    os.environ["STELLARSTACK_PANEL_DATABASE_URL"] = database_url
    from stellarstack.panel.context import build_context
    from stellarstack.panel.db.engine import transaction
    from stellarstack.panel.db.models import Allocation, BlueprintRecord, Server, TargetKind, User
    from stellarstack.panel.db.models import Node as NodeRow
    from stellarstack.panel.settings import PanelSettings

    password = secrets.token_hex(8)
    with httpx.Client(base_url=panel_url, timeout=30) as client:
        setup = client.post(
            "/api/auth/setup",
            json={"email": "admin@example.com", "name": "Admin", "password": password},
        )
        setup.raise_for_status()
        csrf = {"X-CSRF-Token": setup.json()["csrf_token"]}
        client.post(
            "/api/admin/users",
            json={"email": "bench@example.com", "name": "Bench", "password": password},
            headers=csrf,
        ).raise_for_status()
    with httpx.Client(base_url=panel_url, timeout=30) as client:
        login = client.post(
            "/api/auth/login", json={"email": "bench@example.com", "password": password}
        )
        login.raise_for_status()
        created = client.post(
            "/api/account/api-keys",
            json={"name": "bench", "scopes": ["servers:read", "power:control", "files:read"]},
            headers={"X-CSRF-Token": login.json()["csrf_token"]},
        )
        created.raise_for_status()
        key: str = created.json()["key"]
    context = build_context(PanelSettings())
    server_id = None
    with transaction(context.sessions) as db:
        owner = db.query(User).filter_by(email="bench@example.com").one()
        row = NodeRow(
            name="bench",
            url=node.url if node else "http://127.0.0.1:9",
            token=node.token if node else secrets.token_hex(32),
            agent_id="bench",
        )
        db.add(row)
        if node is not None:
            sys.path.insert(0, str(REPO / "tests"))
            from support.runtime_harness import TOY_BLUEPRINT

            db.add(BlueprintRecord(name="toy", document=TOY_BLUEPRINT))
        db.flush()
        for index in range(SERVERS):
            on_node = node is not None and index == 0
            server = Server(
                name=f"Server {index}",
                owner_id=owner.id,
                target_kind=TargetKind.DOCKER,
                node_id=row.id,
                namespace=NAMESPACE,
                resource_name="bench-toy" if on_node else f"server-{index}",
                blueprint="toy",
                state="Running",
            )
            db.add(server)
            db.flush()
            db.add(
                Allocation(node_id=row.id, ip="127.0.0.1", port=20000 + index, server_id=server.id)
            )
            if on_node:
                server_id = server.id
    context.engine.dispose()
    return Seeded(key, server_id)


# --- the runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    label: str
    path: str
    body: str | None = None
    json_variant: bool = False
    """The minimal app also answers it with json.dumps (`/json` + path)."""


def endpoints(server_id: str | None) -> list[Endpoint]:
    found = [Endpoint("GET /api/servers", "/api/servers", json_variant=True)]
    if server_id is not None:
        found += [
            Endpoint("GET /api/servers/{id}", f"/api/servers/{server_id}"),
            Endpoint("GET .../files/list", f"/api/servers/{server_id}/files/list?path=/"),
            Endpoint(
                "POST .../power start",
                f"/api/servers/{server_id}/power",
                body='{"action": "start"}',
            ),
        ]
    return found


Results = dict[tuple[str, int, int], dict[str, Run]]
"""(endpoint, workers, connections) → target (panel, minimal, minimal/json) → run."""


def measure(args: argparse.Namespace, kind: str, scratch: Path, node: Node | None) -> Results:
    results: Results = {}
    with database(kind, args.postgres, scratch) as url:
        panel_port, minimal_port = free_port(), free_port()
        env = {
            **os.environ,
            "STELLARSTACK_PANEL_ENVIRONMENT": "development",
            "STELLARSTACK_PANEL_SECRET_KEY": secrets.token_hex(32),
            "STELLARSTACK_PANEL_DATABASE_URL": url,
            "STELLARSTACK_PANEL_DATA_DIR": str(scratch),
            "STELLARSTACK_PANEL_PORT": str(panel_port),
            "BENCH_DATABASE_URL": url,
        }
        os.environ.update({k: v for k, v in env.items() if k.startswith("STELLARSTACK_PANEL_")})
        (scratch / "minimal.py").write_text(textwrap.dedent(MINIMAL_APP))
        panel_url = f"http://127.0.0.1:{panel_port}"
        minimal_url = f"http://127.0.0.1:{minimal_port}"
        seeded: Seeded | None = None
        for workers in args.workers:
            panel_command = [str(CLI), "panel", "serve", "--workers", str(workers)]
            minimal_command = [
                *(sys.executable, "-m", "uvicorn", "--app-dir", str(scratch), "minimal:app"),
                *("--port", str(minimal_port), "--workers", str(workers)),
                *("--log-level", "warning"),
            ]
            with serve(panel_command, env, f"{panel_url}/healthz", scratch / "panel.log"):
                if seeded is None:
                    seeded = seed(panel_url, url, node)
                auth = {"Authorization": f"Bearer {seeded.key}"}
                with serve(minimal_command, env, f"{minimal_url}/docs", scratch / "min.log"):
                    for endpoint in endpoints(seeded.server_id):
                        if args.only not in endpoint.label:
                            continue
                        targets = {
                            "panel": panel_url + endpoint.path,
                            "minimal": minimal_url + endpoint.path,
                        }
                        if endpoint.json_variant:
                            targets["minimal/json"] = minimal_url + "/json" + endpoint.path
                        for target in targets.values():  # each answers before it is measured
                            check = httpx.request(
                                "POST" if endpoint.body else "GET",
                                target,
                                headers={**auth, "Content-Type": "application/json"},
                                content=endpoint.body,
                                timeout=30,
                            )
                            if check.status_code >= 300:
                                raise SystemExit(f"{target}: {check.text[:500]}")
                        for connections in args.connections:
                            runs: dict[str, Run] = {}
                            for name, target in targets.items():
                                common = {
                                    "headers": auth,
                                    "body": endpoint.body,
                                    "scratch": scratch,
                                }
                                wrk(target, seconds=2, connections=4, **common)  # warm-up
                                runs[name] = wrk(
                                    target, seconds=args.seconds, connections=connections, **common
                                )
                            results[(endpoint.label, workers, connections)] = runs
                            report_row(kind, endpoint.label, workers, connections, runs)
    return results


def report_row(kind: str, label: str, workers: int, connections: int, runs: dict[str, Run]) -> None:
    panel = runs["panel"]
    line = f"{kind:<10} {label:<22} w{workers} c{connections:<4} panel {panel.describe()}"
    for name, run in runs.items():
        if name == "panel":
            continue
        ratio = panel.rps / run.rps if run.rps else 0.0
        p99 = panel.p99_ms / run.p99_ms if run.p99_ms else 0.0
        line += f" | {name} {run.describe()} ratio {ratio:4.2f}x p99 {p99:4.2f}x"
    loads = "/".join(f"{run.load:.1f}" for run in runs.values())
    print(f"{line} | load {loads}", flush=True)


def report_workers(kind: str, results: Results) -> None:
    for (label, workers, connections), runs in sorted(results.items()):
        if workers == 1 or (label, 1, connections) not in results:
            continue
        single = results[(label, 1, connections)]
        scaling = "  ".join(
            f"{name} {run.rps / max(single[name].rps, 1):4.2f}x" for name, run in runs.items()
        )
        print(
            f"{kind:<10} {label:<22} c{connections:<4} workers {workers} ÷ 1: {scaling}  "
            f"(load {runs['panel'].load:.1f})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", default="16,64,256")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--postgres", nargs="?", const="start", default=None)
    parser.add_argument("--no-node", action="store_true", help="measure the list only")
    parser.add_argument(
        "--only", default="", help="measure only endpoints whose label contains this text"
    )
    args = parser.parse_args()
    args.connections = [int(c) for c in args.connections.split(",")]
    args.workers = [int(w) for w in args.workers.split(",")]
    if shutil.which("wrk") is None:
        print("panel_http: skipped: `wrk` is not installed (Debian package wrk)")
        return 0
    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
    print(f"{os.cpu_count()} CPUs; load average now {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="stellarstack-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        missing = "--no-node" if args.no_node else node_unavailable()
        with contextlib.ExitStack() as stack:
            node = None
            if missing:
                print(f"node endpoints skipped: {missing}")
            else:
                node = stack.enter_context(node_with_toy(scratch))
            for kind in kinds:
                results = measure(args, kind, scratch, node)
                report_workers(kind, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
