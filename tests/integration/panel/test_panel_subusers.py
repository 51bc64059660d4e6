"""Subusers: invitations by email, the subset rule, expiry, and who learns what exists."""

from __future__ import annotations

from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import Server, TargetKind, User
from support.panel import Panel, PanelClient, create_user


def _server_owned_by(panel: Panel, email: str) -> str:
    """A server row as the servers routes would leave it (no backend needed for subusers)."""
    with transaction(panel.context.sessions) as db:
        owner = db.query(User).filter_by(email=email).one()
        server = Server(
            name="Survival",
            owner_id=owner.id,
            target_kind=TargetKind.KUBERNETES,
            namespace="games",
            resource_name="survival",
            blueprint="toy",
        )
        db.add(server)
        db.flush()
        return server.id


def _invite(client: PanelClient, server_id: str, email: str, nodes: list[str]) -> dict[str, str]:
    response = client.post(
        f"/api/servers/{server_id}/users/invitations", json={"email": email, "permissions": nodes}
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def _accept(client: PanelClient, invitation: dict[str, str]) -> object:
    token = invitation["accept_url"].rsplit("/", 1)[1]
    return client.post(f"/api/invitations/{token}/accept")


def test_invite_accept_and_permissions(panel: Panel) -> None:
    admin = panel.setup_admin()
    for email in ("owner@example.com", "friend@example.com", "stranger@example.com"):
        create_user(panel, admin, email)
    server_id = _server_owned_by(panel, "owner@example.com")
    owner = panel.login("owner@example.com")
    friend = panel.login("friend@example.com")
    stranger = panel.login("stranger@example.com")

    invitation = _invite(owner, server_id, "Friend@Example.com", ["console.read", "users.read"])
    assert invitation["email"] == "friend@example.com"
    # Only the invited address can use the link.
    assert _accept(stranger, invitation).status_code == 404  # type: ignore[attr-defined]
    accepted = _accept(friend, invitation)
    assert accepted.status_code == 200, accepted.text  # type: ignore[attr-defined]
    assert _accept(friend, invitation).status_code == 404  # type: ignore[attr-defined]

    listed = friend.get(f"/api/servers/{server_id}/users").json()
    assert [s["email"] for s in listed] == ["friend@example.com"]
    # The friend sees the server but lacks users.create: 403. The stranger learns nothing: 404.
    refused = friend.post(
        f"/api/servers/{server_id}/users/invitations",
        json={"email": "x@example.com", "permissions": ["console.read"]},
    )
    assert refused.status_code == 403
    assert "users.create" in refused.json()["error"]["message"]
    assert stranger.get(f"/api/servers/{server_id}/users").status_code == 404
    missing = stranger.get("/api/servers/doesnotexist/users")
    assert missing.status_code == 404
    assert missing.json() == stranger.get(f"/api/servers/{server_id}/users").json()


def test_nobody_grants_more_than_they_hold(panel: Panel) -> None:
    admin = panel.setup_admin()
    for email in ("owner@example.com", "helper@example.com", "third@example.com"):
        create_user(panel, admin, email)
    server_id = _server_owned_by(panel, "owner@example.com")
    owner = panel.login("owner@example.com")
    helper = panel.login("helper@example.com")
    _accept(helper, _invite(owner, server_id, "helper@example.com", ["users.*", "console.read"]))

    beyond = helper.post(
        f"/api/servers/{server_id}/users/invitations",
        json={"email": "third@example.com", "permissions": ["files.*"]},
    )
    assert beyond.status_code == 403
    assert "files.delete" in beyond.json()["error"]["message"]
    within = helper.post(
        f"/api/servers/{server_id}/users/invitations",
        json={"email": "third@example.com", "permissions": ["console.read"]},
    )
    assert within.status_code == 201
    unknown = owner.post(
        f"/api/servers/{server_id}/users/invitations",
        json={"email": "third@example.com", "permissions": ["files.everything"]},
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "body.permissions"

    helper_id = next(
        s["id"]
        for s in owner.get(f"/api/servers/{server_id}/users").json()
        if s["email"] == "helper@example.com"
    )
    # A subuser cannot raise their own permissions.
    own = helper.put(
        f"/api/servers/{server_id}/users/{helper_id}", json={"permissions": ["users.*"]}
    )
    assert own.status_code == 403
    changed = owner.put(
        f"/api/servers/{server_id}/users/{helper_id}", json={"permissions": ["console.read"]}
    )
    assert changed.json()["permissions"] == ["console.read"]
    # The change applies at once: users.read is gone.
    assert helper.get(f"/api/servers/{server_id}/users").status_code == 403
    assert owner.delete(f"/api/servers/{server_id}/users/{helper_id}").status_code == 204
    assert helper.get(f"/api/servers/{server_id}/users").status_code == 404


def test_invitations_expire(panel: Panel) -> None:
    admin = panel.setup_admin()
    create_user(panel, admin, "owner@example.com")
    create_user(panel, admin, "late@example.com")
    server_id = _server_owned_by(panel, "owner@example.com")
    owner = panel.login("owner@example.com")
    invitation = _invite(owner, server_id, "late@example.com", ["console.read"])
    panel.clock.advance(days=8)
    late = panel.login("late@example.com")
    expired = _accept(late, invitation)
    assert expired.status_code == 410  # type: ignore[attr-defined]
    assert owner.get(f"/api/servers/{server_id}/users/invitations").json() == []


def test_api_key_scopes_narrow_subuser_routes(panel: Panel) -> None:
    admin = panel.setup_admin()
    create_user(panel, admin, "owner@example.com")
    server_id = _server_owned_by(panel, "owner@example.com")
    owner = panel.login("owner@example.com")
    reader = panel.client(api_key=owner.create_api_key(["servers:read"]))
    assert reader.get(f"/api/servers/{server_id}/users").status_code == 200
    refused = reader.post(
        f"/api/servers/{server_id}/users/invitations",
        json={"email": "x@example.com", "permissions": ["console.read"]},
    )
    assert refused.status_code == 403
    assert "servers:write" in refused.json()["error"]["message"]
