"""Pure capacity rules of the node agent: /proc/meminfo, statvfs, /proc/self/cgroup, cgroup CPU
quotas (v1 and v2), the effective millicores and the sum of what GameServers are given."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from stellarstack.api.gameserver import GameServer
from stellarstack.nodeproxy.capacity import (
    Allocated,
    cgroup_directories,
    compute_allocated,
    disk_space,
    effective_cpu_millicores,
    parse_cfs_quota,
    parse_cpu_max,
    parse_meminfo_total,
    parse_proc_cgroup,
)

MEMINFO = """MemTotal:       24683772 kB
MemFree:         1633728 kB
MemAvailable:   20134284 kB
HugePages_Total:       0
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MEMINFO, 24683772 * 1024),
        ("MemFree: 1 kB\nMemTotal: 2048 kB\n", 2048 * 1024),
        ("MemTotal:\t\t16 kB", 16 * 1024),
        ("MemTotal: 4096\n", 4096),
    ],
)
def test_meminfo_total(text: str, expected: int) -> None:
    assert parse_meminfo_total(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no MemTotal"),
        ("MemFree: 1 kB\n", "no MemTotal"),
        ("MemTotal: lots kB\n", "unreadable"),
        ("MemTotal:\n", "unreadable"),
        ("MemTotal: 1 MB\n", "unit"),
    ],
)
def test_meminfo_total_refuses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_meminfo_total(text)


@pytest.mark.parametrize(
    ("frsize", "blocks", "bavail", "expected"),
    [
        (4096, 1000, 250, (4096_000, 1_024_000)),
        (1024, 0, 0, (0, 0)),
        (512, 7, 7, (3584, 3584)),
    ],
)
def test_disk_space(frsize: int, blocks: int, bavail: int, expected: tuple[int, int]) -> None:
    stats = SimpleNamespace(f_frsize=frsize, f_blocks=blocks, f_bavail=bavail, f_bfree=blocks)
    assert disk_space(stats) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0::/\n", {"": "/"}),
        ("0::/user.slice/session-1.scope\n", {"": "/user.slice/session-1.scope"}),
        (
            "9:name=systemd:/\n4:memory:/x/y\n2:cpu,cpuacct:/docker/abc\n0::/\n",
            {
                "name=systemd": "/",
                "memory": "/x/y",
                "cpu": "/docker/abc",
                "cpuacct": "/docker/abc",
                "": "/",
            },
        ),
        ("garbage\n\n1:cpu:/a:b\n", {"cpu": "/a:b"}),
    ],
)
def test_proc_cgroup(text: str, expected: dict[str, str]) -> None:
    assert parse_proc_cgroup(text) == expected


@pytest.mark.parametrize(
    ("text", "cores"),
    [
        ("max 100000\n", None),
        ("max\n", None),
        ("", None),  # an empty file sets no limit
        ("200000 100000\n", 2.0),
        ("50000 100000", 0.5),
        ("150000 100000", 1.5),
    ],
)
def test_cpu_max(text: str, cores: float | None) -> None:
    assert parse_cpu_max(text) == cores


@pytest.mark.parametrize("text", ["-1 100000", "100000 0", "a b", "100000"])
def test_cpu_max_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"cpu\.max"):
        parse_cpu_max(text)


@pytest.mark.parametrize(
    ("quota", "period", "cores"),
    [
        ("-1\n", "100000\n", None),
        ("100000\n", "100000\n", 1.0),
        ("250000", "100000", 2.5),
        ("50000", "100000", 0.5),
    ],
)
def test_cfs_quota(quota: str, period: str, cores: float | None) -> None:
    assert parse_cfs_quota(quota, period) == cores


def test_cfs_quota_refuses_a_zero_period() -> None:
    with pytest.raises(ValueError, match="period"):
        parse_cfs_quota("100000", "0")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ["/sys/fs/cgroup/cpu"]),
        ("/a", ["/sys/fs/cgroup/cpu/a", "/sys/fs/cgroup/cpu"]),
        (
            "/docker/abc",
            ["/sys/fs/cgroup/cpu/docker/abc", "/sys/fs/cgroup/cpu/docker", "/sys/fs/cgroup/cpu"],
        ),
        ("a/b", ["/sys/fs/cgroup/cpu/a/b", "/sys/fs/cgroup/cpu/a", "/sys/fs/cgroup/cpu"]),
    ],
)
def test_cgroup_directories_innermost_first(path: str, expected: list[str]) -> None:
    assert [str(p) for p in cgroup_directories(Path("/sys/fs/cgroup/cpu"), path)] == expected


@pytest.mark.parametrize(
    ("cpus", "quotas", "millicores"),
    [
        (2, [], 2000),
        (2, [None, None], 2000),
        (8, [None, 2.0], 2000),
        (8, [4.0, 1.5, None], 1500),
        (2, [4.0], 2000),  # a quota above the CPUs there are gives no more
        (4, [0.3333], 333),  # rounded down
        (1, [0.0005], 0),
        (0, [], 0),
    ],
)
def test_effective_cpu_millicores(cpus: int, quotas: list[float | None], millicores: int) -> None:
    assert effective_cpu_millicores(cpus, quotas) == millicores


def _gameserver(name: str, **resources: Any) -> GameServer:
    return GameServer.model_validate(
        {
            "kind": "GameServer",
            "metadata": {"name": name, "namespace": "n"},
            "spec": {"blueprint": "toy", "resources": resources},
        }
    )


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        ([], Allocated(0, 0, 0, 0)),
        (
            [_gameserver("a", cpu="500m", memory="128Mi", disk="1Gi")],
            Allocated(128 * 2**20, 2**30, 500, 1),
        ),
        (
            [
                _gameserver("a", cpu="500m", memory="128Mi", disk="1Gi"),
                _gameserver("b", cpu="1.5", memory="1Gi", disk="10G"),
                _gameserver("c", cpu=2, memory="512Mi", disk="512Mi"),
            ],
            Allocated(
                128 * 2**20 + 2**30 + 512 * 2**20,
                2**30 + 10 * 10**9 + 512 * 2**20,
                500 + 1500 + 2000,
                3,
            ),
        ),
    ],
)
def test_allocated_sums_the_limits(servers: list[GameServer], expected: Allocated) -> None:
    assert compute_allocated(servers) == expected
