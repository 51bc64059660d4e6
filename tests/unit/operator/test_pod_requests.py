"""Every Pod the operator makes for a GameServer asks the scheduler for exactly what the
GameServer asked for: no helper (init) container raises the Pod's effective request.

A Pod's effective request (what the scheduler reserves) is, per resource, the larger of its app
containers' sum and its largest init container's request (a restartable "sidecar" init
container counts towards both), the rule of Kubernetes' `resourcehelper.PodRequests`. The
config-files init container once asked for a fixed 250m, so a toy asking 100m needed 250m.
"""

from __future__ import annotations

import copy
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.manifests import load_manifests
from stellarstack.api.quantity import parse_quantity
from stellarstack.api.workload import WorkloadSettings, build_workload
from stellarstack.operator.builders import (
    CONFIG_FILES_CONTAINER,
    CONFIG_FILES_CPU_MILLICORES,
    CONFIG_FILES_MEMORY_BYTES,
    GAME_CONTAINER,
    desired_install_job,
    desired_pod,
)
from stellarstack.operator.filespod import FilesSettings, desired_files_pod
from stellarstack.operator.runtimeplan import (
    desired_workload_config_map,
    runnable_pod,
    stored_pod,
    with_spec_hash,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
IMAGE = "localhost/stellarstack/stellarstack:9"
RESOURCES = ("cpu", "memory")
# The smallest a GameServer may ask for (the API's bounds): where a helper's own need bites.
SMALLEST = {"cpu": "10m", "memory": "64Mi"}

Manifest = dict[str, Any]


def _examples() -> list[tuple[str, GameServer, Blueprint]]:
    bodies = [body for _, _, body in load_manifests(EXAMPLES)]
    blueprints = {
        body["metadata"]["name"]: Blueprint.model_validate(body)
        for body in bodies
        if body.get("kind") == "Blueprint"
    }
    found = []
    for body in bodies:
        if body.get("kind") == "GameServer":
            gameserver = GameServer.model_validate(body)
            found.append(
                (body["metadata"]["name"], gameserver, blueprints[gameserver.spec.blueprint])
            )
    return found


EXAMPLE_SERVERS = _examples()


def _smallest(gameserver: GameServer) -> GameServer:
    doc = gameserver.model_dump(mode="json", by_alias=True, exclude_none=True)
    doc = copy.deepcopy(doc)
    doc["spec"]["resources"].update(SMALLEST)
    return GameServer.model_validate(doc)


CASES = [pytest.param(gs, bp, id=f"{name}-as-given") for name, gs, bp in EXAMPLE_SERVERS] + [
    pytest.param(_smallest(gs), bp, id=f"{name}-smallest") for name, gs, bp in EXAMPLE_SERVERS
]


def requests_of(container: Manifest) -> dict[str, Fraction]:
    asked = (container.get("resources") or {}).get("requests") or {}
    return {r: parse_quantity(asked[r]) if r in asked else Fraction(0) for r in RESOURCES}


def effective_requests(pod_spec: Manifest) -> dict[str, Fraction]:
    """What the scheduler reserves for a Pod (Kubernetes' PodRequests, without overhead)."""
    result: dict[str, Fraction] = {}
    for resource in RESOURCES:
        apps = sum((requests_of(c)[resource] for c in pod_spec["containers"]), Fraction(0))
        sidecars = Fraction(0)
        largest_init = Fraction(0)
        for init in pod_spec.get("initContainers") or []:
            amount = requests_of(init)[resource]
            if init.get("restartPolicy") == "Always":
                sidecars += amount
                apps += amount
                largest_init = max(largest_init, sidecars)
            else:
                largest_init = max(largest_init, amount + sidecars)
        result[resource] = max(apps, largest_init)
    return result


def asked(gameserver: GameServer) -> dict[str, Fraction]:
    resources = gameserver.spec.resources
    return {"cpu": parse_quantity(resources.cpu), "memory": parse_quantity(resources.memory)}


def test_every_example_server_is_covered() -> None:
    names = {name for name, _, _ in EXAMPLE_SERVERS}
    assert len(names) >= 7, names
    assert any(bp.spec.config_files for _, _, bp in EXAMPLE_SERVERS), (
        "a case with an init container"
    )
    assert any(bp.spec.install for _, _, bp in EXAMPLE_SERVERS), "a case with an install Job"


@pytest.mark.parametrize(("gameserver", "blueprint"), CASES)
def test_the_game_pod_asks_for_what_the_gameserver_asked(
    gameserver: GameServer, blueprint: Blueprint
) -> None:
    workload = build_workload(gameserver, blueprint)
    pod = desired_pod(workload, gameserver, WorkloadSettings(), stellarstack_image=IMAGE)
    spec = pod["spec"]
    assert effective_requests(spec) == asked(gameserver)
    game = next(c for c in spec["containers"] if c["name"] == GAME_CONTAINER)
    for init in spec.get("initContainers") or []:
        resources = init["resources"]
        # Guaranteed QoS needs requests = limits in every container, init ones included.
        assert resources["requests"] == resources["limits"], init["name"]
        for resource in RESOURCES:
            assert requests_of(init)[resource] <= requests_of(game)[resource], (
                init["name"],
                resource,
            )


@pytest.mark.parametrize(("gameserver", "blueprint"), CASES)
def test_the_runtimes_stored_pod_asks_for_what_the_gameserver_asked(
    gameserver: GameServer, blueprint: Blueprint
) -> None:
    """`KubernetesRuntime` creates the Pod it stored in a ConfigMap: the same requests."""
    workload = build_workload(gameserver, blueprint)
    pod = with_spec_hash(desired_pod(workload, gameserver, stellarstack_image=IMAGE))
    stored = stored_pod(desired_workload_config_map(workload, pod))
    assert stored is not None
    assert effective_requests(runnable_pod(stored)["spec"]) == asked(gameserver)


@pytest.mark.parametrize(("gameserver", "blueprint"), CASES)
def test_the_install_job_asks_for_what_the_gameserver_asked(
    gameserver: GameServer, blueprint: Blueprint
) -> None:
    workload = build_workload(gameserver, blueprint)
    if workload.install is None:
        pytest.skip(f"{blueprint.metadata.name} has no install step")
    job = desired_install_job(workload, gameserver, WorkloadSettings())
    assert effective_requests(job["spec"]["template"]["spec"]) == asked(gameserver)


def test_the_config_files_helper_takes_its_own_need_from_a_big_server() -> None:
    """Capped by the game, not raised to it: a 6Gi server's helper still asks 250m and 96Mi."""
    name, gameserver, blueprint = next(
        (n, gs, bp)
        for n, gs, bp in EXAMPLE_SERVERS
        if bp.spec.config_files and asked(gs)["memory"] > CONFIG_FILES_MEMORY_BYTES
    )
    workload = build_workload(gameserver, blueprint)
    pod = desired_pod(workload, gameserver, stellarstack_image=IMAGE)
    (helper,) = pod["spec"]["initContainers"]
    assert helper["name"] == CONFIG_FILES_CONTAINER, name
    assert requests_of(helper) == {
        "cpu": Fraction(min(CONFIG_FILES_CPU_MILLICORES, workload.limits.cpu_millicores), 1000),
        "memory": Fraction(CONFIG_FILES_MEMORY_BYTES),
    }


@pytest.mark.parametrize(("gameserver", "blueprint"), CASES)
def test_the_files_pod_has_no_helper_and_asks_for_its_settings(
    gameserver: GameServer, blueprint: Blueprint
) -> None:
    """The on-demand files Pod is a service of its own, sized by the operator's settings (the
    web and SFTP stack alone needs about 100 MB, more than the smallest server may ask for);
    no init container adds to it."""
    settings = FilesSettings(image=IMAGE, cpu="200m", memory="192Mi")
    pod = desired_files_pod(
        gameserver, settings, WorkloadSettings(), config_digest="0" * 32, node=None
    )
    assert not pod["spec"].get("initContainers")
    assert effective_requests(pod["spec"]) == {
        "cpu": Fraction(1, 5),
        "memory": Fraction(192 * 2**20),
    }
