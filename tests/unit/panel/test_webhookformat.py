"""Webhook filters, signatures, retry schedule, allow-list parsing, message shapes, and the
activity export's CSV defusing (pure)."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from stellarstack.panel import activityexport, permissions, webhookformat


@pytest.mark.parametrize(
    ("patterns", "event", "expected"),
    [
        (["*"], "auth.login", True),
        (["auth.login"], "auth.login", True),
        (["auth.login"], "auth.login.failed", False),
        (["auth.*"], "auth.login.failed", True),
        (["auth.*"], "auth", False),
        (["auth.*"], "authx.login", False),
        (["server.power.*", "auth.denied"], "auth.denied", True),
        ([], "auth.denied", False),
    ],
)
def test_event_matches(patterns: list[str], event: str, expected: bool) -> None:
    assert webhookformat.event_matches(patterns, event) is expected


@pytest.mark.parametrize(
    ("pattern", "valid"),
    [
        ("*", True),
        ("server.power.*", True),
        ("auth.login.failed", True),
        ("auth*", False),
        ("*.login", False),
        ("Auth.Login", False),
        ("auth..login", False),
        ("", False),
        ("auth.login;drop", False),
    ],
)
def test_invalid_patterns(pattern: str, valid: bool) -> None:
    assert (webhookformat.invalid_patterns([pattern]) == []) is valid


def test_signature_is_hmac_of_timestamp_dot_raw_body() -> None:
    body = b'{"event":"auth.login"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    headers = webhookformat.signature_headers("s3cret", 1700000000, body)
    assert headers == {
        "X-StellarStack-Timestamp": "1700000000",
        "X-StellarStack-Signature": f"sha256={expected}",
    }
    assert webhookformat.sign("s3cret", 1700000001, body) != headers["X-StellarStack-Signature"]


@pytest.mark.parametrize(
    ("attempt", "jitter", "seconds"),
    [
        (1, 0.5, 30.0),
        (2, 0.5, 60.0),
        (3, 0.0, 120.0 * 0.8),
        (3, 0.999, 120.0 * 1.1996),
        (20, 0.5, 3600.0),
    ],
)
def test_retry_delay_doubles_with_jitter_and_cap(
    attempt: int, jitter: float, seconds: float
) -> None:
    delay = webhookformat.retry_delay(attempt, base_seconds=30, cap_seconds=3600, jitter=jitter)
    assert delay.total_seconds() == pytest.approx(seconds, rel=1e-3)


@pytest.mark.parametrize(("attempt", "jitter"), [(0, 0.5), (1, 1.0), (1, -0.1)])
def test_retry_delay_refuses_bad_input(attempt: int, jitter: float) -> None:
    with pytest.raises(ValueError, match=r"attempt|jitter"):
        webhookformat.retry_delay(attempt, base_seconds=1, cap_seconds=10, jitter=jitter)


def test_parse_allowed() -> None:
    assert webhookformat.parse_allowed(["127.0.0.1:9000", "[::1]:80", " 10.0.0.1:443 "]) == {
        ("127.0.0.1", 9000),
        ("::1", 80),
        ("10.0.0.1", 443),
    }


@pytest.mark.parametrize("entry", ["127.0.0.1", "localhost:80", "127.0.0.1:0", "1.2.3.4:70000"])
def test_parse_allowed_names_the_setting(entry: str) -> None:
    with pytest.raises(ValueError, match="STELLARSTACK_PANEL_WEBHOOK_ALLOWED"):
        webhookformat.parse_allowed([entry])


def _payload(**properties: object) -> dict[str, object]:
    return webhookformat.event_payload(
        event_id="e1",
        event="server.power.start",
        at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        actor={"user_id": "u1", "api_key_id": None, "ip": "203.0.113.5"},
        target_type="server",
        target_id="s1",
        server_id="s1",
        properties=properties,
    )


def test_json_body_carries_the_whole_event() -> None:
    body = json.loads(webhookformat.render_body("json", _payload(signal="start")))
    assert body["event"] == "server.power.start"
    assert body["id"] == "e1"
    assert body["actor"]["ip"] == "203.0.113.5"
    assert body["properties"] == {"signal": "start"}


def test_discord_body_fits_discord_limits() -> None:
    body = json.loads(webhookformat.render_body("discord", _payload(note="x" * 10_000)))
    assert 0 < len(body["content"]) <= 2000
    [embed] = body["embeds"]
    assert embed["title"] == "server.power.start"
    assert len(embed["description"]) <= 4096
    assert embed["description"].endswith("```")
    assert all(len(f["value"]) <= 1024 and f["name"] for f in embed["fields"])
    assert body["allowed_mentions"] == {"parse": []}
    assert datetime.fromisoformat(embed["timestamp"])


def test_slack_body_is_text_plus_blocks() -> None:
    body = json.loads(webhookformat.render_body("slack", _payload(note="y" * 10_000)))
    assert "server.power.start" in body["text"]
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds[0] == "section"
    assert kinds[-1] == "context"
    for block in body["blocks"]:
        if block["type"] == "section":
            assert block["text"]["type"] == "mrkdwn"
            assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown webhook format"):
        webhookformat.render_body("teams", _payload())


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("plain", "plain"),
        (None, ""),
        ({"a": 1}, '{"a": 1}'),
    ],
)
def test_safe_cell(value: object, cell: str) -> None:
    assert activityexport.safe_cell(value) == cell


def test_csv_and_json_exports_stream_rows() -> None:
    rows = [{"id": "1", "event": "auth.denied", "target_id": "=cmd"}, {"id": "2", "event": "x"}]
    text = "".join(activityexport.csv_lines(rows))
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [r["target_id"] for r in parsed] == ["'=cmd", ""]
    assert list(parsed[0]) == list(activityexport.COLUMNS)
    assert json.loads("".join(activityexport.json_chunks(rows))) == rows
    assert json.loads("".join(activityexport.json_chunks([]))) == []


def test_webhook_nodes_map_to_webhook_scopes() -> None:
    assert permissions.scope_for("webhooks.read") == "webhooks:read"
    for node in ("webhooks.create", "webhooks.update", "webhooks.delete"):
        assert permissions.scope_for(node) == "webhooks:write"
    assert permissions.expand(["webhooks.*"]) == set(permissions.PERMISSION_NODES["webhooks"])
    assert {scope for scope in permissions.ALL_SCOPES if scope.startswith("webhooks:")} == {
        permissions.scope_for(node) for node in permissions.PERMISSION_NODES["webhooks"]
    }


def test_retry_schedule_grows_monotonically_at_fixed_jitter() -> None:
    delays = [
        webhookformat.retry_delay(n, base_seconds=30, cap_seconds=6 * 3600, jitter=0.5)
        for n in range(1, 12)
    ]
    assert delays == sorted(delays)
    assert delays[-1] == timedelta(hours=6)
