"""`helm test`: create a toy Blueprint and GameServer, wait until the operator runs it.

Runs in the StellarStack image with the test ServiceAccount. Exits 0 when the GameServer
reached Running within the timeout, 1 otherwise; deletes both objects either way.
"""

import os
import sys
import time

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "stellarstack.io", "v1alpha1"
NAME = os.environ["TEST_NAME"]
NAMESPACE = os.environ["TEST_NAMESPACE"]
IMAGE = os.environ["TEST_GAME_IMAGE"]
TIMEOUT = float(os.environ.get("TEST_TIMEOUT_SECONDS", "180"))

BLUEPRINT = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "Blueprint",
    "metadata": {"name": NAME},
    "spec": {
        "displayName": "helm test toy",
        "images": [{"name": "Toy", "image": IMAGE}],
        "startupCommands": [{"name": "Default", "command": "/usr/local/bin/toy"}],
        "variables": [
            {"env": "TOY_NAME", "name": "Name", "default": "helm-test"},
            {"env": "TOY_DATA", "name": "Data", "default": "/home/container"},
            {"env": "TOY_TCP_PORT", "name": "TCP port", "default": "7777"},
            {"env": "TOY_UDP_PORT", "name": "UDP port", "default": "7778"},
        ],
        "stop": {"type": "Command", "command": "stop", "gracePeriodSeconds": 10},
        "readiness": {"consolePatterns": ["ready name="]},
        "install": {
            "image": IMAGE,
            "entrypoint": "sh",
            "script": "set -e\necho installed > /mnt/server/installed.txt\n",
        },
    },
}

GAMESERVER = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "GameServer",
    "metadata": {"name": NAME},
    "spec": {
        "blueprint": NAME,
        "resources": {"cpu": "100m", "memory": "64Mi", "disk": "100Mi", "pids": 64},
        "ports": [
            {"name": "status", "port": 7777, "protocol": "TCP"},
            {"name": "query", "port": 7778, "protocol": "UDP"},
        ],
        "exposure": {"type": "ClusterIP"},
    },
}


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def ignore_missing(call, *args) -> None:
    try:
        call(*args)
    except ApiException as error:
        if error.status != 404:
            raise


def gameserver(api: client.CustomObjectsApi) -> dict | None:
    try:
        return api.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "gameservers", NAME)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def clean_up(api: client.CustomObjectsApi) -> None:
    """Delete the GameServer (the operator stops it, removes its children), then the Blueprint."""
    ignore_missing(
        api.delete_namespaced_custom_object, GROUP, VERSION, NAMESPACE, "gameservers", NAME
    )
    deadline = time.monotonic() + 90
    while gameserver(api) is not None and time.monotonic() < deadline:
        time.sleep(2)
    ignore_missing(api.delete_cluster_custom_object, GROUP, VERSION, "blueprints", NAME)


def main() -> int:
    config.load_incluster_config()
    api = client.CustomObjectsApi()
    clean_up(api)  # a leftover of an interrupted earlier run
    try:
        api.create_cluster_custom_object(GROUP, VERSION, "blueprints", BLUEPRINT)
        api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "gameservers", GAMESERVER)
        log(f"created Blueprint {NAME} and GameServer {NAMESPACE}/{NAME} ({IMAGE})")
        deadline = time.monotonic() + TIMEOUT
        seen = None
        while time.monotonic() < deadline:
            status = (gameserver(api) or {}).get("status") or {}
            state = (status.get("state"), status.get("reason"), status.get("message"))
            if state != seen:
                log(f"state={state[0]} reason={state[1]} message={state[2]}")
                seen = state
            if status.get("state") == "Running":
                log("PASS: the GameServer is Running")
                return 0
            time.sleep(2)
        log(f"FAIL: the GameServer is not Running after {TIMEOUT:.0f}s")
        return 1
    finally:
        clean_up(api)


if __name__ == "__main__":
    sys.exit(main())
