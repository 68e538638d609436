"""Benchmark what each part of ``make test`` costs: CPU and wall seconds per test file (and per notebook for nbval).

Runs make test's pytest session (``pytest -n 2 --dist loadfile ... tests notebooks``, or the paths given) with a
small plugin (this file, loaded with ``-p``) that records, per test, the CPU seconds of the worker process and of
the children it reaped (the notebooks' kernels, counted when they shut down: at a notebook's last cell, at the end
of the class simulation's fixture) and the wall seconds. CPU seconds rank the costs even on a shared machine;
CI's 10-minute limit is on the wall time of a quiet one. Writes ``<build>/suite_costs.json`` (per file, slowest
first, and the 40 slowest tests) and ``<build>/suite_costs.jsonl`` (every test). Usage::

    .venv/bin/python benchmarks/suite_costs.py                       # the whole make test session
    .venv/bin/python benchmarks/suite_costs.py tests/test_models.py  # some paths, same options
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG_ENV = "LABKIT_SUITE_COSTS_LOG"


def make_test_options(makefile: Path = ROOT / "Makefile") -> list[str]:
    """The options of ``make test``'s pytest command, read from the Makefile (its paths, ``tests notebooks``, left out).

    :param makefile: the Makefile whose ``test`` recipe runs ``$(BIN)/python -m pytest <options> tests notebooks``.
    """
    lines = makefile.read_text().splitlines()
    recipe = lines[lines.index(next(line for line in lines if line.startswith("test:"))) + 1]
    words = recipe.split("-m pytest", 1)[1].split()
    return [w for w in words if w not in ("tests", "notebooks")]


PYTEST = make_test_options()


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


try:   # the plugin half: only inside pytest's processes
    import pytest

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):   # noqa: ANN001, ANN201 (pytest's hook signature)
        cpu, wall = _cpu(), time.perf_counter()
        yield
        if os.environ.get(LOG_ENV):
            with open(os.environ[LOG_ENV], "a") as f:
                f.write(json.dumps({"test": item.nodeid, "cpu_s": round(_cpu() - cpu, 2),
                                    "wall_s": round(time.perf_counter() - wall, 2),
                                    "worker": os.environ.get("PYTEST_XDIST_WORKER", "main")}) + "\n")
except ImportError:   # pragma: no cover
    pass


def summary(rows: list[dict]) -> dict:
    """Per file (a notebook counts as a file) CPU and wall seconds, slowest first, and the 40 slowest tests."""
    files: dict[str, dict[str, float]] = defaultdict(lambda: {"cpu_s": 0.0, "wall_s": 0.0, "tests": 0})
    for row in rows:
        entry = files[row["test"].split("::")[0].split("@")[0]]
        entry["cpu_s"] += row["cpu_s"]
        entry["wall_s"] += row["wall_s"]
        entry["tests"] += 1
    ranked = sorted(files.items(), key=lambda kv: -kv[1]["cpu_s"])
    return {"total_cpu_s": round(sum(r["cpu_s"] for r in rows), 1),
            "files": [{"file": name, **{k: round(v, 1) for k, v in e.items()}} for name, e in ranked],
            "slowest_tests": sorted(rows, key=lambda r: -r["cpu_s"])[:40]}


def main() -> None:
    """Run the session with the plugin and write the summary."""
    sys.path.insert(0, str(ROOT))
    import labkit

    out = labkit.out_dir()
    log = out / "suite_costs.jsonl"
    log.unlink(missing_ok=True)
    env = {**os.environ, LOG_ENV: str(log),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH")]))}
    paths = sys.argv[1:] or ["tests", "notebooks"]
    start, cpu = time.perf_counter(), _cpu()
    done = subprocess.run([sys.executable, "-m", "pytest", *PYTEST, "-p", "suite_costs", "-q", *paths], cwd=ROOT,
                          env=env)
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    result = {"command": "pytest " + " ".join(PYTEST + paths), "exit_code": done.returncode,
              "wall_s": round(time.perf_counter() - start, 1), "cpu_s": round(_cpu() - cpu, 1),
              "load_average": os.getloadavg(), "cpus": os.cpu_count(), **summary(rows)}
    (out / "suite_costs.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {out / 'suite_costs.json'}: {result['wall_s']} s wall, {result['cpu_s']} s CPU")


if __name__ == "__main__":
    main()
