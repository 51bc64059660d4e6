"""The permission matrix: every HTTP route of the panel that acts on a server, called by every
kind of caller, checked against the permission node the route declares.

Routes are found by walking the application, so a new route is covered the day it is added:
- under `/api/servers/{server_id}`: the owner, an admin, a subuser holding exactly the route's
  node and an API key with the node's scope are let through; a subuser without the node gets
  403 naming the node, an API key without the scope 403 naming the scope, and a user with no
  access gets exactly the answer an unknown server id gets (404), so nobody learns the server
  exists;
- under `/api/admin`: users get 404, an admin's API key without the admin scope 403.

"Let through" means: any answer but those denials (the node behind the test server refuses
connections, so routes that reach it answer 502/503, and empty bodies answer 422).
Runs on SQLite: what is checked is the routing and the dependencies, not the database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from stellarstack.panel import permissions
from stellarstack.panel.api.app import create_app
from stellarstack.panel.context import build_context
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import Node, Server, Subuser, TargetKind
from support.panel import Clock, Panel, PanelClient, create_user, panel_settings

# Nothing listens on the discard port of loopback: backend calls fail at once.
DEAD_NODE_URL = "http://127.0.0.1:9"


def _declared(dependant: Any, attribute: str) -> Any:
    """The first dependency of a route (at any depth) carrying `attribute`."""
    for dependency in dependant.dependencies:
        value = getattr(dependency.call, attribute, None)
        if value is not None:
            return value
        nested = _declared(dependency, attribute)
        if nested is not None:
            return nested
    return None


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str
    node: str

    def url(self, server_id: str) -> str:
        filled = self.path.replace("{server_id}", server_id)
        return re.sub(r"\{[^}:]+(:path)?\}", "x", filled)


def all_routes(app: Any) -> list[Any]:
    """The application's routes, looking inside included routers (their routes carry the
    router's prefix already; the panel includes them without another one)."""
    found = []
    for route in app.routes:
        included = getattr(route, "original_router", None)
        found.extend(included.routes if included is not None else [route])
    return found


def server_routes(app: Any) -> list[RouteCase]:
    cases = []
    for route in all_routes(app):
        if not isinstance(route, APIRoute) or "{server_id}" not in route.path:
            continue
        if route.path.startswith("/api/admin"):
            continue  # admin routes: see the last test
        node = _declared(route.dependant, "permission_node")
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            cases.append(RouteCase(method, route.path, node or ""))
    return cases


def admin_routes(app: Any) -> list[tuple[str, str, str]]:
    found = []
    for route in all_routes(app):
        if isinstance(route, APIRoute) and route.path.startswith("/api/admin"):
            scope = _declared(route.dependant, "admin_scope")
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                found.append((method, route.path, scope or ""))
    return found


@pytest.fixture
def matrix_panel(tmp_path: Path) -> Iterator[Panel]:
    context = build_context(panel_settings(tmp_path, f"sqlite:///{tmp_path}/panel.db"))
    clock = Clock()
    context.clock = clock
    running = Panel(context=context, app=create_app(context), clock=clock)
    yield running
    running.close()


@dataclass
class Callers:
    admin: PanelClient
    owner: PanelClient
    stranger: PanelClient
    holder: PanelClient
    lacker: PanelClient
    holder_id: str
    lacker_id: str
    owner_id: str
    node_id: str


def _callers(panel: Panel) -> Callers:
    admin = panel.setup_admin()
    ids = {
        email: create_user(panel, admin, email)
        for email in (
            "owner@example.com",
            "stranger@example.com",
            "holder@example.com",
            "lacker@example.com",
        )
    }
    with transaction(panel.context.sessions) as db:
        node = Node(name="dead", url=DEAD_NODE_URL, token="t" * 40, agent_id="dead")
        db.add(node)
        db.flush()
        node_id = node.id
    return Callers(
        admin=admin,
        owner=panel.login("owner@example.com"),
        stranger=panel.login("stranger@example.com"),
        holder=panel.login("holder@example.com"),
        lacker=panel.login("lacker@example.com"),
        holder_id=ids["holder@example.com"],
        lacker_id=ids["lacker@example.com"],
        owner_id=ids["owner@example.com"],
        node_id=node_id,
    )


def _fresh_server(panel: Panel, callers: Callers, node: str) -> str:
    """A server of the owner where `holder` holds exactly `node` and `lacker` every node of
    other categories."""
    other = [n for n in permissions.ALL_NODES if n.split(".")[0] != node.split(".")[0]]
    with transaction(panel.context.sessions) as db:
        server = Server(
            name="matrix",
            owner_id=callers.owner_id,
            target_kind=TargetKind.DOCKER,
            node_id=callers.node_id,
            namespace="default",
            resource_name=f"m{len(db.query(Server).all())}",
            blueprint="toy",
        )
        db.add(server)
        db.flush()
        db.add(Subuser(server_id=server.id, user_id=callers.holder_id, permissions=[node]))
        db.add(Subuser(server_id=server.id, user_id=callers.lacker_id, permissions=other))
        return server.id


def _call(client: PanelClient, case: RouteCase, server_id: str) -> Any:
    kwargs: dict[str, Any] = {}
    if case.method in {"POST", "PUT", "PATCH"}:
        kwargs["json"] = {}
    return client.request(case.method, case.url(server_id), **kwargs)


def _is_denial(response: Any) -> bool:
    if response.status_code not in (403, 404):
        return False
    error = response.json().get("error", {})
    message = error.get("message", "")
    return (response.status_code == 404 and message == "server not found") or (
        response.status_code == 403 and ("permission" in message or "scope" in message)
    )


def test_every_server_route_declares_a_known_node(matrix_panel: Panel) -> None:
    cases = server_routes(matrix_panel.app)
    assert len(cases) >= 30, cases
    undeclared = [f"{c.method} {c.path}" for c in cases if c.node not in permissions.ALL_NODES]
    # Routes that check access themselves, listed here on purpose and nowhere else: the
    # server itself (anyone who sees it reads it; its fields and deletion are per caller),
    # power, whose node depends on the action in the body (control.start, control.stop, ...),
    # and what the caller may do on the server (anyone who sees it reads their own nodes).
    owner_only = {
        "DELETE /api/servers/{server_id}",
        "GET /api/servers/{server_id}",
        "PATCH /api/servers/{server_id}",
        "POST /api/servers/{server_id}/power",
        "GET /api/servers/{server_id}/permissions",
    }
    assert set(undeclared) <= owner_only, undeclared


def test_permission_matrix(matrix_panel: Panel) -> None:
    panel = matrix_panel
    callers = _callers(panel)
    owner_keys: dict[str, PanelClient] = {}
    outsider_key = panel.client(api_key=callers.owner.create_api_key(["account:read"]))
    failures: list[str] = []
    unknown = callers.stranger.get("/api/servers/doesnotexist/activity")
    cases = [c for c in server_routes(panel.app) if c.node in permissions.ALL_NODES]
    for case in cases:
        server_id = _fresh_server(panel, callers, case.node)
        scope = permissions.scope_for(case.node)
        if scope not in owner_keys:
            owner_keys[scope] = panel.client(api_key=callers.owner.create_api_key([scope]))
        label = f"{case.method} {case.path} [{case.node}]"
        for who, client in (
            ("owner", callers.owner),
            ("admin", callers.admin),
            ("subuser holding the node", callers.holder),
            (f"API key with {scope}", owner_keys[scope]),
        ):
            response = _call(client, case, server_id)
            if _is_denial(response) or response.status_code == 401:
                failures.append(f"{label}: {who} denied: {response.status_code} {response.text}")
        lacking = _call(callers.lacker, case, server_id)
        if lacking.status_code != 403 or case.node not in lacking.json()["error"]["message"]:
            failures.append(f"{label}: subuser without the node got {lacking.status_code}")
        no_scope = _call(outsider_key, case, server_id)
        if no_scope.status_code != 403 or scope not in no_scope.json()["error"]["message"]:
            failures.append(f"{label}: key without {scope} got {no_scope.status_code}")
        hidden = _call(callers.stranger, case, server_id)
        if hidden.status_code != 404 or hidden.json() != unknown.json():
            failures.append(f"{label}: stranger got {hidden.status_code} {hidden.text[:200]}")
    assert not failures, "\n".join(failures)


def test_admin_routes_are_hidden_from_users_and_need_admin_scopes(matrix_panel: Panel) -> None:
    panel = matrix_panel
    callers = _callers(panel)
    reader = panel.client(api_key=callers.admin.create_api_key(["servers:read"]))
    failures = []
    routes = admin_routes(panel.app)
    assert len(routes) >= 20, routes
    for method, path, scope in routes:
        url = re.sub(r"\{[^}:]+(:path)?\}", "x", path)
        body = {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}
        as_user = callers.owner.request(method, url, **body)
        if as_user.status_code != 404:
            failures.append(f"{method} {path}: a user got {as_user.status_code}")
        as_key = reader.request(method, url, **body)
        if scope and (as_key.status_code != 403 or scope not in as_key.text):
            failures.append(f"{method} {path}: a key without {scope} got {as_key.status_code}")
        if not scope:
            failures.append(f"{method} {path}: declares no admin scope")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("action", ["start", "stop", "restart", "kill"])
def test_power_needs_the_node_of_its_action(matrix_panel: Panel, action: str) -> None:
    panel = matrix_panel
    callers = _callers(panel)
    server_id = _fresh_server(panel, callers, f"control.{action}")
    url = f"/api/servers/{server_id}/power"
    allowed = callers.holder.post(url, json={"action": action})
    assert not _is_denial(allowed), allowed.text
    other = "stop" if action == "start" else "start"
    refused = callers.holder.post(url, json={"action": other})
    assert refused.status_code == 403
    assert f"control.{other}" in refused.json()["error"]["message"]
    hidden = callers.stranger.post(url, json={"action": action})
    assert hidden.status_code == 404
