"""Setup, login, sessions, CSRF and API keys against the real app on SQLite and PostgreSQL."""

from __future__ import annotations

from support.panel import ADMIN_EMAIL, PASSWORD, Panel, create_user


def test_first_run_setup_creates_one_admin_then_refuses(panel: Panel) -> None:
    anonymous = panel.client()
    assert anonymous.get("/api/auth/setup").json() == {"required": True}
    admin = panel.setup_admin()
    me = admin.get("/api/account").json()
    assert me["email"] == ADMIN_EMAIL
    assert me["role"] == "admin"
    again = panel.client().post(
        "/api/auth/setup", json={"email": "x@example.com", "name": "X", "password": PASSWORD}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert anonymous.get("/api/auth/setup").json() == {"required": False}


def test_login_wrong_password_is_401_and_names_nothing_specific(panel: Panel) -> None:
    panel.setup_admin()
    client = panel.client()
    wrong = client.raw.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": "nope"})
    missing = client.raw.post(
        "/api/auth/login", json={"email": "ghost@example.com", "password": "nope"}
    )
    assert wrong.status_code == missing.status_code == 401
    assert wrong.json() == missing.json()


def test_session_cookie_is_httponly_samesite_and_secure(panel: Panel) -> None:
    panel.setup_admin()
    response = panel.client().raw.post(
        "/api/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD}
    )
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("stellarstack_session="))
    assert "HttpOnly" in session
    assert "SameSite=lax" in session
    assert "Secure" in session
    csrf = next(c for c in cookies if c.startswith("stellarstack_csrf="))
    assert "HttpOnly" not in csrf


def test_cookie_writes_need_the_csrf_header(panel: Panel) -> None:
    admin = panel.setup_admin()
    body = {"name": "k", "scopes": ["servers:read"]}
    without = admin.raw.post("/api/account/api-keys", json=body)
    assert without.status_code == 403
    assert without.json()["error"]["code"] == "csrf_failed"
    forged = admin.raw.post("/api/account/api-keys", json=body, headers={"X-CSRF-Token": "x" * 64})
    assert forged.status_code == 403
    assert admin.post("/api/account/api-keys", json=body).status_code == 201


def test_sessions_are_listed_and_revoking_one_logs_it_out(panel: Panel) -> None:
    admin = panel.setup_admin()
    other = panel.login(ADMIN_EMAIL)
    sessions = admin.get("/api/account/sessions").json()
    assert len(sessions) == 2
    assert sum(s["current"] for s in sessions) == 1
    other_id = next(s["id"] for s in sessions if not s["current"])
    assert admin.delete(f"/api/account/sessions/{other_id}").status_code == 204
    assert other.get("/api/account").status_code == 401
    assert admin.get("/api/account").status_code == 200


def test_logout_ends_the_session(panel: Panel) -> None:
    admin = panel.setup_admin()
    assert admin.post("/api/auth/logout").status_code == 204
    assert admin.get("/api/account").status_code == 401


def test_api_key_shown_once_scoped_revocable_and_tracks_last_use(panel: Panel) -> None:
    admin = panel.setup_admin()
    created = admin.post(
        "/api/account/api-keys", json={"name": "ci", "scopes": ["account:read"]}
    ).json()
    key = created["key"]
    assert key.startswith(created["prefix"] + ".")
    listed = admin.get("/api/account/api-keys").json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]
    assert listed[0]["last_used_at"] is None

    bot = panel.client(api_key=key)
    assert bot.get("/api/account").json()["email"] == ADMIN_EMAIL
    # No CSRF for bearer keys, but scopes apply: this key cannot write the account.
    refused = bot.post("/api/account/api-keys", json={"name": "x", "scopes": ["account:read"]})
    assert refused.status_code == 403
    assert "account:write" in refused.json()["error"]["message"]
    used = admin.get("/api/account/api-keys").json()[0]
    assert used["last_used_at"] is not None
    assert used["last_used_ip"] == "testclient"

    assert admin.delete(f"/api/account/api-keys/{created['id']}").status_code == 204
    assert bot.get("/api/account").status_code == 401


def test_api_key_expiry_is_enforced(panel: Panel) -> None:
    admin = panel.setup_admin()
    expires = (panel.clock() + __import__("datetime").timedelta(hours=1)).isoformat()
    key = admin.post(
        "/api/account/api-keys",
        json={"name": "short", "scopes": ["*"], "expires_at": expires},
    ).json()["key"]
    bot = panel.client(api_key=key)
    assert bot.get("/api/account").status_code == 200
    panel.clock.advance(hours=2)
    expired = bot.get("/api/account")
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


def test_bad_api_key_bodies_name_the_field(panel: Panel) -> None:
    admin = panel.setup_admin()
    unknown = admin.post("/api/account/api-keys", json={"name": "k", "scopes": ["root:all"]})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "body.scopes"
    missing = admin.post("/api/account/api-keys", json={"scopes": ["*"]})
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "body.name"


def test_login_is_rate_limited_per_account(panel: Panel) -> None:
    panel.setup_admin()
    client = panel.client()
    limit = panel.context.settings.login_attempts_per_account
    for _ in range(limit):
        wrong = client.raw.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": "x"})
        assert wrong.status_code == 401
    # Even the right password is refused now, until the window passes.
    blocked = client.raw.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"]
    panel.clock.advance(seconds=panel.context.settings.login_window_seconds + 1)
    assert (
        client.raw.post(
            "/api/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD}
        ).status_code
        == 200
    )


def test_admin_routes_are_invisible_to_users(panel: Panel) -> None:
    admin = panel.setup_admin()
    create_user(panel, admin, "player@example.com")
    player = panel.login("player@example.com")
    assert player.get("/api/admin/users").status_code == 404
    listed = admin.get("/api/admin/users").json()
    assert listed["total"] == 2


def test_oversized_body_is_refused_with_the_limit(panel: Panel) -> None:
    admin = panel.setup_admin()
    huge = "x" * (panel.context.settings.max_body_bytes + 1)
    response = admin.post(
        "/api/account/api-keys", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert str(panel.context.settings.max_body_bytes) in response.json()["error"]["message"]
