"""Console WebSocket rules: message parsing, rate limit, flood guard, caps, origins."""

from __future__ import annotations

import pytest

from stellarstack.panel.consolepolicy import (
    Command,
    ConnectionCaps,
    FloodGuard,
    Invalid,
    Power,
    ReplayFilter,
    TokenBucket,
    api_key_from_subprotocols,
    parse_client_message,
    same_origin,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type": "command", "line": "say hi"}', Command("say hi")),
        ('{"type": "power", "action": "restart"}', Power("restart")),
        ('{"type": "power", "action": "kill"}', Power("kill")),
        (
            '{"type": "power", "action": "explode"}',
            Invalid("action: one of start, stop, restart, kill"),
        ),
        ('{"type": "command", "line": ""}', Invalid("line: a non-empty string is required")),
        ('{"type": "command", "line": 5}', Invalid("line: a non-empty string is required")),
        ('{"type": "command", "line": "a\\nb"}', Invalid("line: must be a single line")),
        ('{"type": "command", "line": "a\\rb"}', Invalid("line: must be a single line")),
        ('{"type": "shell"}', Invalid('type: "command" or "power"')),
        ("[1, 2]", Invalid("messages are JSON objects")),
        ("not json", Invalid("messages are JSON objects")),
    ],
)
def test_parse_client_message(text: str, expected: object) -> None:
    assert parse_client_message(text) == expected


def test_power_needs_the_matching_control_node() -> None:
    assert Power("stop").node == "control.stop"


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    bucket = TokenBucket.full(rate=2, burst=4, now=0)
    assert [bucket.allow(0) for _ in range(5)] == [True, True, True, True, False]
    assert bucket.allow(0.5) is True  # one token back after half a second at 2/s
    assert bucket.allow(0.5) is False
    assert bucket.allow(100) is True  # refill stops at the burst
    assert sum(bucket.allow(100) for _ in range(10)) == 3


def test_flood_guard_drops_then_closes_and_forgives_after_a_pass() -> None:
    guard = FloodGuard(TokenBucket.full(rate=1, burst=1, now=0), close_after=3)
    assert guard.check(0) == "ok"
    assert [guard.check(0), guard.check(0)] == ["drop", "drop"]
    assert guard.check(1) == "ok"  # a message that passes resets the count
    assert [guard.check(1), guard.check(1), guard.check(1)] == ["drop", "drop", "close"]


def test_connection_caps_per_server_and_per_user() -> None:
    caps = ConnectionCaps(per_server=3, per_user=2)
    assert caps.acquire("s1", "alice") is None
    assert caps.acquire("s1", "alice") is None
    refused = caps.acquire("s2", "alice")
    assert refused is not None
    assert "user" in refused
    assert caps.acquire("s1", "bob") is None
    refused = caps.acquire("s1", "carol")
    assert refused is not None
    assert "server" in refused
    caps.release("s1", "alice")
    assert caps.acquire("s1", "carol") is None
    for user in ("alice", "bob", "carol"):
        caps.release("s1", user)
    assert caps.servers == {}
    assert caps.users == {}


@pytest.mark.parametrize(
    ("origin", "public_url", "same"),
    [
        ("https://panel.example", "https://panel.example", True),
        ("https://panel.example", "https://panel.example/", True),
        ("https://panel.example:443", "https://panel.example", True),
        ("https://PANEL.example", "https://panel.example", True),
        ("http://panel.example", "https://panel.example", False),
        ("https://panel.example.evil.test", "https://panel.example", False),
        ("https://panel.example:8443", "https://panel.example", False),
        ("http://localhost:8000", "http://localhost:8000", True),
        ("null", "http://localhost:8000", False),
        (None, "http://localhost:8000", False),
        ("", "http://localhost:8000", False),
    ],
)
def test_same_origin(origin: str | None, public_url: str, same: bool) -> None:
    assert same_origin(origin, public_url) is same


def test_api_key_from_subprotocols() -> None:
    prefix = "stellarstack.bearer."
    offered = ["stellarstack.console.v1", "stellarstack.bearer.ssk_abc.def-_x"]
    assert api_key_from_subprotocols(offered, prefix) == "ssk_abc.def-_x"
    assert api_key_from_subprotocols(["stellarstack.console.v1"], prefix) is None
    assert api_key_from_subprotocols([prefix], prefix) is None


def replay(filter_: ReplayFilter, lines: list[str]) -> list[str]:
    filter_.new_session()
    return [out for line in lines for out in filter_.feed(line)]


def test_replay_filter_drops_a_replayed_backlog_and_keeps_what_is_new() -> None:
    filter_ = ReplayFilter(keep=5)
    assert replay(filter_, ["a", "b", "c"]) == ["a", "b", "c"]
    # The same backlog again (a stopped server's finished log): nothing new.
    assert replay(filter_, ["a", "b", "c"]) == []
    # The backlog window moved on: its overlap is dropped, the new lines pass.
    assert replay(filter_, ["b", "c", "d", "e"]) == ["d", "e"]
    # A new run whose output differs from the start: everything passes.
    assert replay(filter_, ["x", "y"]) == ["x", "y"]
    # Lines that start like the history but diverge are new after all.
    assert replay(filter_, ["d", "q"]) == ["d", "q"]


def test_replay_filter_passes_everything_on_the_first_session() -> None:
    filter_ = ReplayFilter(keep=3)
    assert replay(filter_, ["a", "a", "a", "a"]) == ["a", "a", "a", "a"]
