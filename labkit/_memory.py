"""Give memory back to the system: fewer glibc malloc arenas, and the free heap returned after every cell.

A notebook kernel that has finished keeps its memory until it is culled (docs/deploy.md). Two glibc defaults make
that memory larger than what the kernel still uses: glibc gives each thread that contends for the heap an arena of
its own (up to 8 per core), and it keeps freed memory inside those arenas instead of returning it. Measured on 06
(benchmarks/kernel_memory.py's way, 2026-11-30): the kernel held 498 MB of anonymous memory after its last cell by
default, 461 MB with both below (441 MB with ``MALLOC_ARENA_MAX=2`` set before the kernel starts); CPU seconds did
not change measurably.

- ``limit_arenas`` (called by ``import labkit``) caps the arenas with ``mallopt(M_ARENA_MAX)`` at the CPUs the
  kernel may use (at least 2), as ``MALLOC_ARENA_MAX`` would; a ``MALLOC_ARENA_MAX`` already set wins.
- ``trim_after_cells`` (called by ``import labkit`` in a notebook kernel) runs ``malloc_trim(0)`` after every cell:
  the free heap goes back to the system while the pair reads, instead of staying with the kernel.

Both do nothing where the C library is not glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Any

__all__ = ["limit_arenas", "release_memory", "trim_after_cells", "M_ARENA_MAX"]

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter number for the arena limit (malloc.h)."""

_LIBC: Any = None


def _glibc() -> Any:
    """Return glibc loaded through ctypes, or None on any other C library."""
    global _LIBC
    if _LIBC is None:
        _LIBC = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt"):
                    _LIBC = libc
            except OSError:
                pass
    return _LIBC or None


def limit_arenas(n: int | None = None) -> int | None:
    """Cap glibc's malloc arenas at ``n`` (default: the CPU limit, at least 2) and return the cap, None if unset.

    :param n: the most arenas; default ``max(2, labkit._threads.cpu_limit())``. ``MALLOC_ARENA_MAX`` in the
        environment (glibc reads it at start-up) is kept: nothing is changed then.
    """
    libc = _glibc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX"):
        return None
    if n is None:
        from labkit._threads import cpu_limit

        n = max(2, cpu_limit())
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number of arenas >= 1, got {n!r}")
    return n if libc.mallopt(M_ARENA_MAX, n) == 1 else None


def release_memory() -> bool:
    """Return the free parts of the heap to the system (``malloc_trim(0)``); True if some memory was released.

    Used after every cell of a notebook kernel (``trim_after_cells``).
    """
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def _after_cell(*_: Any) -> None:
    release_memory()


def trim_after_cells(shell: Any = None) -> bool:
    """Run ``release_memory`` after every cell of the IPython kernel; return True if the hook is (now) registered.

    :param shell: the IPython shell (default: the running one). Calling it again does not add a second hook.
    """
    if _glibc() is None:
        return False
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None:
        return False
    callbacks = shell.events.callbacks.get("post_run_cell", [])
    if _after_cell not in callbacks:
        shell.events.register("post_run_cell", _after_cell)
    return True
