"""labkit._memory: fewer glibc arenas and the free heap returned after each cell, checked on real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from labkit import _memory

glibc_only = pytest.mark.skipif(_memory._glibc() is None, reason="needs glibc (Linux): elsewhere they do nothing")

ARENAS = """
import ctypes, json, os, sys, tempfile, threading
import importlib.util
spec = importlib.util.spec_from_file_location("_memory", sys.argv[2] + "/labkit/_memory.py")
_memory = importlib.util.module_from_spec(spec)   # not through labkit/__init__.py: it caps the arenas itself
spec.loader.exec_module(_memory)
if sys.argv[1] != "default":
    _memory.limit_arenas(int(sys.argv[1]))
libc = _memory._glibc()
libc.malloc.restype = ctypes.c_void_p
barrier = threading.Barrier(9)
def work():
    blocks = [libc.malloc(4096) for _ in range(100)]
    barrier.wait()   # every thread holds its blocks (and its arena) at the same time
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]
barrier.wait()
path = tempfile.mktemp()
libc.fopen.restype = ctypes.c_void_p
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(fp))
libc.fclose(ctypes.c_void_p(fp))
barrier.wait()
[t.join() for t in threads]
print(json.dumps({"heaps": open(path).read().count("<heap nr=")}))
os.remove(path)
"""


def _python(code: str, *args: str, env: dict | None = None) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} if env is None else env
    done = subprocess.run([sys.executable, "-c", code, *args, root], capture_output=True, text=True, timeout=120,
                          env=environ)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@glibc_only
def test_limit_arenas_caps_the_arenas_of_many_threads():
    """Eight threads holding memory at once: glibc gives them their own arenas by default, two with the cap."""
    default = _python(ARENAS, "default")["heaps"]
    capped = _python(ARENAS, "2")["heaps"]
    assert default >= 5, default
    assert capped <= 2, capped


@glibc_only
def test_limit_arenas_keeps_what_the_environment_set(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert _memory.limit_arenas(2) is None


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2"])
@glibc_only
def test_limit_arenas_rejects_what_is_not_a_number_of_arenas(monkeypatch, n):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    with pytest.raises(ValueError, match="whole number of arenas"):
        _memory.limit_arenas(n)


TRIM = """
import ctypes, json, sys
import importlib.util
spec = importlib.util.spec_from_file_location("_memory", sys.argv[2] + "/labkit/_memory.py")
_memory = importlib.util.module_from_spec(spec)   # not through labkit/__init__.py: it caps the arenas itself
spec.loader.exec_module(_memory)
libc = _memory._glibc()
libc.malloc.restype = ctypes.c_void_p
def anon():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon")) / 1024
blocks = [libc.malloc(1024) for _ in range(200_000)]   # ~200 MB of small blocks on glibc's heap
for b in blocks:
    ctypes.memset(b, 1, 1024)
held = anon()
for b in blocks[:-1]:                                   # the last block stays: the heap's top cannot shrink
    libc.free(ctypes.c_void_p(b))
freed = anon()
if sys.argv[1] == "release":
    _memory.release_memory()
print(json.dumps({"held": held, "freed": freed, "after": anon()}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc")
@glibc_only
def test_release_memory_gives_the_free_heap_back():
    """200 MB freed inside the heap stay resident without malloc_trim, and go back to the system with it."""
    kept = _python(TRIM, "keep")
    released = _python(TRIM, "release")
    assert kept["held"] - kept["after"] < 50, kept
    assert released["held"] - released["after"] > 150, released


class _Events:
    def __init__(self) -> None:
        self.callbacks: dict[str, list] = {"post_run_cell": []}

    def register(self, name: str, callback) -> None:
        self.callbacks[name].append(callback)


class _Shell:
    def __init__(self) -> None:
        self.events = _Events()


@glibc_only
def test_trim_after_cells_registers_one_hook_that_releases_memory(monkeypatch):
    shell, calls = _Shell(), []
    monkeypatch.setattr(_memory, "release_memory", lambda: calls.append(1) or True)
    assert _memory.trim_after_cells(shell) and _memory.trim_after_cells(shell)
    assert len(shell.events.callbacks["post_run_cell"]) == 1
    shell.events.callbacks["post_run_cell"][0](None)
    assert calls == [1]


def test_trim_after_cells_outside_a_kernel_does_nothing():
    assert _memory.trim_after_cells() is False  # pytest runs no IPython shell
