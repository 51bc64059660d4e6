"""The activity log against the real app on SQLite and PostgreSQL: failed logins, denials and
mutations are recorded; admins and server members read it with filters; CSV and JSON exports
stream what the filters select, with spreadsheet formulas defused."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import Server, Subuser, TargetKind
from stellarstack.panel.services.activity import Actor
from support.panel import ADMIN_EMAIL, Panel, create_user


def add_server(panel: Panel, owner_id: str, name: str = "survival") -> str:
    with transaction(panel.context.sessions) as db:
        server = Server(
            name=name,
            owner_id=owner_id,
            target_kind=TargetKind.DOCKER,
            namespace="default",
            resource_name=name,
            blueprint="toy",
        )
        db.add(server)
        db.flush()
        return server.id


def add_subuser(panel: Panel, server_id: str, user_id: str, nodes: list[str]) -> None:
    with transaction(panel.context.sessions) as db:
        db.add(Subuser(server_id=server_id, user_id=user_id, permissions=nodes))


def entries(client: object, **params: str) -> list[dict[str, object]]:
    response = client.get("/api/admin/activity", params=params)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_failed_login_and_mutation_with_before_and_after_are_recorded(panel: Panel) -> None:
    admin = panel.setup_admin()
    failed = panel.client().raw.post(
        "/api/auth/login", json={"email": ADMIN_EMAIL, "password": "wrong password"}
    )
    assert failed.status_code == 401
    [entry] = entries(admin, event="auth.login.failed")
    assert entry["actor_id"] is None
    assert entry["ip"] == "testclient"
    assert entry["properties"] == {"email": ADMIN_EMAIL}

    user_id = create_user(panel, admin, "ada@example.com")
    assert admin.patch(f"/api/admin/users/{user_id}", json={"name": "Ada L"}).status_code == 200
    [update] = entries(admin, event="admin.user.update")
    assert update["target_id"] == user_id
    assert update["session_id"] is not None
    properties = update["properties"]
    assert isinstance(properties, dict)
    assert properties["before"]["name"] == "ada"
    assert properties["after"]["name"] == "Ada L"


def test_denials_are_recorded_although_the_request_is_rolled_back(panel: Panel) -> None:
    admin = panel.setup_admin()
    admin_id = admin.get("/api/account").json()["id"]
    user_id = create_user(panel, admin, "eve@example.com")
    eve = panel.login("eve@example.com")

    assert eve.get("/api/admin/users").status_code == 404
    [hidden] = entries(admin, event="auth.denied", actor=user_id)
    assert hidden["properties"]["status"] == 404  # type: ignore[index]
    assert hidden["properties"]["needed"] == "admin"  # type: ignore[index]
    assert hidden["properties"]["path"] == "/api/admin/users"  # type: ignore[index]

    # An API key without the scope: 403, recorded with the key.
    key = admin.create_api_key(["account:read"])
    keyed = panel.client(api_key=key)
    assert keyed.get("/api/admin/users").status_code == 403
    [scoped] = entries(admin, event="auth.denied", actor=admin_id)
    assert scoped["api_key_id"] is not None
    assert scoped["properties"]["needed"] == "admin:read"  # type: ignore[index]

    # A cookie-authenticated write without the CSRF header (a forged cross-site request).
    forged = admin.raw.post("/api/account/api-keys", json={"name": "k", "scopes": ["*"]})
    assert forged.status_code == 403
    [csrf] = [e for e in entries(admin, event="auth.denied") if e["properties"]["needed"] == "csrf"]  # type: ignore[index]
    assert csrf["actor_id"] == admin_id
    assert csrf["properties"]["method"] == "POST"  # type: ignore[index]

    # A subuser lacking the node on a server they can see: 403 with the server.
    server_id = add_server(panel, admin_id)
    add_subuser(panel, server_id, user_id, ["files.read"])
    assert eve.get(f"/api/servers/{server_id}/activity").status_code == 403
    denied = entries(admin, event="auth.denied", server=server_id)
    assert [d["properties"]["needed"] for d in denied] == ["activity.read"]  # type: ignore[index]


def test_server_activity_is_visible_to_members_with_the_node_only(panel: Panel) -> None:
    admin = panel.setup_admin()
    owner_id = create_user(panel, admin, "owner@example.com")
    friend_id = create_user(panel, admin, "friend@example.com")
    create_user(panel, admin, "stranger@example.com")
    server_id = add_server(panel, owner_id)
    other_id = add_server(panel, owner_id, name="creative")
    add_subuser(panel, server_id, friend_id, ["activity.read"])
    with transaction(panel.context.sessions) as db:
        for server, event in ((server_id, "server.power.start"), (other_id, "server.power.stop")):
            panel.context.activity.record(
                db, event=event, actor=Actor(user_id=owner_id), server_id=server
            )

    owner = panel.login("owner@example.com")
    items = owner.get(f"/api/servers/{server_id}/activity").json()["items"]
    assert [i["event"] for i in items] == ["server.power.start"]
    friend = panel.login("friend@example.com")
    assert friend.get(f"/api/servers/{server_id}/activity").json()["total"] == 1
    assert friend.get(f"/api/servers/{other_id}/activity").status_code == 404
    stranger = panel.login("stranger@example.com")
    assert stranger.get(f"/api/servers/{server_id}/activity").status_code == 404


def test_filters_and_pagination(panel: Panel) -> None:
    admin = panel.setup_admin()
    before = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(3):
        create_user(panel, admin, f"user{n}@example.com")
    panel.client().raw.post("/api/auth/login", json={"email": "x@example.com", "password": "no"})

    assert {e["event"] for e in entries(admin, event="admin.user")} == {"admin.user.create"}
    # A prefix matches whole dotted parts only.
    assert entries(admin, event="admin.use") == []
    assert {e["event"] for e in entries(admin, event="auth")} >= {"auth.setup", "auth.login.failed"}
    assert len(entries(admin, ip="testclient")) >= 5
    assert entries(admin, ip="203.0.113.9") == []
    assert len(entries(admin, since=before.isoformat(), event="admin.user.create")) == 3
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert entries(admin, since=future) == []
    assert len(entries(admin, until=before.isoformat())) == 0

    first = admin.get("/api/admin/activity", params={"per_page": 2, "page": 1}).json()
    second = admin.get("/api/admin/activity", params={"per_page": 2, "page": 2}).json()
    assert first["total"] == second["total"] >= 5
    assert len(first["items"]) == len(second["items"]) == 2
    assert {i["id"] for i in first["items"]}.isdisjoint({i["id"] for i in second["items"]})

    backwards = admin.get(
        "/api/admin/activity", params={"since": future, "until": before.isoformat()}
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"]["field"] == "query.until"
    naive = admin.get("/api/admin/activity", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 422
    assert naive.json()["error"]["field"] == "query.since"


def test_csv_and_json_exports_follow_the_filters_and_defuse_formulas(panel: Panel) -> None:
    admin = panel.setup_admin()
    create_user(panel, admin, "ada@example.com")
    user = panel.login("ada@example.com")
    # The requested id lands in the log as the target: user-controlled text.
    assert user.get("/api/servers/=1+2/activity").status_code == 404
    assert user.get("/api/servers/@SUM(A1)/activity").status_code == 404

    exported = admin.get(
        "/api/admin/activity/export", params={"format": "csv", "event": "auth.denied"}
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(row["target_id"] for row in rows) == ["'=1+2", "'@SUM(A1)"]
    assert {row["event"] for row in rows} == {"auth.denied"}

    as_json = admin.get("/api/admin/activity/export", params={"format": "json"})
    assert as_json.status_code == 200
    everything = as_json.json()
    assert {"auth.setup", "admin.user.create", "auth.denied"} <= {e["event"] for e in everything}
    # JSON is data, not a spreadsheet: values are exported as they are.
    assert "=1+2" in {e["target_id"] for e in everything}
    # Newest first, and bounded by `limit`.
    ats = [e["at"] for e in everything]
    assert ats == sorted(ats, reverse=True)
    limited = admin.get("/api/admin/activity/export", params={"format": "json", "limit": 2})
    assert len(limited.json()) == 2

    assert user.get("/api/admin/activity/export").status_code == 404
    bad = admin.get("/api/admin/activity/export", params={"format": "xml"})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "query.format"


def test_server_export_holds_only_that_server(panel: Panel) -> None:
    admin = panel.setup_admin()
    admin_id = admin.get("/api/account").json()["id"]
    server_id = add_server(panel, admin_id)
    with transaction(panel.context.sessions) as db:
        for n in range(3):
            panel.context.activity.record(
                db,
                event="server.console.command",
                actor=Actor(user_id=admin_id),
                server_id=server_id,
                properties={"command": f"-say {n}"},
            )
    exported = admin.get(f"/api/servers/{server_id}/activity/export", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 3
    assert {row["server_id"] for row in rows} == {server_id}


def test_entries_are_timed_by_the_panel_clock(panel: Panel) -> None:
    admin = panel.setup_admin()
    create_user(panel, admin, "early@example.com")
    panel.clock.advance(days=2)
    create_user(panel, admin, "late@example.com")
    cut = (panel.clock() - timedelta(days=1)).isoformat()
    late = entries(admin, event="admin.user.create", since=cut)
    early = entries(admin, event="admin.user.create", until=cut)
    assert [e["properties"]["after"]["email"] for e in late] == ["late@example.com"]  # type: ignore[index]
    assert [e["properties"]["after"]["email"] for e in early] == ["early@example.com"]  # type: ignore[index]


def test_page_numbers_are_bounded(panel: Panel) -> None:
    admin = panel.setup_admin()
    for path in ("/api/admin/activity", "/api/admin/webhooks"):
        huge = admin.get(path, params={"page": 2**62})
        assert huge.status_code == 422, path
        assert huge.json()["error"]["field"] == "query.page"
