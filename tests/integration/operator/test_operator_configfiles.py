"""Config-file edits on Kubernetes: the game Pod's init container edits the volume's files from
the GameServer's variables before the game starts, at every start, and refuses planted links."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
from kopf.testing import KopfRunner

from stellarstack.operator.builders import CONFIG_FILES_CONTAINER
from stellarstack.operator.reconcile import default_stellarstack_image
from support.kube import Kube
from support.operator_cluster import GameServers, gameserver_doc

pytestmark = [
    pytest.mark.kube,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

# The game prints its config file as it starts, so its console shows what it read.
STARTUP = "echo config:; cat toy.properties; exec /usr/local/bin/toy"
INSTALL = (
    "set -e\n"
    "cd /mnt/server\n"
    "printf '%s\\n' '# written by the install step' 'name=Toy' 'port=1' > toy.properties\n"
    # A link a game could plant: editing through it would write outside the volume.
    "ln -s /etc/hostname linked.properties\n"
)
CONFIG_FILES = [
    {
        "path": "toy.properties",
        "parser": "properties",
        "edits": [
            {"key": "name", "value": "{{TOY_NAME}}"},
            {"key": "port", "value": "{{SERVER_PORT}}"},
            {"key": "motd", "value": "Hello from {{TOY_NAME}}"},
        ],
    },
    {"path": "linked.properties", "parser": "properties", "edits": [{"key": "k", "value": "v"}]},
]


def test_config_files_are_edited_before_every_start(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    kube.require_image(default_stellarstack_image())
    bp = blueprint(
        startupCommands=[{"name": "Default", "command": STARTUP}],
        configFiles=CONFIG_FILES,
        install={"image": "localhost/stellarstack/toy:1", "entrypoint": "sh", "script": INSTALL},
    )
    first = f"Config {secrets.token_hex(2)}"
    doc = gameserver_doc("toy-cfg", bp)
    doc["spec"]["variables"] = {"TOY_NAME": first}
    gameservers.create(doc)
    gameservers.wait_state("toy-cfg", "Running", timeout=180)

    pod = kube.core.read_namespaced_pod("toy-cfg", kube_namespace)
    (init,) = pod.spec.init_containers
    assert init.name == CONFIG_FILES_CONTAINER
    assert init.image == default_stellarstack_image()
    assert init.security_context.run_as_user == 1000
    assert init.security_context.read_only_root_filesystem is True
    assert init.security_context.allow_privilege_escalation is False
    assert pod.spec.automount_service_account_token is False
    (init_status,) = pod.status.init_container_statuses
    assert init_status.state.terminated.exit_code == 0

    # The game read the edited file: comment and order kept, keys set from the variables.
    game_log = kube.core.read_namespaced_pod_log("toy-cfg", kube_namespace, container="game")
    shown = game_log.split("config:\n", 1)[1].split("ready name=", 1)[0]
    assert shown.splitlines()[:4] == [
        "# written by the install step",
        f"name={first}",
        "port=7777",
        f"motd=Hello from {first}",
    ], game_log[:800]
    init_log = kube.core.read_namespaced_pod_log(
        "toy-cfg", kube_namespace, container=CONFIG_FILES_CONTAINER
    )
    assert "config file linked.properties: not edited" in init_log, init_log
    assert "1 of 2 applied" in init_log, init_log

    # A new value reaches the file at the next start (each start is a new Pod, run after its
    # init container).
    gameservers.patch_spec("toy-cfg", {"power": {"state": "Stopped"}})
    gameservers.wait_state("toy-cfg", "Stopped", timeout=60)
    second = f"Renamed {secrets.token_hex(2)}"
    gameservers.patch_spec("toy-cfg", {"variables": {"TOY_NAME": second}})
    gameservers.patch_spec("toy-cfg", {"power": {"state": "Running"}})
    gameservers.wait_state("toy-cfg", "Running", timeout=120)
    game_log = kube.core.read_namespaced_pod_log("toy-cfg", kube_namespace, container="game")
    assert f"name={second}\n" in game_log, game_log[:800]
    assert f"motd=Hello from {second}\n" in game_log
    assert first not in game_log
    assert game_log.count("motd=") == 1  # the key set last time was replaced, not appended


def test_blueprint_without_config_files_has_no_init_container(
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    bp = blueprint()
    gameservers.create(gameserver_doc("toy-plain", bp))
    gameservers.wait_state("toy-plain", "Running", timeout=120)
    pod = kube.core.read_namespaced_pod("toy-plain", kube_namespace)
    assert not pod.spec.init_containers


@pytest.fixture
def missing_stellarstack_image(monkeypatch: pytest.MonkeyPatch) -> str:
    """The operator (started after this fixture) is configured with an image no node has."""
    image = f"localhost/stellarstack/missing-{secrets.token_hex(3)}:0"
    monkeypatch.setenv("STELLARSTACK_IMAGE", image)
    return image


def test_a_missing_init_image_is_named_in_the_status(
    missing_stellarstack_image: str,
    kube: Kube,
    kube_namespace: str,
    operator: KopfRunner,
    blueprint: Callable[..., str],
    gameservers: GameServers,
) -> None:
    bp = blueprint(configFiles=CONFIG_FILES[:1])
    gameservers.create(gameserver_doc("toy-noimg", bp))

    def named() -> dict[str, object] | None:
        status = gameservers.status("toy-noimg")
        message = str(status.get("message") or "")
        return status if message.startswith("init container config-files: ") else None

    status = kube.wait_for("the blocked init container in the status", named, 120, 1.0)
    assert status["state"] == "Starting", status
    pod = kube.core.read_namespaced_pod("toy-noimg", kube_namespace)
    assert pod.spec.init_containers[0].image == missing_stellarstack_image
