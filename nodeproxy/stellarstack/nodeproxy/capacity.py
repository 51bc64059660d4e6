"""What this node can give its game servers (memory, disk, CPU) and what its GameServers ask for.

The parsers and sums are pure (text or numbers in, figures out); `measure_capacity` is the one
function that reads `/proc`, the cgroup filesystem and `statvfs`.

- Memory is `MemTotal` of `/proc/meminfo` (in a system container, lxcfs already shows its own
  limit there).
- Disk is the size and the free space (for unprivileged users) of the filesystem holding the
  data directory: that is where every server's volume lives.
- CPU is the CPUs this process may run on, times 1000, lowered to the cgroup CPU quota when
  one applies to the agent or any cgroup above it. Game server containers are not in the
  agent's cgroup, so this only matters when the whole host is itself a limited container
  (LXC, a nested engine): then its quota, not the hardware's core count, is what there is.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final, Protocol

from stellarstack.api.gameserver import GameServer
from stellarstack.api.quantity import byte_count, cpu_millicores

CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
PROC_ROOT: Final = Path("/proc")


@dataclass(frozen=True)
class Capacity:
    """What the node has in all."""

    memory_bytes: int
    disk_bytes: int
    disk_free_bytes: int
    cpu_millicores: int


@dataclass(frozen=True)
class Allocated:
    """What the node's GameServers are given between them (their resource limits)."""

    memory_bytes: int
    disk_bytes: int
    cpu_millicores: int
    servers: int


class FilesystemStats(Protocol):
    """The fields of `os.statvfs_result` that disk space is made of."""

    @property
    def f_frsize(self) -> int: ...
    @property
    def f_blocks(self) -> int: ...
    @property
    def f_bavail(self) -> int: ...


def parse_meminfo_total(text: str) -> int:
    """Bytes of `MemTotal` in the text of `/proc/meminfo`."""
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.strip() != "MemTotal":
            continue
        fields = rest.split()
        if not fields or not fields[0].isdigit():
            raise ValueError(f"/proc/meminfo: unreadable MemTotal line {line!r}")
        unit = fields[1] if len(fields) > 1 else ""
        if unit not in ("kB", ""):
            raise ValueError(f"/proc/meminfo: unexpected MemTotal unit {unit!r}")
        return int(fields[0]) * (1024 if unit == "kB" else 1)
    raise ValueError("/proc/meminfo: no MemTotal line")


def disk_space(stats: FilesystemStats) -> tuple[int, int]:
    """(size, free) in bytes of a filesystem from its `statvfs`; free is what unprivileged
    users may still write (`f_bavail`), as `df` and `shutil.disk_usage` report it."""
    return stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """Controller -> cgroup path from `/proc/<pid>/cgroup`. cgroup v1 lines are
    `4:cpu,cpuacct:/path` (one key per controller); the v2 line `0::/path` gets the key `""`."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[""] = path
            continue
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def parse_cpu_max(text: str) -> float | None:
    """Cores allowed by a cgroup v2 `cpu.max` (`"200000 100000"` is 2.0); None for `max`."""
    fields = text.split()
    if not fields or fields[0] == "max":
        return None
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        raise ValueError(f"cpu.max: unreadable {text.strip()!r}")
    quota, period = int(fields[0]), int(fields[1])
    if period <= 0:
        raise ValueError(f"cpu.max: period must be positive in {text.strip()!r}")
    return quota / period


def parse_cfs_quota(quota_text: str, period_text: str) -> float | None:
    """Cores allowed by cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`; None for `-1`."""
    quota, period = int(quota_text.strip()), int(period_text.strip())
    if quota < 0:
        return None
    if period <= 0:
        raise ValueError(f"cpu.cfs_period_us must be positive, not {period}")
    return quota / period


def cgroup_directories(mount: Path, path: str) -> list[Path]:
    """The directories of cgroup `path` and every cgroup above it, under `mount`, innermost
    first: a quota on any ancestor limits this process too. When the path is not visible
    under the mount (a container without its own cgroup namespace sees its cgroup at the
    mount root), the names that do not exist are simply not there to read."""
    relative = PurePosixPath(path if path.startswith("/") else "/" + path)
    chain = [relative, *relative.parents]
    return [mount / str(part).lstrip("/") for part in chain]


def effective_cpu_millicores(cpus: int, quotas: Iterable[float | None]) -> int:
    """Millicores this process can use: `cpus` x 1000, or the smallest cgroup quota when that
    is lower (rounded down: the node must not promise a fraction it cannot give)."""
    cores = float(max(cpus, 0))
    for quota in quotas:
        if quota is not None and quota < cores:
            cores = quota
    return math.floor(cores * 1000)


def compute_allocated(gameservers: Iterable[GameServer]) -> Allocated:
    """The sum of the resource limits of `gameservers`."""
    memory = disk = cpu = count = 0
    for gameserver in gameservers:
        resources = gameserver.spec.resources
        memory += byte_count(resources.memory)
        disk += byte_count(resources.disk)
        cpu += cpu_millicores(resources.cpu)
        count += 1
    return Allocated(memory_bytes=memory, disk_bytes=disk, cpu_millicores=cpu, servers=count)


# --- reading the host -----------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # absent controller or file, or not readable: no limit known there
        return None


def read_cpu_quotas(*, proc: Path = PROC_ROOT, cgroups: Path = CGROUP_ROOT) -> list[float | None]:
    """The CPU quota (in cores, None for none) of this process's cgroup and each one above."""
    own = _read(proc / "self" / "cgroup")
    if own is None:
        return []
    paths = parse_proc_cgroup(own)
    quotas: list[float | None] = []
    if (cgroups / "cgroup.controllers").exists() and "" in paths:  # cgroup v2
        for directory in cgroup_directories(cgroups, paths[""]):
            text = _read(directory / "cpu.max")
            if text is not None:
                quotas.append(parse_cpu_max(text))
    elif "cpu" in paths:  # cgroup v1
        for directory in cgroup_directories(cgroups / "cpu", paths["cpu"]):
            quota = _read(directory / "cpu.cfs_quota_us")
            period = _read(directory / "cpu.cfs_period_us")
            if quota is not None and period is not None:
                quotas.append(parse_cfs_quota(quota, period))
    return quotas


def measure_capacity(data_dir: Path, *, proc: Path = PROC_ROOT) -> Capacity:
    """Memory, disk (of `data_dir`'s filesystem) and CPU of this host as the agent sees it."""
    memory = parse_meminfo_total((proc / "meminfo").read_text())
    disk, free = disk_space(os.statvfs(data_dir))
    cpus = len(os.sched_getaffinity(0))
    return Capacity(
        memory_bytes=memory,
        disk_bytes=disk,
        disk_free_bytes=free,
        cpu_millicores=effective_cpu_millicores(cpus, read_cpu_quotas(proc=proc)),
    )
