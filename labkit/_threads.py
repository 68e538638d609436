"""TensorFlow's thread pools sized to the CPUs the kernel may actually use.

TensorFlow sizes its pools from the CPUs it can schedule on (``sched_getaffinity``), which on a JupyterHub or
in a container is the host's core count: a kernel limited to 1 CPU by its cgroup quota still starts a pool of
16 or 32 threads, which then compete for that one CPU. ``limit_threads`` (called by ``import labkit``) reads the
quota and sets TensorFlow's intra-op and inter-op pools to it, through the environment variables TensorFlow
reads when its runtime starts (``TF_NUM_INTRAOP_THREADS``, ``TF_NUM_INTEROP_THREADS``, and ``OMP_NUM_THREADS``
for oneDNN) and, when TensorFlow is already imported, ``tf.config.threading``. Values a user set are kept.

Where the quota comes from, in order: cgroup v2 ``cpu.max``, cgroup v1 ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us``, then the CPUs the process may run on. ``LABKIT_CGROUP_ROOT`` points at another cgroup
mount (default ``/sys/fs/cgroup``); the tests use it with fake files.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

__all__ = ["cpu_limit", "cgroup_quota", "limit_threads", "THREAD_ENV"]

CGROUP_ROOT_ENV = "LABKIT_CGROUP_ROOT"
THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
"""The environment variables that size TensorFlow's (and oneDNN's) thread pools when its runtime starts."""


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _ratio(quota: str, period: str) -> float | None:
    """Return quota / period in CPUs, or None for "no limit" ("max", -1) and anything unreadable."""
    try:
        q, p = float(quota), float(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_quota(root: Path | None = None) -> float | None:
    """Return the CPU quota of this process's cgroup in CPUs (e.g. 1.5), or None when there is no limit.

    :param root: the cgroup mount (default ``$LABKIT_CGROUP_ROOT`` or ``/sys/fs/cgroup``). cgroup v2's
        ``cpu.max`` ("max 100000" or "150000 100000") is read first, then cgroup v1's ``cpu/cpu.cfs_quota_us``
        and ``cpu/cpu.cfs_period_us`` (quota -1: no limit).
    """
    root = Path(root or os.environ.get(CGROUP_ROOT_ENV) or "/sys/fs/cgroup")
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        fields = v2.split()
        return _ratio(fields[0], fields[1]) if len(fields) == 2 else None
    for v1 in (root / "cpu", root / "cpu,cpuacct", root):
        quota, period = _read(v1 / "cpu.cfs_quota_us"), _read(v1 / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return _ratio(quota, period)
    return None


def _schedulable_cpus() -> int:
    """Return how many CPUs this process may run on (its affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cpu_limit(root: Path | None = None) -> int:
    """Return the number of CPUs this kernel may use: its cgroup quota rounded up, at most its affinity, at least 1.

    :param root: the cgroup mount to read the quota from (see ``cgroup_quota``).
    """
    cpus = _schedulable_cpus()
    quota = cgroup_quota(root)
    return cpus if quota is None else max(1, min(cpus, math.ceil(quota - 1e-9)))


def limit_threads(n: int | None = None) -> int:
    """Size TensorFlow's thread pools to ``n`` CPUs (default: ``cpu_limit()``) and return the number used.

    Environment variables already set (by a user, or by a hub's spawner) are kept. When TensorFlow is already
    imported, ``tf.config.threading`` is set too, unless its runtime has started (it then keeps its pools).

    :param n: the number of threads per pool; default, the CPU limit of this process.
    """
    n = n or cpu_limit()
    for name in THREAD_ENV:
        os.environ.setdefault(name, str(n))
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "config"):
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["TF_NUM_INTRAOP_THREADS"]))
            tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["TF_NUM_INTEROP_THREADS"]))
        except (RuntimeError, ValueError):
            pass  # the runtime already started: its pools are fixed for this process
    return n
