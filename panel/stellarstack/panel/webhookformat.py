"""What a webhook sends, and when (pure): event filters, the JSON, Discord and Slack bodies,
the signature, the retry schedule and the list of non-public destinations an admin allowed.

The signature is `sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">` keyed with the
webhook's secret; the timestamp travels in its own header so that a receiver can refuse old
(replayed) deliveries and still check the signature over the exact bytes it received.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

SIGNATURE_HEADER = "X-StellarStack-Signature"
TIMESTAMP_HEADER = "X-StellarStack-Timestamp"
EVENT_HEADER = "X-StellarStack-Event"
DELIVERY_HEADER = "X-StellarStack-Delivery"
FORMATS = ("json", "discord", "slack")

_PATTERN = re.compile(r"^(\*|[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?)$")
MAX_PATTERNS = 50

# Limits of the services' message APIs: longer text is cut, never refused by them.
DISCORD_CONTENT_LIMIT = 2000
DISCORD_FIELD_LIMIT = 1024
DISCORD_DESCRIPTION_LIMIT = 4096
SLACK_TEXT_LIMIT = 3000


def invalid_patterns(patterns: Iterable[str]) -> list[str]:
    """Entries that are not an event name, `prefix.*` or `*` (for error messages)."""
    return [pattern for pattern in patterns if not _PATTERN.match(pattern)]


def event_matches(patterns: Iterable[str], event: str) -> bool:
    """Whether `event` passes a webhook's filter: `*` is everything, `server.power.*` is every
    event below `server.power`, anything else must be equal."""
    for pattern in patterns:
        if pattern == "*" or pattern == event:
            return True
        if pattern.endswith(".*") and event.startswith(pattern[:-1]):
            return True
    return False


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (Unix seconds)."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def retry_delay(
    attempt: int, *, base_seconds: float, cap_seconds: float, jitter: float
) -> timedelta:
    """How long to wait after failed attempt number `attempt` (1 = the first): doubling from
    `base_seconds` up to `cap_seconds`, spread by `jitter` in [0, 1) (a random draw the caller
    supplies) over +-20 % so that many webhooks failing together do not retry together."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter is a draw from [0, 1)")
    delay = min(cap_seconds, base_seconds * 2 ** (attempt - 1))
    return timedelta(seconds=delay * (0.8 + 0.4 * jitter))


def parse_allowed(entries: Iterable[str]) -> frozenset[tuple[str, int]]:
    """`address:port` entries (`[v6]:port` for IPv6) as `(address, port)` pairs."""
    pairs: set[tuple[str, int]] = set()
    for entry in entries:
        host, sep, port = entry.strip().rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(
                host
            )
            number = int(port)
        except ValueError:
            address, number = None, -1
        if not sep or address is None or not 1 <= number <= 65535:
            raise ValueError(
                f"STELLARSTACK_PANEL_WEBHOOK_ALLOWED: {entry!r} is not address:port "
                "(e.g. 127.0.0.1:9000 or [::1]:9000)"
            )
        pairs.add((str(address), number))
    return frozenset(pairs)


def event_payload(
    *,
    event_id: str,
    event: str,
    at: datetime,
    actor: Mapping[str, str | None],
    target_type: str | None,
    target_id: str | None,
    server_id: str | None,
    properties: Mapping[str, Any],
) -> dict[str, Any]:
    """The `json` format: everything the activity entry says. `id` names the event; every
    delivery of it (retries, redeliveries) carries the same one, so receivers can deduplicate."""
    return {
        "id": event_id,
        "event": event,
        "at": at.isoformat(),
        "actor": dict(actor),
        "target": {"type": target_type, "id": target_id},
        "server_id": server_id,
        "properties": dict(properties),
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summary(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    actor = payload["actor"]
    target = payload["target"]
    rows = [
        ("Actor", actor.get("user_id") or "anonymous"),
        ("IP", actor.get("ip") or "-"),
    ]
    if target.get("type"):
        rows.append(("Target", f"{target['type']} {target.get('id') or ''}".strip()))
    if payload.get("server_id"):
        rows.append(("Server", str(payload["server_id"])))
    return rows


def _details(payload: Mapping[str, Any], limit: int) -> str:
    properties = payload.get("properties") or {}
    if not properties:
        return ""
    text = json.dumps(properties, sort_keys=True, default=str, indent=1)
    return _cut(f"```json\n{text}", limit - 4) + "\n```"


def discord_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Discord execute-webhook body: `content` plus one embed (Discord wants at least one of
    content/embeds, at most 2000 characters of content and 1024 per field value)."""
    fields = [
        {"name": name, "value": _cut(value, DISCORD_FIELD_LIMIT), "inline": True}
        for name, value in _summary(payload)
    ]
    embed: dict[str, Any] = {
        "title": _cut(payload["event"], 256),
        "timestamp": payload["at"],
        "fields": fields,
        "footer": {"text": "StellarStack"},
    }
    details = _details(payload, DISCORD_DESCRIPTION_LIMIT)
    if details:
        embed["description"] = details
    return {
        "content": _cut(f"StellarStack: `{payload['event']}`", DISCORD_CONTENT_LIMIT),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


def slack_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body: `text` (the notification fallback) plus Block Kit blocks
    (section text at most 3000 characters, at most 10 section fields)."""
    summary = _summary(payload)
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(f"*{payload['event']}*", SLACK_TEXT_LIMIT)},
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{name}*\n{value}", 2000)}
                for name, value in summary[:10]
            ],
        }
    ]
    details = _details(payload, SLACK_TEXT_LIMIT)
    if details:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": details}})
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"at {payload['at']}"}]}
    )
    return {"text": _cut(f"StellarStack: {payload['event']}", SLACK_TEXT_LIMIT), "blocks": blocks}


def render_body(format_name: str, payload: Mapping[str, Any]) -> str:
    """The exact text sent (and signed) for `payload` in a webhook's format."""
    if format_name == "discord":
        body = discord_body(payload)
    elif format_name == "slack":
        body = slack_body(payload)
    elif format_name == "json":
        body = dict(payload)
    else:
        raise ValueError(f"unknown webhook format {format_name!r}; one of {', '.join(FORMATS)}")
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str)
