"""The runtime contract: one suite, run against every `GameServerRuntime` implementation.

Each implementation contributes a branch of the `harness` fixture; a test receives a
`RuntimeHarness` with the runtime and a way to make a workload for a fresh toy server. The
Kubernetes runtime joins as another parameter when it lands.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stellarstack.api.workload import WorkloadSettings
from support.runtime_harness import RuntimeHarness


@pytest.fixture(params=["docker"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RuntimeHarness]:
    """Each runtime implementation, with every server it created destroyed afterwards."""
    if request.param == "docker":
        from stellarstack.nodeproxy.runtime.containers import DockerSettings
        from stellarstack.nodeproxy.runtime.docker import DockerRuntime

        client = request.getfixturevalue("docker_client")
        request.getfixturevalue("toy_image")
        data_root = tmp_path / "servers"
        data_root.mkdir()
        settings = DockerSettings(
            data_root=data_root,
            agent_id=f"test-{uuid.uuid4().hex[:8]}",
            bind_address="127.0.0.1",
            workload=WorkloadSettings(),
        )
        harness = RuntimeHarness(
            runtime=DockerRuntime(client, settings),
            namespace="contract",
            data_dir=settings.data_dir,
            created=[],
        )
    else:  # pragma: no cover - every parameter is handled above
        raise AssertionError(request.param)
    yield harness
    for key in harness.created:
        await harness.runtime.destroy(key, keep_data=False)
