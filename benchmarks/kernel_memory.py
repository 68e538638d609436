"""Benchmark what each notebook's kernel costs a shared server: peak memory, CPU seconds, threads.

Every lab notebook is executed in order in a fresh kernel (as ``labkit run`` does), while a thread polls the
kernel's process tree with psutil every ``--interval`` seconds: the peak resident memory (RSS, kernel and its
children), the memory still resident when the last cell has run (what an idle, unculled kernel keeps), the CPU
seconds (user + system) and the most threads. Two references are measured the same way: a kernel that only imports
labkit, TensorFlow and ART, and an idle JupyterLab server (``--no-server`` skips it). From these the JSON gives the
budget of one pair (the server, the kernel of the notebook in use and one finished kernel not yet culled: the
shipped configuration culls a kernel after 15 idle minutes) and of a class of 60 pairs.

Writes ``<build>/kernel_memory.json`` (``labkit.out_dir()``; the notebooks' own outputs go to a temporary build
folder). Usage::

    nice .venv/bin/python benchmarks/kernel_memory.py             # full setting, every notebook
    nice .venv/bin/python benchmarks/kernel_memory.py --fast 00   # smoke setting, some notebooks
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

MB = 2**20
PAIRS = 60
IMPORT_ONLY = "import labkit, tensorflow, art\nlabkit.versions()"


class TreeSampler(threading.Thread):
    """Poll a process and its children: peak RSS, last RSS, CPU seconds, peak thread count."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = psutil.Process(pid), interval
        self.peak_rss = self.last_rss = self.peak_threads = self.rss_after_cell = 0
        self.peak_anon = self.last_anon = self.anon_after_cell = self.peak_file = self.last_file = 0
        self.cpu_seconds = 0.0
        self._stop = threading.Event()

    def sample(self) -> None:
        """Take one sample of the process tree (processes that ended meanwhile are skipped)."""
        rss = threads = file = 0
        cpu = 0.0
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                with proc.oneshot():
                    memory = proc.memory_info()
                    rss += memory.rss
                    file += getattr(memory, "shared", 0)  # Linux: file-backed pages (libraries), shareable
                    threads += proc.num_threads()
                    times = proc.cpu_times()
                    cpu += times.user + times.system
            except psutil.Error:
                continue
        self.last_rss, self.peak_rss = rss, max(self.peak_rss, rss)
        self.last_anon, self.peak_anon = rss - file, max(self.peak_anon, rss - file)
        self.last_file, self.peak_file = file, max(self.peak_file, file)
        self.peak_threads, self.cpu_seconds = max(self.peak_threads, threads), max(self.cpu_seconds, cpu)

    def run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def cell_done(self) -> None:
        """Sample now and keep the RSS as the one after the latest cell (what an idle kernel then holds)."""
        self.sample()
        self.rss_after_cell, self.anon_after_cell = self.last_rss, self.last_anon

    def stop(self) -> dict[str, float]:
        """Stop polling and return the figures (MB, seconds); ``end_*`` are the figures after the last cell.

        RSS splits into anonymous memory (the process's own: heap, tensors) and file-backed pages (the mapped
        libraries, TensorFlow's above all): ``peak_anon_mb``, ``end_anon_mb`` and ``peak_file_mb``.
        """
        self._stop.set()
        return {"peak_rss_mb": round(self.peak_rss / MB, 1), "end_rss_mb": round(self.rss_after_cell / MB, 1),
                "peak_anon_mb": round(self.peak_anon / MB, 1), "end_anon_mb": round(self.anon_after_cell / MB, 1),
                "peak_file_mb": round(self.peak_file / MB, 1),
                "cpu_seconds": round(self.cpu_seconds, 1), "peak_threads": self.peak_threads}


def measure_notebook(nb: Any, cwd: Path, interval: float, timeout: int) -> dict[str, float]:
    """Execute ``nb`` in a fresh kernel started in ``cwd`` and return its kernel's figures."""
    from nbclient import NotebookClient

    sampler: dict[str, TreeSampler] = {}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})

    def start(**_: Any) -> None:
        sampler["tree"] = TreeSampler(client.km.provisioner.process.pid, interval)
        sampler["tree"].start()

    def cell_done(**_: Any) -> None:
        sampler["tree"].cell_done()

    client.on_notebook_start, client.on_cell_executed = start, cell_done
    begin = time.perf_counter()
    client.execute()
    return {**sampler["tree"].stop(), "wall_seconds": round(time.perf_counter() - begin, 1)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure_server(timeout: float = 300.0) -> dict[str, float]:
    """Start a JupyterLab server (with the shipped configuration), wait until it has served the JupyterLab page,
    and return its figures then: what an idle server holds before any kernel starts.

    :param timeout: seconds to wait for the server to answer.
    """
    port, token = _free_port(), "benchmark"
    with tempfile.TemporaryDirectory() as root:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--port={port}",
                                 f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}"]
                                + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sampler = TreeSampler(proc.pid, 0.5)
        sampler.start()
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as page:
                        page.read()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"JupyterLab did not answer on port {port} within {timeout:.0f} s")
                    time.sleep(1)
            time.sleep(3)
            sampler.cell_done()
            return sampler.stop()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _tensorflow_distribution() -> str:
    """Return which TensorFlow wheel is installed: ``tensorflow-cpu`` (what the pins give on Linux x86-64) or not."""
    from importlib import metadata

    for name in ("tensorflow-cpu", "tensorflow"):
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


CORE = ("00", "01", "02", "03", "04", "05")


def _kept(run: dict, import_file_mb: float) -> float:
    """Return what a finished kernel adds to a pod: its anonymous memory and the library pages beyond an import."""
    return run.get("end_anon_mb", run["end_rss_mb"]) + max(0.0, run.get("peak_file_mb", 0.0) - import_file_mb)


def _pair(runs: dict[str, dict], server_mb: float, finished: int, import_file_mb: float) -> dict[str, Any]:
    """Return the worst pair's session over ``runs``: the server, one kernel at its peak and ``finished`` others.

    Two measures (MB): ``rss_sum_mb`` adds whole RSS figures, so it counts the libraries' pages once per kernel
    (an upper bound); ``mb`` counts them as a pod's memory cgroup does: anonymous memory per kernel, the mapped
    library pages once (kernels of one pod share them in the page cache, charged on first touch; the pages a
    kernel maps beyond a bare import are added per kernel).
    """
    worst = {"mb": 0.0, "rss_sum_mb": 0.0, "in_use": None, "finished": []}
    for name, run in runs.items():
        others = sorted((o for o in runs if o != name), key=lambda o: -_kept(runs[o], import_file_mb))[:finished]
        charged = (server_mb + run.get("peak_anon_mb", run["peak_rss_mb"]) + run.get("peak_file_mb", 0.0)
                   + sum(_kept(runs[o], import_file_mb) for o in others))
        rss_sum = server_mb + run["peak_rss_mb"] + sum(runs[o]["end_rss_mb"] for o in others)
        if charged > worst["mb"]:
            worst = {"mb": round(charged, 1), "rss_sum_mb": round(rss_sum, 1), "in_use": name, "finished": others}
    return worst


def budget(results: dict[str, dict], server: dict | None) -> dict[str, Any]:
    """Return a pair's and a class's memory budget from the measured kernels (MB), for the core lab and for all.

    A pair's session: the server, the kernel of the notebook in use at its peak, and the finished kernels not yet
    culled (the shipped configuration culls a kernel 15-16 minutes after its last cell): one (a pair spending 16
    minutes or more per notebook) or two (a quicker pair).
    """
    runs = {name: r for name, r in results.items() if name != "import only"}
    server_mb = server["peak_rss_mb"] if server else 0.0
    import_file = results.get("import only", {}).get("peak_file_mb", 0.0)
    out: dict[str, Any] = {"server_mb": server_mb,
                           "largest_kernel_peak_mb": max((r["peak_rss_mb"] for r in runs.values()), default=0.0),
                           "class_pairs": PAIRS, "pair_note": " ".join(_pair.__doc__.split("\n\n")[1].split())}
    for scope, chosen in (("core", {n: r for n, r in runs.items() if n[:2] in CORE}), ("all", runs)):
        if not chosen:
            continue
        for finished in (1, 2):
            pair = _pair(chosen, server_mb, finished, import_file)
            out[f"pair_{scope}_{finished}_finished"] = pair
        out[f"class_{scope}_gb"] = round(PAIRS * out[f"pair_{scope}_1_finished"]["mb"] / 1024, 1)
    return out


def _lab_cpu(results: dict[str, dict]) -> dict[str, float]:
    """Return the CPU seconds one pair's kernels spend on the core lab (00-05) and on every notebook run."""
    core = [r["cpu_seconds"] for name, r in results.items() if name[:2] in CORE]
    every = [r["cpu_seconds"] for name, r in results.items() if name != "import only"]
    return {"core_00_05": round(sum(core), 1), "all_run": round(sum(every), 1)}


def _write(out: Path, report: dict) -> Path:
    target = out / "kernel_memory.json"
    target.write_text(json.dumps(report, indent=2) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    """Measure the notebooks' kernels and write ``<build>/kernel_memory.json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks (default: all), e.g. 00 03")
    parser.add_argument("--fast", action="store_true", help="the smoke setting (LABKIT_FAST=1)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples (default 0.2)")
    parser.add_argument("--no-server", action="store_true", help="skip measuring an idle JupyterLab server")
    parser.add_argument("--cell-timeout", type=int, default=1800)
    parser.add_argument("--update", action="store_true",
                        help="keep the figures already in build/kernel_memory.json and add (or replace) these")
    parser.add_argument("--server-only", action="store_true", help="measure only the idle server (with --update)")
    args = parser.parse_args(argv)

    import nbformat

    import labkit
    from labkit.classroom.runner import _report_last, _resolve, lab_notebooks

    paths = [] if args.server_only else _report_last(_resolve(args.notebooks) if args.notebooks else lab_notebooks())
    out = labkit.out_dir()
    before = json.loads((out / "kernel_memory.json").read_text()) if args.update else {}
    results: dict[str, dict] = dict(before.get("kernels", {}))
    server = None if args.no_server else measure_server()
    server = server or before.get("jupyterlab_server")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ.update({"LABKIT_OUT": scratch, "LABKIT_FAST": "1" if args.fast else "0",
                           "LABKIT_GROUP": os.environ.get("LABKIT_GROUP") or "B01: Benchmark; Kernel Memory"})
        if "import only" not in results:
            probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(IMPORT_ONLY)])
            results["import only"] = measure_notebook(probe, Path(scratch), args.interval, args.cell_timeout)
            print(f"import only: {results['import only']}", flush=True)
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            results[path.name] = measure_notebook(nb, path.parent, args.interval, args.cell_timeout)
            print(f"{path.name}: {results[path.name]}", flush=True)
            _write(out, {"setting": "fast" if args.fast else "full", "partial": True, "kernels": results,
                         "jupyterlab_server": server, "budget": budget(results, server),
                         "lab_cpu_seconds": _lab_cpu(results)})
    report = {
        "setting": "fast" if args.fast else "full", "kernels": results, "jupyterlab_server": server,
        "budget": budget(results, server), "lab_cpu_seconds": _lab_cpu(results),
        "tensorflow_distribution": _tensorflow_distribution(),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "cpu_limit": labkit._threads.cpu_limit(), "load_average_at_end": os.getloadavg()},
        "versions": labkit.versions(), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "note": "CPU seconds are the kernel's own; wall seconds depend on the machine's load at the time",
    }
    target = _write(out, report)
    pair = report["budget"].get("pair_all_1_finished", {})
    print(f"wrote {target}: largest kernel peak {report['budget']['largest_kernel_peak_mb']} MB, a pair "
          f"{pair.get('mb')} MB ({pair.get('rss_sum_mb')} MB adding whole RSS figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
