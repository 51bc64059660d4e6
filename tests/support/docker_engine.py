"""Fixtures for tests that need a real Docker engine and the locally built images.

No image can be pulled on the machines the tests run on: `make images` builds them from Debian
packages (see hack/images). Tests skip with the reason when the engine or an image is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support.required import DOCKER, unavailable

TOY_IMAGE = "localhost/stellarstack/toy:1"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A Docker SDK client for the local engine; skips when none answers."""
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # any failure to reach the engine means "no engine here"
        unavailable(
            f"no Docker engine answers ({exc}); `bash hack/docker-up.sh` starts one", DOCKER
        )
    yield client
    client.close()


def require_image(client: Any, image: str) -> str:
    """Skip unless `image` is present locally (`make images` builds it)."""
    import docker.errors

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        unavailable(f"image {image} is missing; `make images` builds it", DOCKER)
    return image


@pytest.fixture(scope="session")
def toy_image(docker_client: Any) -> str:
    """The busybox toy game server image."""
    return require_image(docker_client, TOY_IMAGE)
