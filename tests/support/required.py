"""Skip locally, fail in CI: a missing engine must not turn a CI run green by skipping.

`.ci/run` sets `STELLARSTACK_REQUIRE_DOCKER=1`, `STELLARSTACK_REQUIRE_KUBE=1` and
`STELLARSTACK_REQUIRE_NODE=1` after it has started or installed those; then a test that cannot
reach them fails with the same reason a developer's run would skip with.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

DOCKER = "STELLARSTACK_REQUIRE_DOCKER"
KUBE = "STELLARSTACK_REQUIRE_KUBE"
POSTGRES = "STELLARSTACK_REQUIRE_POSTGRES"
NODE = "STELLARSTACK_REQUIRE_NODE"
"""Node.js and npm, and the web UI built with them (`make ui`)."""


def unavailable(reason: str, requirement: str) -> NoReturn:
    """Skip with `reason`, or fail with it when the environment requires the service."""
    if os.environ.get(requirement) == "1":
        pytest.fail(f"{reason} ({requirement}=1: required here)", pytrace=False)
    pytest.skip(reason)
