"""Threads and workers from the machine: the cgroup's CPU quota and the affinity, read as a
container or Kubernetes pod sets them, and settings that follow them unless given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.cores import available_cores, cgroup_quota
from services.settings import Settings

AFFINITY = len(os.sched_getaffinity(0))


def _cgroup(tmp_path: Path, files: dict[str, str], own: str = "0::/\n") -> tuple[Path, Path]:
    for name, text in files.items():
        path = tmp_path / "fs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "fs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "self").write_text(own)
    return tmp_path / "fs", tmp_path / "self"


@pytest.mark.parametrize(
    ("files", "own", "quota"),
    [
        ({"cpu.max": "max 100000\n"}, "0::/\n", None),
        ({"cpu.max": "150000 100000\n"}, "0::/\n", 1.5),
        # A pod's own group, below the root the container sees.
        ({"kubepods/pod1/cpu.max": "50000 100000\n", "cpu.max": "max 100000\n"},
         "0::/kubepods/pod1\n", 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "", None),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, "", 2.0),
        ({"cpu.max": "garbage\n"}, "0::/\n", None),
        ({}, "", None),
    ],
)  # fmt: skip
def test_the_cgroup_quota_is_read_as_v2_or_v1_write_it(tmp_path, files, own, quota) -> None:
    root, proc = _cgroup(tmp_path, files, own)
    assert cgroup_quota(root, proc) == quota


def test_the_cores_are_the_smaller_of_affinity_and_quota(tmp_path) -> None:
    root, proc = _cgroup(tmp_path, {"cpu.max": "150000 100000\n"})
    assert available_cores(root, proc) == min(AFFINITY, 2)
    root, proc = _cgroup(tmp_path / "half", {"cpu.max": "50000 100000\n"})
    assert available_cores(root, proc) == 1
    root, proc = _cgroup(tmp_path / "none", {})
    assert available_cores(root, proc) == AFFINITY


def test_threads_and_workers_follow_the_cores_unless_given(monkeypatch) -> None:
    monkeypatch.delenv("VEIL_WORKER_THREADS", raising=False)
    monkeypatch.delenv("VEIL_WORKERS", raising=False)
    cores = available_cores()
    settings = Settings()
    assert settings.worker_threads == cores
    assert settings.workers == min(8, max(2, cores))
    shared = Settings(processes=2)
    assert shared.worker_threads == max(1, cores // 2)
    monkeypatch.setenv("VEIL_WORKER_THREADS", "3")
    monkeypatch.setenv("VEIL_WORKERS", "5")
    given = Settings()
    assert (given.worker_threads, given.workers) == (3, 5)
