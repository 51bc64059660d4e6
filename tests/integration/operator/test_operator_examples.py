"""The armagetronad example (a real game server) reaches Running under the operator."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes.client.exceptions import ApiException

from stellarstack.operator.reconcile import default_stellarstack_image
from support.kube import Kube
from support.operator_cluster import GROUP, VERSION, GameServers, free_host_port

pytestmark = [
    pytest.mark.kube,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "armagetronad.yaml"
IMAGE = "localhost/stellarstack/armagetronad:1"


def test_armagetronad_example_runs_and_stops_cleanly(
    kube: Kube, kube_namespace: str, operator: KopfRunner, gameservers: GameServers
) -> None:
    kube.require_image(IMAGE)
    kube.require_image(default_stellarstack_image())  # its config-file init container
    docs: list[dict[str, Any]] = list(yaml.safe_load_all(EXAMPLE.read_text()))
    blueprint = next(d for d in docs if d["kind"] == "Blueprint")
    gameserver = next(d for d in docs if d["kind"] == "GameServer")
    # Blueprints are cluster-wide: a unique name keeps parallel sessions apart.
    name = f"armagetronad-{secrets.token_hex(3)}"
    blueprint["metadata"]["name"] = name
    gameserver["spec"]["blueprint"] = name
    gameserver["spec"]["ports"][0]["hostPort"] = free_host_port()
    kube.custom.create_cluster_custom_object(GROUP, VERSION, "blueprints", blueprint)
    try:
        gameservers.create(gameserver)
        status = gameservers.wait_state("armagetronad", "Running", timeout=240)
        assert status["install"]["result"] == "Succeeded"
        assert status["ports"][0]["protocol"] == "UDP"

        # Its stop method is QUIT on the console (it ignores SIGTERM as PID 1).
        gameservers.patch_spec("armagetronad", {"power": {"state": "Stopped"}})
        stopped = gameservers.wait_state("armagetronad", "Stopped", timeout=90)
        assert stopped["lastExit"]["exitCode"] == 0, stopped
    finally:
        try:
            kube.custom.delete_cluster_custom_object(GROUP, VERSION, "blueprints", name)
        except ApiException as error:
            if error.status != 404:
                raise
