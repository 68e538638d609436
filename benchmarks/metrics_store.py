"""Benchmark of the metrics store's safety (issue 15.2): concurrent writers, kills during a write, file mode.

Writes ``<build>/metrics_store_bench.json`` with, for each measurement, what was expected and what was found:

* ``concurrent``: PROCESSES processes each record KEYS keys into one store at once; keys expected and kept, wall
  seconds and seconds per record;
* ``kills``: a writer is killed (SIGKILL) while it rewrites a large store, KILLS times; whether the store stayed
  valid JSON after every kill, and the temporary files left before and after the next record;
* ``file_mode``: the store's mode under umask 022.

Run: ``python benchmarks/metrics_store.py [--processes 2] [--keys 300] [--kills 5] [--out build]``.
Timings depend on the machine and its load; the counts do not.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_metrics import _writers  # noqa: E402  (the tests' writer process: a kernel recording keys)


def _writer(store: Path, prefix: str, count: int) -> subprocess.Popen:
    return _writers(store, (prefix, str(count)))[0]


def _load(store: Path) -> dict:
    from labkit.metrics import load_metrics

    return load_metrics(store / "metrics.json")


def concurrent(processes: int, keys: int) -> dict:
    """Return keys expected and kept when ``processes`` writers record ``keys`` keys each at once."""
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder)
        start = time.perf_counter()
        procs = [_writer(store, f"p{i}", keys) for i in range(processes)]
        codes = [p.wait() for p in procs]
        seconds = time.perf_counter() - start
        kept = len(_load(store))
    return {"processes": processes, "keys_each": keys, "exit_codes": codes, "keys_expected": processes * keys,
            "keys_kept": kept, "wall_seconds": round(seconds, 2),
            "seconds_per_record": round(seconds / (processes * keys), 4)}


def kills(count: int) -> dict:
    """Return whether the store stays valid when a writer is killed mid-write ``count`` times, and leftovers."""
    os.environ.pop("LABKIT_OUT", None)
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder)
        os.environ["LABKIT_OUT"] = str(store)
        import labkit

        labkit.record("big.list", list(range(100_000)))   # every write takes a while: kills land inside one
        valid = []
        for attempt in range(count):
            proc = _writer(store, f"run{attempt}", 100_000)
            while f"run{attempt}.k1" not in _load(store) and proc.poll() is None:
                time.sleep(0.05)
            time.sleep(0.1)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            try:
                valid.append(_load(store)["big.list"][-1] == 99_999)
            except ValueError:
                valid.append(False)
        before = sorted(p.name for p in store.iterdir() if p.name.endswith(".tmp"))
        labkit.record("after.kill", 1)
        after = sorted(p.name for p in store.iterdir() if p.name.endswith(".tmp"))
    return {"kills": count, "store_valid_after_each_kill": valid, "temp_files_left_by_kills": len(before),
            "temp_files_after_next_record": len(after)}


def file_mode() -> dict:
    """Return the store's mode when created under umask 022."""
    with tempfile.TemporaryDirectory() as folder:
        os.environ["LABKIT_OUT"] = folder
        import labkit

        old = os.umask(0o022)
        try:
            labkit.record("mode.check", 1)
        finally:
            os.umask(old)
        return {"umask": "022", "mode": oct(stat.S_IMODE((Path(folder) / "metrics.json").stat().st_mode))}


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and write ``<out>/metrics_store_bench.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--keys", type=int, default=300)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--out", default="build")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = {"concurrent": concurrent(args.processes, args.keys), "kills": kills(args.kills),
              "file_mode": file_mode()}
    result["benchmark_seconds"] = round(time.perf_counter() - start, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics_store_bench.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
