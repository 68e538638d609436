"""Benchmark the guards against hostile data files and a busy build folder: what refusing them costs.

Each case runs in a fresh child process, so its peak memory (``ru_maxrss``) is its own:

1. ``zip_bomb``: a ~1 MB ``.npz`` whose ``x_train`` unpacks to 940 MiB of zeros, under the 1 GiB cap, so the
   compression-ratio guard is what refuses it (issue 15: such a file, 1.2 MB, used to take
   3.75 GB). ``labkit.load_dataset`` must refuse it from the zip directory, without unpacking.
2. ``lying_header``: an ``.npz`` whose ``x_train`` header declares 292 GiB of float32 images and holds 64 bytes
   (it used to raise a MemoryError for 292 GiB).
3. ``second_run``: ``labkit run`` on a build folder that another process holds: seconds until it refuses.

For each: the message, the wall time, the child's peak RSS and its RSS after imports (the baseline: numpy,
scikit-learn and labkit), so ``peak - baseline`` is what the refusal cost.

Writes ``<build>/guards_bench.json`` (``labkit.out_dir()``). Usage::

    .venv/bin/python benchmarks/guards.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

_CHILD_LOAD = r"""
import json, resource, sys, time
import labkit
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
baseline = rss()
start = time.perf_counter()
try:
    labkit.load_dataset("mnist", path=sys.argv[1])
    outcome = "loaded"
except Exception as err:
    outcome = f"{type(err).__name__}: {err}"
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - start, "baseline_rss": baseline,
                  "peak_rss": rss()}))
"""

_CHILD_HOLD = r"""
import sys, time
from pathlib import Path
from labkit.classroom._runguard import run_lock
with run_lock(Path(sys.argv[1]), ["00_setup.ipynb"]):
    print("holding", flush=True)
    time.sleep(600)
"""


def _member(archive: zipfile.ZipFile, key: str, array: np.ndarray) -> None:
    with archive.open(f"{key}.npy", "w") as member:
        np.lib.format.write_array(member, array)


def write_zip_bomb(path: Path, unpacked_bytes: int = 940 * 2**20) -> Path:
    """Write a Keras-layout .npz whose x_train is ``unpacked_bytes`` of zeros (uint8 28x28 images)."""
    n_images = unpacked_bytes // (28 * 28)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("x_train.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "|u1", "fortran_order": False, "shape": (n_images, 28, 28)})
            chunk = bytes(28 * 28 * 4096)
            for start in range(0, n_images, 4096):
                member.write(chunk[: 28 * 28 * min(4096, n_images - start)])
        _member(archive, "y_train", np.arange(n_images, dtype=np.uint8) % 10)
        _member(archive, "x_test", np.zeros((10, 28, 28), np.uint8))
        _member(archive, "y_test", np.arange(10, dtype=np.uint8))
    return path


def write_lying_header(path: Path) -> Path:
    """Write a Keras-layout .npz whose x_train header declares 292 GiB of float32 and holds 64 bytes."""
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("x_train.npy", "w") as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "<f4", "fortran_order": False, "shape": (100_000_000, 28, 28, 1)})
            member.write(bytes(64))
        _member(archive, "y_train", np.arange(10, dtype=np.uint8))
        _member(archive, "x_test", np.zeros((10, 28, 28), np.uint8))
        _member(archive, "y_test", np.arange(10, dtype=np.uint8))
    return path


def load_in_child(path: Path) -> dict:
    """Run ``load_dataset`` on ``path`` in a fresh process; return its outcome, time and memory."""
    done = subprocess.run([sys.executable, "-c", _CHILD_LOAD, str(path)], capture_output=True, text=True,
                          timeout=900)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["file_bytes"] = path.stat().st_size
    result["refusal_cost_mib"] = round((result["peak_rss"] - result["baseline_rss"]) / 2**20, 1)
    return result


def second_run(folder: Path) -> dict:
    """Hold ``folder`` in one process and time ``labkit run`` refusing it in another."""
    notebook = folder / "90_probe.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    out = folder / "out"
    holder = subprocess.Popen([sys.executable, "-c", _CHILD_HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        holder.stdout.readline()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "labkit.cli", "run", str(notebook), "--out", str(out)],
                              capture_output=True, text=True, timeout=300)
        seconds = time.perf_counter() - start
    finally:
        holder.kill()
        holder.wait()
    return {"exit_code": done.returncode, "stderr": done.stderr.strip(), "seconds_including_python_start": seconds}


def main() -> None:
    """Run the three cases and write the JSON."""
    import labkit

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: <build>/guards_bench.json)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        start = time.perf_counter()
        bomb = write_zip_bomb(scratch / "bomb.npz")
        result = {"zip_bomb": {**load_in_child(bomb), "seconds_to_write": time.perf_counter() - start,
                               "unpacked_bytes": zipfile.ZipFile(bomb).getinfo("x_train.npy").file_size},
                  "lying_header": load_in_child(write_lying_header(scratch / "lies.npz")),
                  "second_run": second_run(scratch)}
    result["machine"] = {"cpus": os.cpu_count(), "load_average_after": list(os.getloadavg()),
                         "python": platform.python_version(), "numpy": np.__version__}
    out = args.out or labkit.out_dir() / "guards_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for case in ("zip_bomb", "lying_header"):
        r = result[case]
        print(f"{case}: {r['file_bytes'] / 2**20:.2f} MiB file -> {r['outcome'][:90]}... in {r['seconds']:.2f} s, "
              f"peak RSS {r['peak_rss'] / 2**20:.0f} MiB (baseline {r['baseline_rss'] / 2**20:.0f} MiB)")
    print(f"second_run: exit {result['second_run']['exit_code']} after "
          f"{result['second_run']['seconds_including_python_start']:.1f} s: {result['second_run']['stderr'][:120]}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
