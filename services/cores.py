"""How many CPU cores this process may use: its CPU affinity, and its cgroup's CPU quota (a
container's `--cpus`, a Kubernetes CPU limit), whichever is smaller."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cores(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path | None = None) -> int:
    """At least 1; a quota of 1.5 cores counts as 2, since DuckDB's threads share it."""
    cores = len(os.sched_getaffinity(0))
    quota = cgroup_quota(cgroup_root, proc_cgroup or Path("/proc/self/cgroup"))
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def cgroup_quota(root: Path, proc_cgroup: Path) -> float | None:
    """The CPU quota in cores (cgroup v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), None if
    unlimited or unreadable."""
    for folder in _own_groups(root, proc_cgroup):
        v2 = folder / "cpu.max"
        if v2.is_file():
            return _v2_quota(v2.read_text())
    quota, period = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
    if quota.is_file() and period.is_file():
        return _ratio(quota.read_text(), period.read_text())
    return None


def _own_groups(root: Path, proc_cgroup: Path) -> list[Path]:
    """The process's own cgroup v2 folder (from /proc/self/cgroup), then the root's."""
    folders = []
    try:
        for line in proc_cgroup.read_text().splitlines():
            if line.startswith("0::/"):
                folders.append(root / line.removeprefix("0::/"))
    except OSError:
        pass
    return [*folders, root]


def _v2_quota(text: str) -> float | None:
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    return _ratio(parts[0], parts[1])


def _ratio(quota: str, period: str) -> float | None:
    try:
        used, per = int(quota), int(period)
    except ValueError:
        return None
    return used / per if used > 0 and per > 0 else None
