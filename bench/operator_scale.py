"""The operator at scale, against the local test cluster, with a baseline from the same run.

The real `stellarstack operator` process watches a fresh namespace; the bench creates GameServers
in batches (by default 100, then 500 more, after a backlog of 400 that existed before the
operator started: 1,000 in all) with `power.state: Stopped` and a Blueprint without an install
step, so no Pod ever runs: a Stopped server's whole reconcile
is the finalizer, the first status (`Stopped`, `observedGeneration` = 1) and its Event, and the
operator creates no child object for it. Per batch it reports:

- latency from the create call to the status `Stopped` being seen on a watch, p50/p99;
- sustained GameServers/s: the batch size over the time from its first create to its last
  `Stopped`, next to the rate at which the API server accepted the creates (when the two are
  close, the operator kept up with the creates and the latency stays flat);
- API requests per reconcile pass and per GameServer, from the operator's own counters
  (`/metrics`: its client's and Kopf's requests, over its reconcile passes);
- the operator's RSS (VmRSS) and peak RSS (VmHWM) from /proc/<pid>/status after the batch;
- the baseline: the same client, the same threads, creating as many plain ConfigMaps in the
  same namespace; the ratio (GameServers/s over ConfigMaps/s) is what to compare across runs,
  since the machine is noisy.

First, in a namespace of its own, the deletion of running servers (`--running`, default 10):
that many toy GameServers (100m CPU, a `stop` console command) Running, then all deleted at once
as `kubectl delete gs --all --wait=false` does, timed until the last one is gone from the API —
next to the games' own stop time measured in the same run: as many bare toy Pods of the same
image and size, sent `stop` on their consoles at once, timed until the last game process
ended. The goal is a deletion within 1.5 times the games' own stop. The operator's log is
searched for failed API calls ("Handshake status": a console stream that broke other requests).

Needs the local cluster (`make cluster`) or $KUBECONFIG with a test context; prints why and exits
0 when none is reachable. Every loop is bounded by a count and a deadline. The namespaces and the
Blueprints are deleted at the end. Usage:
python bench/operator_scale.py [--running 10] [--backlog 400] [--batches 100,500] [--threads 8]
[--timeout 300] [--only-deletion]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from stellarstack.operator.kubestream import write_stdin

REPO = Path(__file__).resolve().parents[1]
GROUP, VERSION = "stellarstack.io", "v1alpha1"
TEST_CONTEXT_PREFIXES = ("stellarstack-test", "kind-")
LOCAL_KUBECONFIG = Path.home() / ".cache" / "stellarstack" / "cluster" / "kubeconfig"
TARGET_RATE = 20.0
TARGET_RSS_MB = 300.0
TARGET_DELETION_RATIO = 1.5
TOY_IMAGE = "localhost/stellarstack/toy:1"
TOY_RESOURCES = {"cpu": "100m", "memory": "64Mi"}


def skip(reason: str) -> None:
    print(f"skipped: {reason}")
    sys.exit(0)


def connect() -> tuple[Any, Path]:
    """An ApiClient for a test cluster only (never another context), or skip."""
    candidates = [Path(p) for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    candidates.append(LOCAL_KUBECONFIG)
    for path in candidates:
        if not path.is_file():
            continue
        try:
            _, current = config.list_kube_config_contexts(config_file=str(path))
        except config.ConfigException:
            continue
        if not current["name"].startswith(TEST_CONTEXT_PREFIXES):
            continue
        api_client = config.new_client_from_config(config_file=str(path))
        try:
            client.VersionApi(api_client).get_code(_request_timeout=5)
        except Exception as error:  # any failure means: no usable cluster here
            api_client.close()
            print(f"cluster at {path} does not answer: {error}")
            continue
        return api_client, path
    skip("no reachable test cluster (run `make cluster`, or set KUBECONFIG to a test context)")
    raise AssertionError("unreachable")


def ensure_crds(api_client: Any) -> None:
    """Create the CRDs when missing (never replace them: others may use this cluster)."""
    extensions = client.ApiextensionsV1Api(api_client)
    for file in sorted((REPO / "crds").glob("*.yaml")):
        doc = yaml.safe_load(file.read_text())
        with contextlib.suppress(ApiException):
            extensions.create_custom_resource_definition(doc)
    deadline = time.monotonic() + 60
    for file in sorted((REPO / "crds").glob("*.yaml")):
        name = yaml.safe_load(file.read_text())["metadata"]["name"]
        while True:
            crd = extensions.read_custom_resource_definition(name)
            conditions = (crd.status.conditions if crd.status else None) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                skip(f"CRD {name} not Established within 60 s")
            time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def scrape(port: int) -> dict[str, float]:
    """Sums per metric sample name (labels folded), e.g. the total of API requests."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name
            if sample.name == "stellarstack_operator_api_requests_total":
                key += "{" + sample.labels.get("client", "") + "}"
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class StoppedWatch:
    """Records when each GameServer of the namespace is first seen with status Stopped."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    "gameservers",
                    timeout_seconds=30,
                ):
                    now = time.monotonic()
                    obj = event["object"]
                    status = obj.get("status") or {}
                    if status.get("state") == "Stopped" and status.get("observedGeneration"):
                        with self._lock:
                            self.seen.setdefault(obj["metadata"]["name"], now)
                    if self._stop.is_set():
                        break
            except Exception as error:  # a dropped watch is re-opened (bounded by the stop)
                print(f"  (watch re-opened after {type(error).__name__}: {str(error)[:200]})")
                time.sleep(0.5)
            finally:
                stream.stop()

    def count(self, names: set[str]) -> int:
        with self._lock:
            return sum(1 for name in names if name in self.seen)

    def times(self) -> dict[str, float]:
        with self._lock:
            return dict(self.seen)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=40)


def gameserver(name: str, namespace: str, blueprint: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GameServer",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "blueprint": blueprint,
            "power": {"state": "Stopped"},
            "resources": {"cpu": "100m", "memory": "64Mi", "disk": "100Mi"},
        },
    }


def create_all(threads: int, names: list[str], create: Callable[[str], None]) -> dict[str, float]:
    """Create every object with `threads` workers; returns each one's start time."""
    started: dict[str, float] = {}

    def one(name: str) -> None:
        started[name] = time.monotonic()
        create(name)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, names))
    return started


@contextlib.contextmanager
def operator_process(
    kubeconfig: Path, namespace: str, port: int, lines: list[str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The operator watching `namespace`; its log's lines are added to `lines` at the end."""
    executable = shutil.which("stellarstack", path=str(Path(sys.executable).parent))
    if executable is None:
        skip("the `stellarstack` command is not installed (make install)")
    with tempfile.NamedTemporaryFile("w+b", prefix="operator-", suffix=".log") as log:
        process = subprocess.Popen(
            [
                str(executable),
                "operator",
                "--standalone",
                "-n",
                namespace,
                "--metrics-port",
                str(port),
                "--metrics-address",
                "127.0.0.1",
            ],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError):
                    scrape(port)
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(
                        "the operator did not start:\n" + log.read().decode()[-3000:]
                    )
                time.sleep(0.3)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            log.seek(0)
            output = log.read().decode(errors="replace").splitlines()
            if lines is not None:
                lines.extend(output)
            errors = [line for line in output if "ERROR" in line]
            if errors:
                print(f"  operator log: {len(errors)} ERROR lines, first: {errors[0][:300]}")


def bench_namespace(core: Any, prefix: str) -> str:
    namespace = f"{prefix}-{secrets.token_hex(3)}"
    core.create_namespace(
        {"metadata": {"name": namespace, "labels": {"stellarstack.io/test": "bench"}}}
    )
    return namespace


def toy_blueprint(name: str, stop: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Blueprint",
        "metadata": {"name": name},
        "spec": {
            "displayName": "Bench",
            "images": [{"name": "Toy", "image": TOY_IMAGE}],
            "startupCommands": [{"name": "Default", "command": "/usr/local/bin/toy"}],
            "variables": [
                {"env": "TOY_NAME", "name": "Name", "default": "toy"},
                {"env": "TOY_DATA", "name": "Data", "default": "/home/container"},
            ],
            "stop": stop,
            "readiness": {"consolePatterns": ["ready name="]},
        },
    }


def bare_toy_pod(name: str) -> dict[str, Any]:
    """The toy as the game Pod runs it (image, command, stdin, size, user), without an operator."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "own-stop"}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 10,
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True},
            "containers": [
                {
                    "name": "game",
                    "image": TOY_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["/usr/local/bin/toy"],
                    "env": [{"name": "TOY_DATA", "value": "/tmp"}],
                    "stdin": True,
                    "stdinOnce": False,
                    "resources": {"requests": TOY_RESOURCES, "limits": TOY_RESOURCES},
                }
            ],
        },
    }


class PodEnds:
    """Watches a namespace's Pods; records when each one's game container was first seen
    running and terminated (the kubelet's report, as the operator sees it)."""

    def __init__(self, api_client: Any, namespace: str, selector: str) -> None:
        self.core: Any = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.selector = selector
        self.running: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=self.selector,
                    timeout_seconds=30,
                ):
                    now = time.monotonic()
                    pod = event["object"]
                    for state in (pod.status.container_statuses or []) if pod.status else []:
                        with self._lock:
                            if state.state.running is not None:
                                self.running.setdefault(pod.metadata.name, now)
                            if state.state.terminated is not None or event["type"] == "DELETED":
                                self.ended.setdefault(pod.metadata.name, now)
                    if self._stop.is_set():
                        break
            except Exception as error:  # a dropped watch is re-opened (bounded by the stop)
                print(f"  (pod watch re-opened after {type(error).__name__})")
                time.sleep(0.5)
            finally:
                stream.stop()

    def wait(self, what: str, names: set[str], timeout: float) -> bool:
        table = self.running if what == "running" else self.ended
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if names <= set(table):
                    return True
            time.sleep(0.05)
        return False

    def times(self, what: str) -> dict[str, float]:
        with self._lock:
            return dict(self.running if what == "running" else self.ended)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=40)


def own_stop_seconds(api_client: Any, core: Any, namespace: str, count: int) -> float | None:
    """The games' own stop: `count` bare toys sent `stop` at once, until the last one ended."""
    names = [f"own-stop-{i:02d}" for i in range(count)]
    ends = PodEnds(api_client, namespace, "bench=own-stop")
    try:
        for name in names:
            core.create_namespaced_pod(namespace, bare_toy_pod(name))
        if not ends.wait("running", set(names), 180):
            print("  the bare toys did not all run within 180 s")
            return None
        # Running is not listening yet: wait for each toy's ready line before stopping it.
        deadline = time.monotonic() + 60
        for name in names:
            while "ready name=" not in str(
                core.read_namespaced_pod_log(name, namespace, container="game")
            ):
                if time.monotonic() > deadline:
                    print(f"  {name} never printed its ready line")
                    return None
                time.sleep(0.2)
        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=count) as pool:
            list(
                pool.map(
                    lambda name: write_stdin(api_client, namespace, name, "game", "stop\n"),
                    names,
                )
            )
        if not ends.wait("ended", set(names), 120):
            print("  the bare toys did not all end within 120 s")
            return None
        return max(ends.times("ended")[n] for n in names) - began
    finally:
        ends.close()
        core.delete_collection_namespaced_pod(namespace, label_selector="bench=own-stop")


def running_gameserver(name: str, namespace: str, blueprint: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GameServer",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "blueprint": blueprint,
            "variables": {"TOY_NAME": name},
            "resources": {**TOY_RESOURCES, "disk": "100Mi"},
            "exposure": {"type": "ClusterIP"},
            "ports": [{"name": "status", "port": 7777, "protocol": "TCP"}],
        },
    }


def deletion_run(api_client: Any, kubeconfig: Path, args: argparse.Namespace) -> None:
    """Deleting `args.running` running GameServers at once, next to the games' own stop."""
    core: Any = client.CoreV1Api(api_client)
    custom: Any = client.CustomObjectsApi(api_client)
    namespace = bench_namespace(core, "bench-deletion")
    blueprint = namespace
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "blueprints",
        toy_blueprint(blueprint, {"type": "Command", "command": "stop", "gracePeriodSeconds": 30}),
    )
    names = [f"running-{i:02d}" for i in range(args.running)]
    log: list[str] = []
    try:
        print(f"load average before: {load_average()}")
        own = own_stop_seconds(api_client, core, namespace, args.running)
        if own is None:
            return
        print(
            f"the games' own stop: {args.running} toys told `stop` at once, "
            f"all ended {own:.2f} s later"
        )
        with operator_process(kubeconfig, namespace, free_port(), log):
            create_all(
                args.threads,
                names,
                lambda name: custom.create_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    "gameservers",
                    running_gameserver(name, namespace, blueprint),
                ),
            )
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                items = custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, "gameservers"
                )["items"]
                running = [i for i in items if (i.get("status") or {}).get("state") == "Running"]
                if len(running) == len(names):
                    break
                time.sleep(1)
            else:
                print(f"  only {len(running)} of {len(names)} GameServers Running in time")
                return
            print(f"{len(names)} GameServers Running; load average {load_average()}")
            gone = GoneWatch(api_client, namespace)
            try:
                began = time.monotonic()
                create_all(
                    args.threads,
                    names,
                    lambda name: custom.delete_namespaced_custom_object(
                        GROUP, VERSION, namespace, "gameservers", name
                    ),
                )
                all_gone = gone.wait(set(names), args.timeout)
                times = gone.times()
            finally:
                gone.close()
            took = [times[n] - began for n in names if n in times]
            if not all_gone:
                print(f"  {len(names) - len(took)} of {len(names)} not deleted in time")
            if took:
                slowest = max(took)
                print(
                    f"deleted {len(took)} running GameServers at once in {slowest:.2f} s "
                    f"(first gone after {min(took):.2f} s, median {statistics.median(took):.2f} "
                    f"s): x{slowest / own:.2f} of the games' own stop (goal <= "
                    f"x{TARGET_DELETION_RATIO}); load average {load_average()}"
                )
        broken = [line for line in log if "Handshake status" in line]
        print(f"operator log: {len(broken)} failed API calls ('Handshake status')")
    finally:
        cleanup(custom, core, namespace, blueprint)


class GoneWatch:
    """Records when each GameServer of a namespace is deleted (a DELETED event)."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.gone: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    "gameservers",
                    timeout_seconds=30,
                ):
                    if event["type"] == "DELETED":
                        with self._lock:
                            self.gone.setdefault(
                                event["object"]["metadata"]["name"], time.monotonic()
                            )
                    if self._stop.is_set():
                        break
            except Exception as error:  # a dropped watch is re-opened (bounded by the stop)
                print(f"  (watch re-opened after {type(error).__name__})")
                time.sleep(0.5)
            finally:
                stream.stop()

    def wait(self, names: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if names <= set(self.gone):
                    return True
            time.sleep(0.05)
        return False

    def times(self) -> dict[str, float]:
        with self._lock:
            return dict(self.gone)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=40)


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def run(args: argparse.Namespace) -> None:
    api_client, kubeconfig = connect()
    # Typed as Any: the client's stubs disagree with the dict bodies it accepts.
    core: Any = client.CoreV1Api(api_client)
    custom: Any = client.CustomObjectsApi(api_client)
    ensure_crds(api_client)
    if args.running:
        deletion_run(api_client, kubeconfig, args)
    if args.only_deletion:
        return
    suffix = secrets.token_hex(3)
    namespace = f"bench-operator-{suffix}"
    blueprint = f"bench-operator-{suffix}"
    core.create_namespace(
        {"metadata": {"name": namespace, "labels": {"stellarstack.io/test": "bench"}}}
    )
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "blueprints",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Blueprint",
            "metadata": {"name": blueprint},
            "spec": {
                "displayName": "Bench",
                "images": [{"name": "Toy", "image": "localhost/stellarstack/toy:1"}],
                "startupCommands": [{"name": "Default", "command": "/usr/local/bin/toy"}],
                "stop": {"type": "Signal"},
            },
        },
    )
    port = free_port()
    total = 0
    rows: list[str] = []
    try:
        # Baseline first, in the same namespace, with the same client and threads.
        configmaps = [f"baseline-{i}" for i in range(max(args.batches))]
        began = time.monotonic()
        create_all(
            args.threads,
            configmaps,
            lambda name: core.create_namespaced_config_map(
                namespace, {"metadata": {"name": name}, "data": {"k": "v"}}
            ),
        )
        baseline_rate = len(configmaps) / (time.monotonic() - began)
        print(f"baseline: {len(configmaps)} ConfigMaps created at {baseline_rate:.1f}/s")
        core.delete_collection_namespaced_config_map(namespace)

        def create_gameserver(name: str) -> object:
            return custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "gameservers", gameserver(name, namespace, blueprint)
            )

        # The backlog: GameServers that exist before the operator starts (an operator restart
        # or outage). Their rate is the operator's own, not bounded by the API server's
        # admission of creates as the batches below are.
        backlog = [f"backlog-{i:05d}" for i in range(args.backlog)]
        create_all(args.threads, backlog, create_gameserver)
        total += len(backlog)
        seen = StoppedWatch(api_client, namespace)
        with operator_process(kubeconfig, namespace, port) as process:
            try:
                if backlog:
                    began = time.monotonic()
                    deadline = began + args.timeout
                    wanted = set(backlog)
                    while seen.count(wanted) < len(wanted) and time.monotonic() < deadline:
                        time.sleep(0.2)
                    took = max(seen.times().get(n, began) for n in backlog) - began
                    rss, hwm = rss_mb(process.pid)
                    print(
                        f"backlog: {seen.count(wanted)} of {len(backlog)} existing GameServers "
                        f"Stopped {took:.1f} s after the operator was up: "
                        f"{seen.count(wanted) / max(took, 0.001):.1f} GameServers/s; "
                        f"RSS {rss:.0f} MB (peak {hwm:.0f} MB)"
                    )
                for size in args.batches:
                    names = [f"gs-{total + i:05d}" for i in range(size)]
                    total += size
                    before = scrape(port)
                    started = create_all(args.threads, names, create_gameserver)
                    created_at = time.monotonic()
                    wanted = set(names)
                    deadline = time.monotonic() + args.timeout
                    while seen.count(wanted) < len(wanted) and time.monotonic() < deadline:
                        time.sleep(0.2)
                    times = seen.times()
                    done = [times[n] - started[n] for n in names if n in times]
                    if len(done) < len(names):
                        print(f"  {len(names) - len(done)} of {size} not Stopped in time")
                    if not done:
                        continue
                    span = max(times[n] for n in names if n in times) - min(started.values())
                    rate = len(done) / span
                    after = scrape(port)
                    requests = sum(
                        after.get(k, 0.0) - before.get(k, 0.0)
                        for k in after
                        if k.startswith("stellarstack_operator_api_requests_total")
                    )
                    kopf_requests = after.get(
                        "stellarstack_operator_api_requests_total{kopf}", 0.0
                    ) - before.get("stellarstack_operator_api_requests_total{kopf}", 0.0)
                    passes = after.get(
                        "stellarstack_operator_reconcile_duration_seconds_count", 0.0
                    ) - before.get("stellarstack_operator_reconcile_duration_seconds_count", 0.0)
                    rss, hwm = rss_mb(process.pid)
                    create_rate = size / (created_at - min(started.values()))
                    row = (
                        f"N={size:4d} (total {total:4d}): created at {create_rate:.1f}/s; "
                        f"latency p50 {statistics.median(done):.2f} s "
                        f"p99 {percentile(done, 0.99):.2f} s; "
                        f"{rate:.1f} GameServers/s (x{rate / baseline_rate:.2f} of the "
                        f"ConfigMap baseline); {requests / max(passes, 1):.1f} API requests per "
                        f"reconcile pass, {requests / len(names):.1f} per GameServer "
                        f"({kopf_requests / len(names):.1f} of them Kopf's); "
                        f"RSS {rss:.0f} MB (peak {hwm:.0f} MB)"
                    )
                    print(row)
                    rows.append(row)
                # Idle: every daemon's periodic look, with the whole fleet in place.
                before = scrape(port)
                time.sleep(args.idle)
                after = scrape(port)
                passes = after.get(
                    "stellarstack_operator_reconcile_duration_seconds_count", 0.0
                ) - before.get("stellarstack_operator_reconcile_duration_seconds_count", 0.0)
                rss, hwm = rss_mb(process.pid)
                print(
                    f"idle with {total} GameServers: {passes / args.idle:.1f} reconcile passes/s; "
                    f"RSS {rss:.0f} MB (peak {hwm:.0f} MB); target < {TARGET_RSS_MB:.0f} MB"
                )
                # Deletion through the operator's finalizer, bounded.
                began = time.monotonic()
                try:
                    custom.delete_collection_namespaced_custom_object(
                        GROUP, VERSION, namespace, "gameservers"
                    )
                except ApiException as error:
                    # A busy API server answers 504 while it goes on deleting: keep watching.
                    print(f"  delete collection: {error.status} {error.reason}; waiting anyway")
                deadline = time.monotonic() + args.timeout
                left = total
                while time.monotonic() < deadline:
                    left = len(
                        custom.list_namespaced_custom_object(
                            GROUP, VERSION, namespace, "gameservers"
                        )["items"]
                    )
                    if not left:
                        break
                    time.sleep(1)
                gone = total - left
                print(
                    f"deleted {gone} of {total} GameServers at "
                    f"{gone / (time.monotonic() - began):.1f}/s"
                )
            finally:
                seen.close()
        print(f"target: >= {TARGET_RATE:.0f} GameServers/s sustained")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"machine load average at the end: {load} on {os.cpu_count()} CPUs")
    finally:
        cleanup(custom, core, namespace, blueprint)


def cleanup(custom: Any, core: Any, namespace: str, blueprint: str) -> None:
    """Remove what is left (finalizers first: the operator is gone by now)."""
    with contextlib.suppress(ApiException):
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "gameservers")
        for item in items["items"]:
            with contextlib.suppress(ApiException):
                custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    "gameservers",
                    item["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )
    with contextlib.suppress(ApiException):
        core.delete_namespace(namespace)
    with contextlib.suppress(ApiException):
        custom.delete_cluster_custom_object(GROUP, VERSION, "blueprints", blueprint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batches",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[100, 500],
        help="GameServers created per batch, kept across batches (default 100,500)",
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=400,
        help="GameServers created before the operator starts (default 400: 1,000 in all)",
    )
    parser.add_argument(
        "--running",
        type=int,
        default=10,
        help="running GameServers deleted at once (default 10; 0 skips that part)",
    )
    parser.add_argument(
        "--only-deletion", action="store_true", help="only the deletion of running servers"
    )
    parser.add_argument("--threads", type=int, default=8, help="client threads creating objects")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per batch at most")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle measurement")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
