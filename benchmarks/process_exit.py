"""Benchmark how long a process takes to exit after importing TensorFlow, with and without labkit's quick exit.

Two kinds of process, each ``--repeats`` times, with the final garbage collection as Python does it and with
``labkit._exit.quick_exit_gc`` (``gc.freeze`` at exit, registered by ``import labkit``):

1. ``python``: a child Python that imports TensorFlow, Keras and ART and runs one op; the seconds from its last
   line to its end, as its parent sees them (a test's child, a CLI call, a tournament worker).
2. ``kernel``: a notebook kernel started by nbclient, as ``labkit run`` starts one, that runs one cell importing
   TensorFlow; the seconds nbclient takes to shut it down (counted in every notebook's time in timings.json).

Writes ``<build>/process_exit.json`` (``labkit.out_dir()``). Usage::

    .venv/bin/python benchmarks/process_exit.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

_IMPORTS = "import tensorflow as tf, keras, art; x = tf.ones(3) * 2"
_SETTINGS = {"python's final collection": "import gc; gc.enable()",
             "labkit's quick exit": "import labkit._exit as quick; quick.quick_exit_gc()"}


def python_exit(setting: str) -> float:
    """Seconds between a child's last statement and its exit, seen from here."""
    code = f"{_IMPORTS}\n{setting}\nimport sys, time\nsys.stdout.write(repr(time.time())); sys.stdout.flush()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return time.time() - float(done.stdout)


def kernel_shutdown(setting: str) -> float:
    """Seconds nbclient takes to shut down a kernel that ran one TensorFlow cell."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"{_IMPORTS}\n{setting}")]
    client = NotebookClient(nb, kernel_name="python3")
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        start = time.perf_counter()
    return time.perf_counter() - start


def main() -> None:
    """Measure both kinds of exit in both settings and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: <build>/process_exit.json)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result: dict = {"load_average_before": list(os.getloadavg())}
    for kind, measure in (("python", python_exit), ("kernel", kernel_shutdown)):
        for name, setting in _SETTINGS.items():
            seconds = [measure(setting) for _ in range(args.repeats)]
            result.setdefault(kind, {})[name] = {"seconds": seconds, "median": statistics.median(seconds)}
            print(f"{kind:6s} {name:26s} median {statistics.median(seconds):.2f} s  {seconds}")
    import labkit

    result["machine"] = {"cpus": os.cpu_count(), "load_average_after": list(os.getloadavg()),
                         "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M")}
    out = args.out or labkit.out_dir() / "process_exit.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("written", out)


if __name__ == "__main__":
    main()
