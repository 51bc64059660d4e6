"""The StellarStack image (`make image`): small, unprivileged, and the CLI works in it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from support.required import DOCKER, unavailable

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"localhost/stellarstack/stellarstack:{VERSION}"


@pytest.fixture(scope="module")
def image(docker_client: Any) -> Any:
    import docker.errors

    try:
        return docker_client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        unavailable(f"image {IMAGE} is missing; `make image` builds it", DOCKER)


def run(docker_client: Any, *args: str, entrypoint: str | None = None) -> str:
    """Run the image the way the chart does: read-only root, no capabilities, uid 1000."""
    output = docker_client.containers.run(
        IMAGE,
        list(args),
        entrypoint=entrypoint,
        remove=True,
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        tmpfs={"/tmp": "size=16m"},
        network_disabled=True,
    )
    return str(output.decode())


def test_image_configuration(image: Any) -> None:
    config = image.attrs["Config"]
    assert config["User"] == "1000:1000"
    assert config["Entrypoint"] == ["stellarstack"]
    assert f"{IMAGE.rsplit(':', 1)[0]}:dev" in image.tags


def test_cli_and_components_run_unprivileged(docker_client: Any, image: Any) -> None:
    assert "--liveness" in run(docker_client, "operator", "--help")
    assert "--standalone" in run(docker_client, "operator", "--help")
    assert "kind: CustomResourceDefinition" in run(docker_client, "crds")
    imported = run(
        docker_client,
        "-c",
        "import os, stellarstack.operator.main, stellarstack.nodeproxy.main; print(os.getuid())",
        entrypoint="python",
    )
    assert imported.strip() == "1000"


def test_no_build_tools_or_package_lists(docker_client: Any, image: Any) -> None:
    script = (
        "ls -A /var/lib/apt/lists; "
        "for tool in gcc cc make pip pip3; do command -v $tool; done; "
        "ls /opt/stellarstack/bin | grep -x 'pip.*' || true"
    )
    assert run(docker_client, "-c", script, entrypoint="sh").strip() == ""
