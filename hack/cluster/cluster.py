#!/usr/bin/env python3
"""A single-node Kubernetes cluster for tests, made of real components on this machine.

    cluster.py up       build (once) and start etcd, containerd, the control plane, kubelet,
                        kube-proxy and the volume provisioner; wait for the node to be Ready
    cluster.py down     stop every process `up` started (by PID file) and remove the state
    cluster.py status   say what runs

Everything lives under ${STELLARSTACK_CLUSTER_DIR:-~/.cache/stellarstack/cluster}: PKI,
configs, etcd data, containerd root/state, kubelet root, logs and PID files. The kubeconfig
(context "stellarstack-test") is written to <cluster dir>/kubeconfig. The network is a bridge
this script makes (stellar0, 10.244.0.1/24); the API server and kubelet listen on that bridge's
address, every other endpoint on loopback. Standard library only; needs root (kubelet,
containerd and the bridge do). See docs/cluster.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = Path(os.environ.get("STELLARSTACK_CACHE", Path.home() / ".cache" / "stellarstack"))
DIR = Path(os.environ.get("STELLARSTACK_CLUSTER_DIR", CACHE / "cluster"))

CONTEXT = "stellarstack-test"
NODE = "stellarstack-test-node"
BRIDGE = "stellar0"
NODE_IP = "10.244.0.1"
POD_SUBNET = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/24"
SERVICE_IP = "10.96.0.1"  # the first address of SERVICE_CIDR: the "kubernetes" Service
API_PORT = 6443
ETCD_CLIENT = "http://127.0.0.1:12379"  # not 2379, so a system etcd never collides
ETCD_PEER = "http://127.0.0.1:12380"
STORAGE_CLASS = "stellarstack-local"
PAUSE_IMAGE = "localhost/stellarstack/pause:1"
FW_COMMENT = "stellarstack-test cluster"

PKI = DIR / "pki"
LOGS = DIR / "logs"
PIDS = DIR / "pids"
RUN = DIR / "run"
CONTAINERD_SOCK = RUN / "containerd" / "containerd.sock"
KUBECONFIG = DIR / "kubeconfig"
VOLUMES = DIR / "volumes"

# Start order; `down` stops in reverse. Each name has a PID file and a log.
COMPONENTS = [
    "etcd",
    "containerd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "provisioner",
]


def log(message: str) -> None:
    print(f"cluster: {message}", file=sys.stderr, flush=True)


def run(
    *args: str | Path, check: bool = True, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        check=check,
        text=True,
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.PIPE if quiet else None,
    )


def wait_for(what: str, probe: Callable[[], bool], timeout: float, logname: str = "") -> None:
    """Poll `probe` until it is true; on timeout show the component's log tail and fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
        time.sleep(0.25)
    tail = ""
    if logname and (LOGS / f"{logname}.log").exists():
        lines = (LOGS / f"{logname}.log").read_text(errors="replace").splitlines()[-25:]
        tail = "\n".join(lines)
    raise SystemExit(f"cluster: {what} not ready after {timeout:.0f}s\n{tail}")


# --- processes -------------------------------------------------------------------------------


def pid_of(name: str) -> int | None:
    """The PID from the component's PID file, if that process still runs the same program."""
    pidfile = PIDS / f"{name}.pid"
    try:
        pid, _, exe = pidfile.read_text().partition(" ")
        cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (OSError, ValueError):
        return None
    # The PID file records the program too, so a recycled PID is never signalled.
    return int(pid) if cmdline == exe.strip() else None


def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    if pid_of(name):
        return
    LOGS.mkdir(parents=True, exist_ok=True)
    PIDS.mkdir(parents=True, exist_ok=True)
    with (LOGS / f"{name}.log").open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Own session: outlives `make`, and a terminal's Ctrl-C never reaches it.
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=DIR,
        )
    (PIDS / f"{name}.pid").write_text(f"{proc.pid} {argv[0]}\n")


def stop(name: str, timeout: float = 15.0) -> None:
    pid = pid_of(name)
    began = time.monotonic()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_of(name) == pid and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_of(name) == pid:
            log(f"{name} ignored SIGTERM for {timeout:.0f}s; killing it")
            os.kill(pid, signal.SIGKILL)
            while pid_of(name) == pid:
                time.sleep(0.1)
        log(f"stopped {name} ({time.monotonic() - began:.1f}s)")
    (PIDS / f"{name}.pid").unlink(missing_ok=True)


# --- PKI -------------------------------------------------------------------------------------


def openssl(*args: str | Path) -> None:
    run("openssl", *args, quiet=True)


def make_cert(name: str, subject: str, sans: list[str] | None = None, server: bool = False) -> None:
    """A key and a certificate signed by the cluster CA (client, or server with SANs)."""
    key, crt = PKI / f"{name}.key", PKI / f"{name}.crt"
    if crt.exists():
        return
    openssl("genrsa", "-out", key, "2048")
    openssl("req", "-new", "-key", key, "-subj", subject, "-out", PKI / f"{name}.csr")
    usage = "serverAuth" if server else "clientAuth"
    ext = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={usage}",
    ]
    if sans:
        ext.append("subjectAltName=" + ",".join(sans))
    extfile = PKI / f"{name}.ext"
    extfile.write_text("\n".join(ext) + "\n")
    openssl(
        "x509", "-req", "-in", PKI / f"{name}.csr", "-CA", PKI / "ca.crt", "-CAkey",
        PKI / "ca.key", "-CAcreateserial", "-days", "3650", "-sha256", "-extfile", extfile,
        "-out", crt,
    )  # fmt: skip
    (PKI / f"{name}.csr").unlink()
    extfile.unlink()


def make_pki() -> None:
    PKI.mkdir(parents=True, exist_ok=True)
    os.chmod(PKI, 0o700)
    if not (PKI / "ca.crt").exists():
        openssl("genrsa", "-out", PKI / "ca.key", "2048")
        openssl(
            "req", "-x509", "-new", "-key", PKI / "ca.key", "-subj", "/CN=stellarstack-test-ca",
            "-days", "3650", "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-out", PKI / "ca.crt",
        )  # fmt: skip
    api_sans = [
        f"IP:{NODE_IP}", "IP:127.0.0.1", f"IP:{SERVICE_IP}", "DNS:localhost", "DNS:kubernetes",
        "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
    ]  # fmt: skip
    make_cert("apiserver", "/CN=kube-apiserver", api_sans, server=True)
    make_cert("kubelet-serving", f"/CN={NODE}", [f"IP:{NODE_IP}", f"DNS:{NODE}"], server=True)
    make_cert("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client")
    make_cert("admin", "/O=system:masters/CN=stellarstack-test-admin")
    make_cert("controller-manager", "/CN=system:kube-controller-manager")
    make_cert("scheduler", "/CN=system:kube-scheduler")
    make_cert("kubelet", f"/O=system:nodes/CN=system:node:{NODE}")
    make_cert("kube-proxy", "/CN=system:kube-proxy")
    if not (PKI / "sa.key").exists():
        openssl("genrsa", "-out", PKI / "sa.key", "2048")
        openssl("rsa", "-in", PKI / "sa.key", "-pubout", "-out", PKI / "sa.pub")


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, user: str, cert: str) -> None:
    """A self-contained kubeconfig (certificates inlined) with the test-cluster context."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {
                    "server": f"https://{NODE_IP}:{API_PORT}",
                    "certificate-authority-data": b64(PKI / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(PKI / f"{cert}.crt"),
                    "client-key-data": b64(PKI / f"{cert}.key"),
                },
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    }
    # JSON is valid YAML, so every kubeconfig reader accepts it.
    path.write_text(json.dumps(config, indent=2) + "\n")
    os.chmod(path, 0o600)


# --- API access (standard library only) ------------------------------------------------------


def api_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    context.load_cert_chain(str(PKI / "admin.crt"), str(PKI / "admin.key"))
    return context


def api(method: str, path: str, body: object | None = None, timeout: float = 10.0) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"https://{NODE_IP}:{API_PORT}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, context=api_context(), timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw.strip().startswith(b"{") else raw.decode()


def api_ready() -> bool:
    return api("GET", "/readyz") == "ok"


def node_ready() -> bool:
    node = api("GET", f"/api/v1/nodes/{NODE}")
    assert isinstance(node, dict)
    conditions = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def apply(path: str, obj: dict[str, object]) -> None:
    """Create an object unless it exists (the cluster's own fixtures never change)."""
    try:
        api("POST", path, obj)
    except urllib.error.HTTPError as error:
        if error.code != 409:
            raise


# --- configuration ---------------------------------------------------------------------------


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if not found:
        raise SystemExit(f"cluster: {name} not found; see docs/cluster.md for the packages")
    return found


def cni_bin_dir() -> str:
    # Debian's containernetworking-plugins installs to /usr/lib/cni; upstream uses /opt/cni/bin.
    for candidate in ("/usr/lib/cni", "/opt/cni/bin"):
        if Path(candidate, "bridge").exists():
            return candidate
    raise SystemExit("cluster: no CNI plugins (Debian package containernetworking-plugins)")


def write_configs() -> None:
    for sub in ("etc", "cni/net.d", "cni/ipam", "containerd/root", "kubelet", "volumes"):
        (DIR / sub).mkdir(parents=True, exist_ok=True)
    (RUN / "containerd").mkdir(parents=True, exist_ok=True)
    write_kubeconfig(KUBECONFIG, "stellarstack-test-admin", "admin")
    for comp in ("controller-manager", "scheduler", "kubelet", "kube-proxy"):
        write_kubeconfig(DIR / "etc" / f"{comp}.kubeconfig", comp, comp)

    # containerd: its own root, state, socket and plugin dirs, so it never meets Docker's
    # containerd or a system one. Unused snapshotters are disabled to keep the log quiet.
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    (DIR / "etc" / "containerd.toml").write_text(
        f"""version = 2
root = "{DIR / "containerd/root"}"
state = "{RUN / "containerd"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{CONTAINERD_SOCK}"
[ttrpc]
  address = "{CONTAINERD_SOCK}.ttrpc"
[debug]
  address = "{RUN / "containerd/debug.sock"}"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{DIR / "containerd/opt"}"
[{cri}]
  # The pause image is built locally (hack/images); nothing can be pulled here.
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  # Lowering oom_score_adj needs CAP_SYS_RESOURCE, which sandboxed machines (CI VMs) may not
  # grant even to root; runc then fails with "can't get final child's PID from pipe". Clamp
  # the sandbox's score to containerd's own instead.
  restrict_oom_score_adj = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        # cgroup v1 with the cgroupfs driver, matching the kubelet (no systemd here).
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{cni_bin_dir()}"
    conf_dir = "{DIR / "cni/net.d"}"
"""
    )

    # The pod network: one bridge on this node, host-local addresses kept in our own dir,
    # portmap for hostPort. No masquerade: pods talk to the node and to each other only.
    conflist = {
        "cniVersion": "1.0.0",
        "name": "stellarstack",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(DIR / "cni/ipam"),
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (DIR / "cni/net.d/10-stellarstack.conflist").write_text(json.dumps(conflist, indent=2))

    # kubelet: cgroup v1 + cgroupfs; failCgroupV1 false is what lets a v1.31+ kubelet run on
    # cgroup v1 at all. Images can never be pulled again, so image GC must never delete them,
    # and eviction thresholds are low so a busy CI disk does not evict test pods.
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(PKI / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(PKI / "kubelet-serving.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(PKI / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCK}",
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "podCIDR": POD_SUBNET,
        "clusterDomain": "cluster.local",
        "resolvConf": "/etc/resolv.conf",
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "serializeImagePulls": False,
        "maxPods": 110,
        "registerNode": True,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "shutdownGracePeriod": "0s",
    }
    (DIR / "etc" / "kubelet.yaml").write_text(json.dumps(kubelet, indent=2))


# --- network ---------------------------------------------------------------------------------


def ensure_bridge() -> None:
    """The pod bridge exists before the API server, which listens on its address."""
    ip = tool("ip")
    if run(ip, "link", "show", BRIDGE, check=False, quiet=True).returncode != 0:
        run(ip, "link", "add", BRIDGE, "type", "bridge")
    addrs = run(ip, "-o", "addr", "show", "dev", BRIDGE, quiet=True).stdout
    if f"{NODE_IP}/24" not in addrs:
        run(ip, "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
    run(ip, "link", "set", BRIDGE, "up")
    # Routed pod traffic (pod -> Service -> pod) and bridged traffic seen by iptables
    # (br_netfilter) must pass FORWARD, whose policy Docker sets to DROP.
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
    nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    if nf.exists():
        nf.write_text("1")
    iptables = tool("iptables")
    for rule in (["-s", CLUSTER_CIDR], ["-d", CLUSTER_CIDR]):
        spec = ["FORWARD", *rule, "-m", "comment", "--comment", FW_COMMENT, "-j", "ACCEPT"]
        if run(iptables, "-C", *spec, check=False, quiet=True).returncode != 0:
            run(iptables, "-I", *spec)


# Chains the kubelet itself makes (its canary and the localnet firewall), per table.
KUBELET_CHAINS = {
    "filter": ["KUBE-FIREWALL", "KUBE-KUBELET-CANARY"],
    "nat": ["KUBE-KUBELET-CANARY"],
    "mangle": ["KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"],
}


def remove_kubelet_chains() -> None:
    for command in ("iptables", "ip6tables"):
        binary = shutil.which(command)
        if not binary:
            continue
        for parent in ("INPUT", "OUTPUT"):
            while (
                run(binary, "-D", parent, "-j", "KUBE-FIREWALL", check=False, quiet=True).returncode
                == 0
            ):
                pass
        for table, chains in KUBELET_CHAINS.items():
            for chain in chains:
                run(binary, "-t", table, "-F", chain, check=False, quiet=True)
                run(binary, "-t", table, "-X", chain, check=False, quiet=True)


def remove_portmap_chains(iptables: str) -> None:
    """The portmap plugin's shared nat chains, once no pod mapping is left in them (another
    CNI user on the machine would still have rules there, and then they stay)."""
    dnat = run(iptables, "-t", "nat", "-S", "CNI-HOSTPORT-DNAT", check=False, quiet=True)
    if dnat.returncode != 0 or len(dnat.stdout.strip().splitlines()) > 1:
        return
    jumps = [
        ("PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"]),
        ("OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"]),
        (
            "POSTROUTING",
            ["-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j",
             "CNI-HOSTPORT-MASQ"],
        ),
    ]  # fmt: skip
    for chain, spec in jumps:
        while (
            run(iptables, "-t", "nat", "-D", chain, *spec, check=False, quiet=True).returncode == 0
        ):
            pass
    for chain in ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"):
        run(iptables, "-t", "nat", "-F", chain, check=False, quiet=True)
        run(iptables, "-t", "nat", "-X", chain, check=False, quiet=True)


def remove_network() -> None:
    ip, iptables = shutil.which("ip"), shutil.which("iptables")
    if ip and run(ip, "link", "show", BRIDGE, check=False, quiet=True).returncode == 0:
        # Pod network namespaces still attached to our bridge (a pod that was not torn down
        # through CRI) are ours: delete them, then the bridge.
        links = run(ip, "-o", "-d", "link", "show", "master", BRIDGE, quiet=True).stdout
        for word in links.split("link-netns ")[1:]:
            run(ip, "netns", "delete", word.split()[0], check=False, quiet=True)
        run(ip, "link", "delete", BRIDGE, check=False, quiet=True)
    if iptables:
        remove_portmap_chains(iptables)
        for rule in (["-s", CLUSTER_CIDR], ["-d", CLUSTER_CIDR]):
            spec = ["FORWARD", *rule, "-m", "comment", "--comment", FW_COMMENT, "-j", "ACCEPT"]
            while run(iptables, "-D", *spec, check=False, quiet=True).returncode == 0:
                pass


# --- components ------------------------------------------------------------------------------


def k8s_bin() -> Path:
    """Build the Kubernetes binaries unless cached; build-k8s.sh prints their directory."""
    result = subprocess.run(
        ["bash", str(HERE / "build-k8s.sh")], check=True, text=True, stdout=subprocess.PIPE
    )
    return Path(result.stdout.strip().splitlines()[-1])


def start_all(bindir: Path) -> None:
    pki, etc = PKI, DIR / "etc"
    start(
        "etcd",
        [
            tool("etcd"), "--name", "stellarstack-test", "--data-dir", str(DIR / "etcd"),
            "--listen-client-urls", ETCD_CLIENT, "--advertise-client-urls", ETCD_CLIENT,
            "--listen-peer-urls", ETCD_PEER, "--initial-advertise-peer-urls", ETCD_PEER,
            "--initial-cluster", f"stellarstack-test={ETCD_PEER}",
            "--listen-metrics-urls", "http://127.0.0.1:12381",
        ],
    )  # fmt: skip
    start(
        "containerd",
        [tool("containerd"), "--config", str(etc / "containerd.toml")],
        # The shims find runc through PATH; Debian puts it in /usr/sbin.
        env={"PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"},
    )
    wait_for(
        "containerd",
        lambda: (
            run("ctr", "--address", CONTAINERD_SOCK, "version", check=False, quiet=True).returncode
            == 0
        ),
        30,
        "containerd",
    )
    # Before the kubelet starts, so its first node status already lists the images (it
    # re-reports them only every few minutes when nothing else changes).
    import_images()
    wait_for("etcd", lambda: urlopen_ok(f"{ETCD_CLIENT}/health"), 30, "etcd")
    start(
        "kube-apiserver",
        [
            str(bindir / "kube-apiserver"),
            f"--etcd-servers={ETCD_CLIENT}",
            f"--bind-address={NODE_IP}",
            f"--advertise-address={NODE_IP}",
            f"--secure-port={API_PORT}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-node-port-range=30000-32767",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            "--profiling=false",
        ],
    )
    wait_for("kube-apiserver", api_ready, 90, "kube-apiserver")
    common = [
        f"--authentication-kubeconfig={etc}/{{0}}.kubeconfig",
        f"--authorization-kubeconfig={etc}/{{0}}.kubeconfig",
        f"--kubeconfig={etc}/{{0}}.kubeconfig",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        "--profiling=false",
    ]
    start(
        "kube-controller-manager",
        [
            str(bindir / "kube-controller-manager"),
            *(flag.format("controller-manager") for flag in common),
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--allocate-node-cidrs=true",
            f"--cluster-cidr={CLUSTER_CIDR}",
            "--node-cidr-mask-size=24",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Tests create and delete quickly; short sync periods make GC and volume
            # binding visible within seconds.
            "--pvclaimbinder-sync-period=2s",
        ],
    )
    start(
        "kube-scheduler",
        [str(bindir / "kube-scheduler"), *(flag.format("scheduler") for flag in common)],
    )
    start(
        "kubelet",
        [
            str(bindir / "kubelet"),
            f"--config={etc / 'kubelet.yaml'}",
            f"--kubeconfig={etc / 'kubelet.kubeconfig'}",
            f"--root-dir={DIR / 'kubelet'}",
            f"--cert-dir={DIR / 'kubelet/pki'}",
            f"--hostname-override={NODE}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ],
        env={"PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"},
    )
    start(
        "kube-proxy",
        [
            str(bindir / "kube-proxy"),
            f"--kubeconfig={etc / 'kube-proxy.kubeconfig'}",
            f"--hostname-override={NODE}",
            "--proxy-mode=iptables",
            f"--cluster-cidr={CLUSTER_CIDR}",
            # NodePorts only on the cluster's bridge, never on the machine's own interfaces.
            f"--nodeport-addresses={NODE_IP}/32",
            "--metrics-bind-address=127.0.0.1:10249",
            "--healthz-bind-address=127.0.0.1:10256",
            # Leave the host's conntrack sysctls alone.
            "--conntrack-max-per-core=0",
        ],
        env={"PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"},
    )
    start(
        "provisioner",
        [
            sys.executable,
            str(HERE / "provisioner.py"),
            "--kubeconfig-dir",
            str(DIR),
            "--volumes",
            str(VOLUMES),
            "--storage-class",
            STORAGE_CLASS,
        ],
    )


def urlopen_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def import_images() -> None:
    """Import the cached image archives; the pause image is built here if missing."""
    run("bash", REPO / "hack/images/build.sh", "--no-load", "pause")
    archives = sorted(str(p) for p in (CACHE / "images").glob("*.tar"))
    run("bash", REPO / "hack/images/load.sh", *archives)


def create_cluster_objects() -> None:
    apply(
        "/apis/storage.k8s.io/v1/storageclasses",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            # Served by hack/cluster/provisioner.py: a directory per claim on the node.
            "provisioner": "stellarstack.io/local-dir",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
    )


def usage() -> str:
    return (
        f"cluster: up. Use it with\n"
        f"  export KUBECONFIG={KUBECONFIG}\n"
        f"  kubectl get nodes\n"
        f"context {CONTEXT}, node {NODE} ({NODE_IP}), pods {POD_SUBNET}, "
        f"services {SERVICE_CIDR}, storage class {STORAGE_CLASS}; `make cluster-down` removes it."
    )


def all_running() -> bool:
    return all(pid_of(name) for name in COMPONENTS)


def cmd_up(_: argparse.Namespace) -> None:
    if os.geteuid() != 0:
        raise SystemExit("cluster: needs root (kubelet, containerd and the pod bridge do)")
    if all_running() and KUBECONFIG.exists():
        try:
            if api_ready() and node_ready():
                log(f"already up (context {CONTEXT})")
                print(usage())
                return
        except (OSError, ValueError):
            pass
    started = time.monotonic()
    bindir = k8s_bin()
    DIR.mkdir(parents=True, exist_ok=True)
    make_pki()
    write_configs()
    ensure_bridge()
    start_all(bindir)
    create_cluster_objects()
    wait_for(f"node {NODE}", node_ready, 120, "kubelet")
    log(f"ready in {time.monotonic() - started:.1f}s")
    print(usage())


def cmd_down(_: argparse.Namespace) -> None:
    # Stop the controllers first, so nothing recreates pods, then let the kubelet tear the
    # pods down through CRI (which releases their network namespaces and portmap rules).
    for name in ("provisioner", "kube-controller-manager", "kube-scheduler"):
        stop(name)
    if pid_of("kube-apiserver") and pid_of("kubelet") and KUBECONFIG.exists():
        try:
            delete_all_pods()
        except (OSError, ValueError) as error:
            log(f"could not delete pods through the API ({error}); stopping them directly")
    for name in ("kubelet", "kube-proxy", "kube-apiserver", "etcd"):
        stop(name)
    kill_leftover_containers()
    stop("containerd")
    bindir = CACHE / "k8s"
    proxies = sorted(bindir.glob("*/bin/kube-proxy"))
    if proxies and shutil.which("iptables"):
        # Removes the KUBE-* rules kube-proxy made.
        run(proxies[-1], "--cleanup", check=False, quiet=True)
    remove_kubelet_chains()
    remove_network()
    unmount_under(DIR)
    if DIR.exists():
        shutil.rmtree(DIR)
    log(f"down; removed {DIR}")


def delete_all_pods() -> None:
    pods = api("GET", "/api/v1/pods")
    assert isinstance(pods, dict)
    for pod in pods.get("items", []):
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        try:
            api("DELETE", path, {"gracePeriodSeconds": 1})
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
    sock = str(CONTAINERD_SOCK)

    def no_sandboxes() -> bool:
        out = run("ctr", "--address", sock, "-n", "k8s.io", "tasks", "ls", "-q", quiet=True)
        return not out.stdout.strip()

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not no_sandboxes():
        time.sleep(0.5)


def kill_leftover_containers() -> None:
    """Tasks still alive (kubelet gone first) are killed so their shims exit."""
    if not CONTAINERD_SOCK.exists() or not pid_of("containerd"):
        return
    ctr = ["ctr", "--address", str(CONTAINERD_SOCK), "-n", "k8s.io"]
    tasks = run(*ctr, "tasks", "ls", "-q", check=False, quiet=True).stdout.split()
    for task in tasks:
        run(*ctr, "tasks", "kill", "-s", "SIGKILL", task, check=False, quiet=True)
    for task in tasks:
        run(*ctr, "tasks", "delete", "-f", task, check=False, quiet=True)


def unmount_under(root: Path) -> None:
    """Unmount whatever kubelet and containerd left mounted below our directory, deepest first."""
    if not root.exists():
        return
    prefix = str(root.resolve()) + "/"
    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].encode().decode("unicode_escape")
        if target.startswith(prefix):
            mounts.append(target)
    for target in sorted(mounts, key=len, reverse=True):
        run("umount", "-l", target, check=False, quiet=True)


def cmd_status(_: argparse.Namespace) -> None:
    for name in COMPONENTS:
        pid = pid_of(name)
        print(f"{name:24} {'running, pid ' + str(pid) if pid else 'stopped'}")
    if KUBECONFIG.exists() and pid_of("kube-apiserver"):
        try:
            print(f"node {NODE} ready: {node_ready()}")
        except (OSError, ValueError) as error:
            print(f"API not answering: {error}")
        print(f"KUBECONFIG={KUBECONFIG}")


def cmd_kubeconfig(_: argparse.Namespace) -> None:
    print(KUBECONFIG)


def main() -> None:
    # `cluster.py status | head` should end quietly, like any other command-line tool.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up").set_defaults(func=cmd_up)
    sub.add_parser("down").set_defaults(func=cmd_down)
    sub.add_parser("status").set_defaults(func=cmd_status)
    sub.add_parser("kubeconfig").set_defaults(func=cmd_kubeconfig)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
