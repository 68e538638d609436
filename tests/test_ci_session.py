"""make test's one pytest session (conftest.py at the checkout's root): the notebooks run in order on one worker,
in kernels with the fast setting, strict checks and their own store; each test file stays on one worker; the unit
tests' environment is untouched. Run here on a small copy: four tiny notebooks and two test files."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["00_a", "01_b", "02_c", "03_d"]
ENV = ("LABKIT_FAST", "LABKIT_STRICT_CHECKS", "LABKIT_OUT")
PROBE = """import json, os, sys


def probe(log, who, env):
    with open(log, "a") as f:
        f.write(json.dumps({"who": who, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                            "iri_parsers": sys.modules.get("rfc3987_syntax") is not None,
                            **{k: os.environ.get(k) for k in env}}) + "\\n")
"""
spec = importlib.util.spec_from_file_location("suite_costs", ROOT / "benchmarks" / "suite_costs.py")
suite_costs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite_costs)


def _project(tmp_path: Path, log: Path) -> Path:
    """A checkout in small: the root conftest.py, four notebooks of two cells, two test files of three tests."""
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "tests").mkdir()
    shutil.copy(ROOT / "conftest.py", project / "conftest.py")
    (project / "pytest.ini").write_text("[pytest]\n")
    for name in NAMES:
        cells = [new_code_cell(f"{PROBE}\nprobe({str(log)!r}, '{name}:{k}', {ENV!r})") for k in range(2)]
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
        nbformat.write(nb, project / "notebooks" / f"{name}.ipynb")
    for module in ("test_one", "test_two"):
        tests = [f"def test_{k}():\n    probe({str(log)!r}, '{module}:{k}', {ENV!r})\n" for k in range(3)]
        (project / "tests" / f"{module}.py").write_text(PROBE + "\n\n" + "\n\n".join(tests))
    return project


def test_one_session_runs_the_notebooks_in_order_on_one_worker_with_their_environment(tmp_path):
    log = tmp_path / "seen.jsonl"
    project = _project(tmp_path, log)
    env = {k: v for k, v in os.environ.items() if k not in ENV and not k.startswith(("PYTEST_", "COV_"))}
    options = suite_costs.make_test_options()   # make test's own pytest command
    done = subprocess.run([sys.executable, "-m", "pytest", *options, "-q", "tests", "notebooks"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    cells = [s for s in seen if s["who"].split(":")[0] in NAMES]
    assert [c["who"] for c in cells] == [f"{n}:{k}" for n in NAMES for k in range(2)]   # in order, every cell
    assert len({c["worker"] for c in cells}) == 1 and cells[0]["worker"].startswith("gw")
    for cell in cells:
        assert (cell["LABKIT_FAST"], cell["LABKIT_STRICT_CHECKS"]) == ("1", "1")
        assert cell["LABKIT_OUT"] == str(project / "build" / "nbval")
    for module in ("test_one", "test_two"):
        tests = [s for s in seen if s["who"].startswith(module)]
        assert len(tests) == 3 and len({t["worker"] for t in tests}) == 1, tests   # a file stays on one worker
        assert all(t[k] is None for t in tests for k in ENV), tests   # the unit tests' environment is untouched
    # nbformat's jsonschema did not build its ~3 s of "iri" parsers in the workers (make test's first plugin)
    assert not any(s["iri_parsers"] for s in seen if s["who"].startswith("test_")), seen
