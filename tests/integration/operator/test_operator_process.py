"""`stellarstack operator` as a real process: liveness endpoint, a Blueprint checked, SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from support.kube import Kube
from support.operator_cluster import GROUP, VERSION
from support.runtime_harness import free_port

pytestmark = [pytest.mark.kube, pytest.mark.slow]


def test_operator_command_serves_liveness_checks_blueprints_and_exits_on_sigterm(
    kube: Kube,
    kube_namespace: str,
    operator_crds: list[str],
    blueprint: Callable[..., str],
    tmp_path: Path,
) -> None:
    executable = shutil.which("stellarstack", path=str(Path(sys.executable).parent))
    assert executable, "the stellarstack entry point is installed (make install)"
    port = free_port()
    log = (tmp_path / "operator.log").open("w")
    process = subprocess.Popen(
        [
            executable,
            "operator",
            "--standalone",
            "-n",
            kube_namespace,
            "--liveness",
            f"http://127.0.0.1:{port}/healthz",
        ],
        env={**os.environ, "KUBECONFIG": str(kube.kubeconfig)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        kube.wait_for(
            "liveness answers",
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200
            ),
            60,
        )
        name = blueprint()
        kube.wait_for(
            "blueprint Ready",
            lambda: (
                kube.custom.get_cluster_custom_object(GROUP, VERSION, "blueprints", name)
                .get("status", {})
                .get("phase")
                == "Ready"
            ),
            30,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise
        finally:
            log.close()
    output = (tmp_path / "operator.log").read_text()
    assert code == 0, output[-3000:]


def _status(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)
