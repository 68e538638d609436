"""What keeps ``labkit run`` from failing obscurely: one run per build folder, and a kernel that cannot start
named in one line.

Two runs writing into one ``--out`` would interleave their executed notebooks, metrics and timings (and
used to end in a ZMQ traceback); the second one now stops at once and names the first. The lock is a
``filelock.FileLock`` on ``<out>/.labkit-run.lock``: the operating system releases it when its process
ends, however it ends, so a killed run never leaves the folder locked.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = ["RunLocked", "KernelStartFailed", "run_lock", "execute_notebook", "LOCK_NAME", "INFO_NAME"]

LOCK_NAME = ".labkit-run.lock"
"""The lock file under ``--out`` that one ``labkit run`` holds while it runs."""
INFO_NAME = ".labkit-run.json"
"""Who holds the lock (process id, host, start time, notebooks), for the message a second run shows."""


class RunLocked(RuntimeError):
    """Another ``labkit run`` is using the same build folder."""


class KernelStartFailed(RuntimeError):
    """The Jupyter kernel that should execute a notebook could not be started."""


def _holder(out: Path) -> str:
    """Describe the run that holds ``out``'s lock, from the info file it wrote."""
    try:
        info = json.loads((out / INFO_NAME).read_text())
        notebooks = info.get("notebooks") or []
        running = ", ".join(notebooks[:3]) + (f" and {len(notebooks) - 3} more" if len(notebooks) > 3 else "")
        return (f"pid {info['pid']} on {info['host']}, started {info['started']}"
                + (f", running {running}" if running else ""))
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"


@contextmanager
def run_lock(out: Path, notebooks: Sequence[Path | str]) -> Iterator[None]:
    """Hold the build folder ``out`` for one run; raise ``RunLocked`` at once if another run holds it.

    :param out: the build folder (created if missing).
    :param notebooks: the notebooks this run executes, named to a second run that finds the folder busy.
    """
    from filelock import FileLock, Timeout

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunLocked(f"another labkit run is using {out} ({_holder(out)}): wait for it to finish, "
                        f"or give this run another --out") from None
    info = out / INFO_NAME
    try:
        info.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                    "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                    "notebooks": [Path(n).name for n in notebooks]}))
        yield
    finally:
        info.unlink(missing_ok=True)
        lock.release()


def execute_notebook(client: Any) -> None:
    """Execute an nbclient ``NotebookClient``; a kernel that cannot start raises ``KernelStartFailed``.

    Errors inside the notebook (``CellExecutionError``) and errors after the kernel answered are raised
    unchanged; anything that stops the kernel before it answers becomes one line that says what to check.

    :param client: the ``nbclient.NotebookClient`` of one notebook.
    """
    started: list[bool] = []
    previous = client.on_notebook_start

    def mark_started(**kwargs: Any) -> Any:
        started.append(True)
        return previous(**kwargs) if previous is not None else None

    client.on_notebook_start = mark_started
    # jupyter_client logs a failed start with its traceback; the one line below says it instead
    quiet = logging.getLogger("traitlets")
    until_started = _DropUntil(started)
    quiet.addFilter(until_started)
    try:
        client.execute()
    except Exception as err:
        if started:
            raise
        atexit.unregister(client._cleanup_kernel)  # nbclient's exit hook for a kernel that never was: a traceback
        reason = " ".join(str(err).split()) or type(err).__name__
        raise KernelStartFailed(
            f"could not start the {client.kernel_name} kernel: {reason}. Check that it is installed and starts "
            f"(jupyter kernelspec list; python -m ipykernel install --user installs python3 for this Python)"
        ) from None
    finally:
        quiet.removeFilter(until_started)


class _DropUntil(logging.Filter):
    """Drop log records until ``flag`` (a list) holds something: here, until the kernel has answered."""

    def __init__(self, flag: list[bool]) -> None:
        super().__init__()
        self.flag = flag

    def filter(self, record: logging.LogRecord) -> bool:
        return bool(self.flag)
