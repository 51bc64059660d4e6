"""The node's capacity read from real files: cgroup trees laid out as the kernel shows them
(v1, v2, a container without its own cgroup namespace) and this host itself."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from stellarstack.nodeproxy.capacity import measure_capacity, read_cpu_quotas


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _proc(tmp_path: Path, cgroup: str) -> Path:
    proc = tmp_path / "proc"
    _write(proc / "self" / "cgroup", cgroup)
    _write(proc / "meminfo", "MemTotal: 2048 kB\n")
    return proc


def test_cgroup_v2_quota_on_an_ancestor_limits_the_agent(tmp_path: Path) -> None:
    cgroups = tmp_path / "cgroup"
    _write(cgroups / "cgroup.controllers", "cpu memory pids\n")
    _write(cgroups / "machine.slice" / "cpu.max", "150000 100000\n")
    _write(cgroups / "machine.slice" / "agent.scope" / "cpu.max", "max 100000\n")
    proc = _proc(tmp_path, "0::/machine.slice/agent.scope\n")
    assert read_cpu_quotas(proc=proc, cgroups=cgroups) == [None, 1.5]


def test_cgroup_v1_quota_of_the_own_cgroup(tmp_path: Path) -> None:
    cgroups = tmp_path / "cgroup"
    own = cgroups / "cpu" / "lxc" / "node1"
    _write(own / "cpu.cfs_quota_us", "200000\n")
    _write(own / "cpu.cfs_period_us", "100000\n")
    _write(cgroups / "cpu" / "cpu.cfs_quota_us", "-1\n")
    _write(cgroups / "cpu" / "cpu.cfs_period_us", "100000\n")
    proc = _proc(tmp_path, "4:memory:/lxc/node1\n2:cpu,cpuacct:/lxc/node1\n0::/\n")
    assert read_cpu_quotas(proc=proc, cgroups=cgroups) == [2.0, None]


def test_a_container_sees_its_own_cgroup_at_the_mount_root(tmp_path: Path) -> None:
    # Without a cgroup namespace the path names the host's hierarchy, which is not mounted here.
    cgroups = tmp_path / "cgroup"
    _write(cgroups / "cpu" / "cpu.cfs_quota_us", "50000\n")
    _write(cgroups / "cpu" / "cpu.cfs_period_us", "100000\n")
    proc = _proc(tmp_path, "2:cpu,cpuacct:/docker/0123abcd\n")
    assert read_cpu_quotas(proc=proc, cgroups=cgroups) == [0.5]


def test_no_cgroup_information_means_no_quota(tmp_path: Path) -> None:
    assert read_cpu_quotas(proc=tmp_path / "none", cgroups=tmp_path / "cgroup") == []
    proc = _proc(tmp_path, "0::/\n")
    assert read_cpu_quotas(proc=proc, cgroups=tmp_path / "empty") == []


def test_an_unreadable_quota_is_an_error_not_a_guess(tmp_path: Path) -> None:
    cgroups = tmp_path / "cgroup"
    _write(cgroups / "cgroup.controllers", "cpu\n")
    _write(cgroups / "cpu.max", "lots 100000\n")
    proc = _proc(tmp_path, "0::/\n")
    with pytest.raises(ValueError, match=r"cpu\.max"):
        read_cpu_quotas(proc=proc, cgroups=cgroups)


def test_this_hosts_capacity(tmp_path: Path) -> None:
    capacity = measure_capacity(tmp_path)
    assert capacity.memory_bytes == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    disk = shutil.disk_usage(tmp_path)
    assert capacity.disk_bytes == disk.total
    assert abs(capacity.disk_free_bytes - disk.free) < 2**30
    assert 0 < capacity.cpu_millicores <= os.sysconf("SC_NPROCESSORS_ONLN") * 1000


def test_memory_comes_from_the_given_proc(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "0::/\n")
    assert measure_capacity(tmp_path, proc=proc).memory_bytes == 2048 * 1024
