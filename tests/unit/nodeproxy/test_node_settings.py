from pathlib import Path

import pytest
from pydantic import ValidationError

from stellarstack.nodeproxy.ratelimit import TokenBucket
from stellarstack.nodeproxy.settings import NodeSettings


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    bucket = TokenBucket.full(rate=2, burst=4, now=0)
    assert [bucket.allow(0) for _ in range(5)] == [True, True, True, True, False]
    assert bucket.allow(0.4) is False  # 0.8 tokens refilled
    assert bucket.allow(0.5) is True  # 1.0 token
    assert bucket.allow(100) is True
    assert bucket.tokens == 3  # refill is capped at the burst


@pytest.mark.parametrize("token", ["changeme", "short", "x" * 31, "password"])
def test_weak_node_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        NodeSettings(token=token)  # type: ignore[arg-type]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STELLARSTACK_NODE_TOKEN", "a" * 40)
    monkeypatch.setenv("STELLARSTACK_NODE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STELLARSTACK_NODE_PORT", "9000")
    settings = NodeSettings()  # type: ignore[call-arg]
    assert settings.port == 9000
    assert settings.state_file == tmp_path / "nodeproxy.sqlite"
    assert settings.servers_dir == tmp_path / "servers"
    assert "a" * 40 not in repr(settings)
