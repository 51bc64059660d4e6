"""Readiness probes knock where a port is published: its own address, or the probe host when
it is published on every address."""

from __future__ import annotations

import pytest

from stellarstack.nodeproxy.agent import probe_address


@pytest.mark.parametrize(
    ("host_ip", "expected"),
    [
        (None, "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),
        ("::", "127.0.0.1"),
        ("127.0.0.2", "127.0.0.2"),
        ("203.0.113.9", "203.0.113.9"),
        ("::1", "::1"),
    ],
)
def test_probe_address(host_ip: str | None, expected: str) -> None:
    assert probe_address(host_ip, "127.0.0.1") == expected
