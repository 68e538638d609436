"""Benchmark the class simulation: how long `make test`'s run of the filled student edition takes.

Runs what ``tests/test_class_simulation.py`` runs (the student edition of 00-09 filled with the pair's answers, each
notebook in a fresh kernel in the fast setting, every wrong answer tried at its exercise) and writes the seconds per
notebook, the number of wrong answers tried and how many got their hint to ``<build>/class_simulation.json``
(``labkit.out_dir()``). Measure on a quiet machine: CI's whole budget is 10 minutes. Usage::

    .venv/bin/python benchmarks/class_simulation.py
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from classroom_sim.answers import ANSWERS  # noqa: E402
from classroom_sim.harness import expected_hint_shown, run_class  # noqa: E402
from classroom_sim.wrong_answers import WRONG  # noqa: E402

import labkit  # noqa: E402


def main() -> None:
    """Run the simulation once and write its timings."""
    with tempfile.TemporaryDirectory() as root:
        runs, seconds = run_class(Path(root), ANSWERS, WRONG)
    result = {"seconds": seconds, "machine": platform.platform(), "python": platform.python_version(),
              "wrong_answers": sum(len(r.wrong) for r in runs.values()),
              "wrong_answers_hinted": sum(expected_hint_shown(w, o) for r in runs.values() for w, o in r.wrong),
              "errors": {name: r.errors for name, r in runs.items() if r.errors}}
    out = labkit.out_dir() / "class_simulation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
