"""What authentication writes, and when: an API key's last use is recorded at most once a minute
whatever the address it comes from (a key used from two addresses must not write on every
request), and the address kept is the one of that throttled write."""

from __future__ import annotations

from fastapi.testclient import TestClient

from support.panel import Panel, PanelClient


def _from_address(panel: Panel, address: str, key: str) -> PanelClient:
    raw = TestClient(panel.app, base_url="https://testserver", client=(address, 40000))
    raw.__enter__()
    panel._clients.append(raw)
    return PanelClient(raw, api_key=key)


def test_last_use_is_written_once_a_minute_per_key_whatever_the_address(panel: Panel) -> None:
    admin = panel.setup_admin()
    key = admin.create_api_key(["account:read"])
    first = _from_address(panel, "198.51.100.1", key)
    second = _from_address(panel, "198.51.100.2", key)

    def last_use() -> tuple[str, str]:
        listed = admin.get("/api/account/api-keys").json()
        return listed[0]["last_used_at"], listed[0]["last_used_ip"]

    assert first.get("/api/account").status_code == 200
    written_at, address = last_use()
    assert address == "198.51.100.1"

    # Another address within the minute: answered, nothing written.
    panel.clock.advance(seconds=30)
    assert second.get("/api/account").status_code == 200
    assert first.get("/api/account").status_code == 200
    assert last_use() == (written_at, "198.51.100.1")

    # Once the minute has passed, the next use is written, with its own address.
    panel.clock.advance(seconds=31)
    assert second.get("/api/account").status_code == 200
    later_at, later_address = last_use()
    assert later_address == "198.51.100.2"
    assert later_at > written_at


def test_a_disabled_account_and_a_revoked_key_stop_working_at_once(panel: Panel) -> None:
    admin = panel.setup_admin()
    user_id = admin.post(
        "/api/admin/users",
        json={"email": "bot@example.com", "name": "bot", "password": "correct horse battery"},
    ).json()["id"]
    owner = panel.login("bot@example.com", "correct horse battery")
    kept = owner.create_api_key(["account:read"], name="kept")
    revoked = owner.create_api_key(["account:read"], name="revoked")
    bot, other = panel.client(api_key=kept), panel.client(api_key=revoked)
    assert bot.get("/api/account").status_code == 200
    assert other.get("/api/account").status_code == 200

    revoked_id = next(
        k["id"] for k in owner.get("/api/account/api-keys").json() if k["name"] == "revoked"
    )
    assert owner.delete(f"/api/account/api-keys/{revoked_id}").status_code == 204
    refused = other.get("/api/account")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]
    assert bot.get("/api/account").status_code == 200

    assert admin.patch(f"/api/admin/users/{user_id}", json={"disabled": True}).status_code == 200
    disabled = bot.get("/api/account")
    assert disabled.status_code == 401
    assert "disabled" in disabled.json()["error"]["message"]
