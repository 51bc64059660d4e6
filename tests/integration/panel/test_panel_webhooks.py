"""Webhooks against the real app on SQLite and PostgreSQL and a real HTTP receiver on loopback
(allowed explicitly, as an admin would allow an internal address): signed deliveries, retries
with back-off on the panel's clock, the outbox surviving a restart, SSRF refusals at creation
and at delivery, redirects never followed, Discord and Slack shapes, metrics."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stellarstack.panel.api.app import create_app
from stellarstack.panel.context import build_context
from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import Server, Subuser, TargetKind, Webhook, WebhookDelivery
from stellarstack.panel.services.webhooks import deliver_due, delivery_worker
from support.http_receiver import Received, Receiver, Reply, http_receiver
from support.panel import Clock, Panel, PanelClient, create_user, panel_settings


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as running:
        yield running


def _panel(tmp_path: Path, url: str, clock: Clock, receiver: Receiver, **overrides: Any) -> Panel:
    settings = panel_settings(
        tmp_path,
        url,
        webhook_allowed=[receiver.allowed],
        webhook_retry_base_seconds=30,
        **overrides,
    )
    context = build_context(settings)
    context.clock = clock
    return Panel(context=context, app=create_app(context), clock=clock)


@pytest.fixture
def hooked(
    tmp_path: Path, panel_db_url: str, panel_clock: Clock, receiver: Receiver
) -> Iterator[Panel]:
    running = _panel(tmp_path, panel_db_url, panel_clock, receiver)
    yield running
    running.close()


def deliver(panel: Panel, **kwargs: Any) -> int:
    return asyncio.run(deliver_due(panel.context, **kwargs))


def create_hook(
    client: PanelClient, url: str, base: str = "/api/admin/webhooks", **body: Any
) -> dict[str, Any]:
    response = client.post(base, json={"url": url, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def deliveries(client: PanelClient, hook_id: str, base: str = "/api/admin/webhooks") -> list[Any]:
    response = client.get(f"{base}/{hook_id}/deliveries")
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


def verify(request: Received, secret: str) -> None:
    """What a receiver does: recompute the HMAC over the raw bytes it got."""
    timestamp = request.headers["x-stellarstack-timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(request.headers["x-stellarstack-signature"], f"sha256={expected}")


def test_event_is_delivered_signed_over_the_raw_body(hooked: Panel, receiver: Receiver) -> None:
    admin = hooked.setup_admin()
    hook = create_hook(admin, receiver.url, events=["admin.user.*"], description="audit")
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in admin.get(f"/api/admin/webhooks/{hook['id']}").json()

    user_id = create_user(hooked, admin, "ada@example.com")
    assert deliver(hooked) == 1
    [request] = receiver.requests
    verify(request, hook["secret"])
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-stellarstack-event"] == "admin.user.create"
    body = json.loads(request.body)
    assert body["event"] == "admin.user.create"
    assert body["target"] == {"type": "user", "id": user_id}
    assert body["properties"]["after"]["email"] == "ada@example.com"

    [delivery] = deliveries(admin, hook["id"])
    assert delivery["status"] == "delivered"
    assert delivery["id"] == request.headers["x-stellarstack-delivery"]
    [attempt] = delivery["history"]
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    assert attempt["duration_ms"] >= 0

    # A rotated secret signs the next delivery; the old one no longer verifies.
    rotated = admin.post(f"/api/admin/webhooks/{hook['id']}/rotate-secret").json()["secret"]
    assert rotated != hook["secret"]
    assert admin.post(f"/api/admin/webhooks/{hook['id']}/test").status_code == 202
    assert deliver(hooked) == 1
    verify(receiver.requests[1], rotated)
    with pytest.raises(AssertionError):
        verify(receiver.requests[1], hook["secret"])
    assert deliver(hooked) == 0


def test_failed_attempts_back_off_then_deliver(hooked: Panel, receiver: Receiver) -> None:
    admin = hooked.setup_admin()
    hook = create_hook(admin, receiver.url, events=["webhook.test"])
    receiver.reply_with(Reply(status=500), Reply(status=503), Reply(status=204))
    admin.post(f"/api/admin/webhooks/{hook['id']}/test")

    assert deliver(hooked) == 1
    [pending] = deliveries(admin, hook["id"])
    assert pending["status"] == "pending"
    assert pending["last_status_code"] == 500
    wait = datetime.fromisoformat(pending["next_attempt_at"]) - hooked.clock()
    assert 20 < wait.total_seconds() <= 36  # 30 s +-20 %
    assert deliver(hooked) == 0, "not due yet"

    hooked.clock.advance(seconds=40)
    assert deliver(hooked) == 1
    [pending] = deliveries(admin, hook["id"])
    wait = datetime.fromisoformat(pending["next_attempt_at"]) - hooked.clock()
    assert 45 < wait.total_seconds() <= 72, "doubled"
    hooked.clock.advance(seconds=75)
    assert deliver(hooked) == 1

    [done] = deliveries(admin, hook["id"])
    assert done["status"] == "delivered"
    assert [a["status_code"] for a in done["history"]] == [500, 503, 204]
    assert done["history"][0]["error"] == "the receiver answered 500"
    sent = receiver.requests
    assert len({r.body for r in sent}) == 1, "the same bytes every time"
    stamps = [int(r.headers["x-stellarstack-timestamp"]) for r in sent]
    assert stamps[1] - stamps[0] >= 40
    assert stamps[2] - stamps[1] >= 75
    for request in sent:
        verify(request, hook["secret"])


def test_out_of_attempts_is_failed_and_can_be_redelivered(
    hooked: Panel, receiver: Receiver
) -> None:
    hooked.context.settings.webhook_max_attempts = 2
    admin = hooked.setup_admin()
    hook = create_hook(admin, receiver.url, events=["webhook.test"])
    receiver.reply_with(Reply(status=500))
    admin.post(f"/api/admin/webhooks/{hook['id']}/test")
    deliver(hooked)
    hooked.clock.advance(hours=1)
    deliver(hooked)
    hooked.clock.advance(hours=1)
    assert deliver(hooked) == 0
    [failed] = deliveries(admin, hook["id"])
    assert failed["status"] == "failed"
    assert failed["attempts"] == 2

    receiver.reply_with(Reply(status=200))
    again = admin.post(f"/api/admin/webhooks/{hook['id']}/deliveries/{failed['id']}/redeliver")
    assert again.status_code == 202
    assert deliver(hooked) == 1
    statuses = {d["id"]: d["status"] for d in deliveries(admin, hook["id"])}
    assert statuses == {failed["id"]: "failed", again.json()["id"]: "delivered"}
    assert receiver.requests[-1].body == receiver.requests[0].body


def test_outbox_survives_a_restart(
    tmp_path: Path, panel_db_url: str, panel_clock: Clock, receiver: Receiver
) -> None:
    first = _panel(tmp_path, panel_db_url, panel_clock, receiver)
    admin = first.setup_admin()
    hook = create_hook(admin, receiver.url, events=["webhook.test"])
    admin.post(f"/api/admin/webhooks/{hook['id']}/test")
    first.close()
    assert receiver.requests == []

    settings = panel_settings(
        tmp_path, panel_db_url, webhook_allowed=[receiver.allowed], webhook_poll_seconds=0.1
    )
    context = build_context(settings)
    app = create_app(context, background=[delivery_worker])
    try:
        with TestClient(app, base_url="https://testserver"):
            [request] = receiver.wait_for(1)
            verify(request, hook["secret"])
            assert json.loads(request.body)["event"] == "webhook.test"
    finally:
        context.engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://localhost:9/hook",
        "http://2130706433/hook",
        "http://0177.0.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://192.168.1.1/hook",
        "ftp://example.com/hook",
        "http://user:pass@example.com/hook",
    ],
)
def test_private_destinations_are_refused_at_creation(hooked: Panel, url: str) -> None:
    admin = hooked.setup_admin()
    response = admin.post("/api/admin/webhooks", json={"url": url})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "body.url"
    assert admin.get("/api/admin/webhooks").json()["total"] == 0


def test_destination_is_checked_again_at_delivery(hooked: Panel, receiver: Receiver) -> None:
    admin = hooked.setup_admin()
    hook = create_hook(admin, receiver.url, events=["webhook.test"])
    hooked.context.settings.webhook_allowed = []
    admin.post(f"/api/admin/webhooks/{hook['id']}/test")
    assert deliver(hooked) == 1
    assert receiver.requests == []
    [refused] = deliveries(admin, hook["id"])
    assert refused["status"] == "failed"
    assert "loopback" in refused["last_error"]


def test_the_checked_address_is_the_one_connected_to(hooked: Panel, receiver: Receiver) -> None:
    """A name is resolved once per attempt; the connection goes to that answer with the name
    kept in the Host header, and an answer pointing inside is refused."""
    admin = hooked.setup_admin()
    admin_id = admin.get("/api/account").json()["id"]
    name = f"hooks.example.test:{receiver.port}"
    # As if the name had resolved to a public address when the webhook was created.
    with transaction(hooked.context.sessions) as db:
        hook = Webhook(owner_id=admin_id, url=f"http://{name}/hook", secret="s" * 32, events=["*"])
        db.add(hook)
        db.flush()
        hook_id = hook.id
    admin.post(f"/api/admin/webhooks/{hook_id}/test")

    answers = {"hooks.example.test": ["10.0.0.7"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    assert deliver(hooked, resolver=resolver) == 1
    assert receiver.requests == []
    [refused] = deliveries(admin, hook_id)
    assert "10.0.0.7 is a private address" in refused["last_error"]

    answers["hooks.example.test"] = ["127.0.0.1"]
    admin.post(f"/api/admin/webhooks/{hook_id}/test")
    assert deliver(hooked, resolver=resolver) == 1
    [request] = receiver.requests
    assert request.headers["host"] == name
    assert request.path == "/hook"

    # One bad answer among good ones refuses the name.
    answers["hooks.example.test"] = ["127.0.0.1", "169.254.169.254"]
    admin.post(f"/api/admin/webhooks/{hook_id}/test")
    assert deliver(hooked, resolver=resolver) == 1
    assert len(receiver.requests) == 1


def test_redirects_are_not_followed(hooked: Panel, receiver: Receiver) -> None:
    admin = hooked.setup_admin()
    hook = create_hook(admin, receiver.url, events=["webhook.test"])
    with http_receiver() as inside:
        receiver.reply_with(Reply(status=302, headers={"Location": inside.url}))
        admin.post(f"/api/admin/webhooks/{hook['id']}/test")
        assert deliver(hooked) == 1
        assert inside.requests == []
    [attempted] = deliveries(admin, hook["id"])
    assert attempted["last_status_code"] == 302
    assert "not followed" in attempted["last_error"]
    assert attempted["status"] == "pending"


def test_discord_and_slack_bodies(hooked: Panel, receiver: Receiver) -> None:
    admin = hooked.setup_admin()
    for fmt in ("discord", "slack"):
        hook = create_hook(admin, receiver.url, events=["webhook.test"], format=fmt)
        admin.post(f"/api/admin/webhooks/{hook['id']}/test")
    assert deliver(hooked) == 2
    discord, slack = (json.loads(r.body) for r in receiver.requests)
    if "blocks" in discord:
        discord, slack = slack, discord
    assert isinstance(discord["content"], str)
    assert len(discord["content"]) <= 2000
    [embed] = discord["embeds"]
    assert embed["title"] == "webhook.test"
    assert {field["name"] for field in embed["fields"]} >= {"Actor", "IP"}
    assert isinstance(slack["text"], str)
    assert "webhook.test" in slack["text"]
    assert slack["blocks"][0]["type"] == "section"
    assert slack["blocks"][0]["text"]["type"] == "mrkdwn"


def test_webhook_changes_are_validated_and_logged(hooked: Panel, receiver: Receiver) -> None:
    admin = hooked.setup_admin()
    hook = create_hook(admin, receiver.url, events=["auth.*"])
    bad = admin.post("/api/admin/webhooks", json={"url": receiver.url, "events": ["auth*"]})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"].startswith("body.events")
    bad_format = admin.post("/api/admin/webhooks", json={"url": receiver.url, "format": "teams"})
    assert bad_format.json()["error"]["field"] == "body.format"
    moved = admin.patch(f"/api/admin/webhooks/{hook['id']}", json={"url": "http://10.9.9.9/"})
    assert moved.status_code == 422
    assert moved.json()["error"]["field"] == "body.url"

    changed = admin.patch(
        f"/api/admin/webhooks/{hook['id']}", json={"enabled": False, "format": "slack"}
    )
    assert changed.status_code == 200
    assert changed.json()["enabled"] is False
    [update] = admin.get("/api/admin/activity", params={"event": "webhook.update"}).json()["items"]
    assert update["properties"]["before"]["enabled"] is True
    assert update["properties"]["after"] == {
        **update["properties"]["before"],
        "enabled": False,
        "format": "slack",
    }
    assert "secret" not in json.dumps(update["properties"])

    # Disabled: events are not queued for it.
    panel_client = hooked.client()
    panel_client.raw.post("/api/auth/login", json={"email": "x@example.com", "password": "x"})
    assert deliver(hooked) == 0
    assert admin.delete(f"/api/admin/webhooks/{hook['id']}").status_code == 204
    assert admin.get(f"/api/admin/webhooks/{hook['id']}").status_code == 404


def test_server_webhooks_are_scoped_to_their_server(hooked: Panel, receiver: Receiver) -> None:
    admin = hooked.setup_admin()
    owner_id = create_user(hooked, admin, "owner@example.com")
    helper_id = create_user(hooked, admin, "helper@example.com")
    create_user(hooked, admin, "stranger@example.com")
    with transaction(hooked.context.sessions) as db:
        servers = []
        for name in ("survival", "creative"):
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
            servers.append(server.id)
        for server_id in servers:
            db.add(Subuser(server_id=server_id, user_id=helper_id, permissions=["files.read"]))
    survival, creative = servers
    base = f"/api/servers/{survival}/webhooks"

    owner = hooked.login("owner@example.com")
    hook = create_hook(owner, receiver.url, base=base, events=["auth.denied"])
    assert hook["server_id"] == survival
    helper = hooked.login("helper@example.com")
    assert helper.get(base).status_code == 403
    assert hooked.login("stranger@example.com").get(base).status_code == 404
    # Not listed among the global ones, not reachable through another server.
    assert admin.get("/api/admin/webhooks").json()["total"] == 0
    assert owner.get(f"/api/servers/{creative}/webhooks/{hook['id']}").status_code == 404

    # The helper's denials on this server reach its webhook (the list above, the activity
    # below); one on the other server, and the stranger's (who cannot see it), do not.
    helper.get(f"/api/servers/{creative}/activity")
    helper.get(f"/api/servers/{survival}/activity")
    deliver(hooked)
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert {(b["event"], b["server_id"], b["actor"]["user_id"]) for b in bodies} == {
        ("auth.denied", survival, helper_id)
    }
    assert sorted(b["properties"]["needed"] for b in bodies) == ["activity.read", "webhooks.read"]

    # An API key needs the webhooks scopes for the webhooks nodes.
    narrow = panel_client_with_key(hooked, owner, ["servers:read"])
    assert narrow.get(base).status_code == 403
    wide = panel_client_with_key(hooked, owner, ["webhooks:read"])
    assert wide.get(base).json()["total"] == 1


def panel_client_with_key(panel: Panel, owner: PanelClient, scopes: list[str]) -> PanelClient:
    return panel.client(api_key=owner.create_api_key(scopes, name="-".join(scopes)))


def test_metrics(hooked: Panel, receiver: Receiver) -> None:
    admin = hooked.setup_admin()
    hook = create_hook(admin, receiver.url, events=["webhook.test"])
    admin.get(f"/api/admin/webhooks/{hook['id']}")
    admin.post(f"/api/admin/webhooks/{hook['id']}/test")
    deliver(hooked)
    text = hooked.client().get("/metrics").text
    assert (
        'stellarstack_panel_http_requests_total{method="GET",'
        'route="/api/admin/webhooks/{webhook_id}",status="200"} 1.0'
    ) in text
    assert hook["id"] not in text, "route templates, never ids"
    assert 'stellarstack_panel_webhook_delivery_attempts_total{outcome="delivered"} 1.0' in text
    assert 'stellarstack_panel_activity_events_total{event="webhook.create"} 1.0' in text
    assert "stellarstack_panel_http_request_duration_seconds_bucket" in text


def test_metrics_token(
    tmp_path: Path, panel_db_url: str, panel_clock: Clock, receiver: Receiver
) -> None:
    guarded = _panel(tmp_path, panel_db_url, panel_clock, receiver, metrics_token="m" * 40)
    try:
        client = guarded.client()
        assert client.get("/metrics").status_code == 401
        bad = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        good = client.get("/metrics", headers={"Authorization": f"Bearer {'m' * 40}"})
        assert good.status_code == 200
        assert "stellarstack_panel_http_requests_total" in good.text
    finally:
        guarded.close()


def test_pending_deliveries_of_a_deleted_webhook_go_with_it(
    hooked: Panel, receiver: Receiver
) -> None:
    admin = hooked.setup_admin()
    hook = create_hook(admin, receiver.url, events=["webhook.test"])
    admin.post(f"/api/admin/webhooks/{hook['id']}/test")
    admin.delete(f"/api/admin/webhooks/{hook['id']}")
    assert deliver(hooked) == 0
    with transaction(hooked.context.sessions) as db:
        assert db.query(WebhookDelivery).filter_by(webhook_id=hook["id"]).count() == 0


def test_two_replicas_never_send_the_same_delivery(
    hooked: Panel, receiver: Receiver, tmp_path: Path, panel_db_url: str
) -> None:
    """Two panels on one database deliver concurrently: every delivery is sent exactly once
    (row locks skipped on PostgreSQL, one writer on SQLite)."""
    admin = hooked.setup_admin()
    hook = create_hook(admin, receiver.url, events=["webhook.test"])
    for _ in range(40):
        assert admin.post(f"/api/admin/webhooks/{hook['id']}/test").status_code == 202
    settings = panel_settings(tmp_path, panel_db_url, webhook_allowed=[receiver.allowed])
    other = build_context(settings)
    try:

        async def both() -> list[int]:
            return list(await asyncio.gather(deliver_due(hooked.context), deliver_due(other)))

        made = asyncio.run(both())
    finally:
        other.engine.dispose()
    assert sum(made) == 40
    ids = [r.headers["x-stellarstack-delivery"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 40
    assert {d["status"] for d in deliveries(admin, hook["id"])} == {"delivered"}
