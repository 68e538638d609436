"""nbgrader end to end on the report: generate_assignment, a pair's run, autograde, generate_feedback.

nbgrader is an optional extra (``pip install labkit[grading]``, nbgrader 0.9.6), not a runtime dependency: the test
is skipped, saying so, where it is not importable. ``LABKIT_NBGRADER_PATH`` may name a folder holding nbgrader and
its dependencies (``pip install --target DIR nbgrader==0.9.6 ...``) to use instead of the venv's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import labkit
from labkit.paths import notebooks_dir

NBGRADER_PATH_ENV = "LABKIT_NBGRADER_PATH"
MEMBERS = '[("Ada Lovelace", "s1234567"), ("Alan Turing", "s7654321")]'


def _nbgrader_env() -> dict[str, str]:
    """Return the environment for nbgrader's commands: no build folder or group forced on the kernels."""
    env = {k: v for k, v in os.environ.items() if k not in {"LABKIT_OUT", "LABKIT_GROUP", "LABKIT_EDITION",
                                                              "LABKIT_RUN_ID", "LABKIT_NOTEBOOK"}}
    env["LABKIT_FAST"] = "0"
    paths = [str(Path(sys.executable).parent)]
    extra = os.environ.get(NBGRADER_PATH_ENV)
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra, env.get("PYTHONPATH")]))
        paths.insert(0, str(Path(extra) / "bin"))    # nbgrader runs `alembic` to set up its database
    env["PATH"] = os.pathsep.join([*paths, env.get("PATH", "")])
    return env


@pytest.fixture(scope="module")
def nbgrader_env() -> dict[str, str]:
    env = _nbgrader_env()
    probe = subprocess.run([sys.executable, "-c", "import nbgrader; print(nbgrader.__version__)"], env=env,
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("nbgrader is not installed: `pip install labkit[grading]` (nbgrader 0.9.6), or set "
                    f"{NBGRADER_PATH_ENV} to a folder holding it, to run the nbgrader end-to-end test")
    return env


def _nbgrader(course: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def _pair_runs_the_report(released: Path, folder: Path, monkeypatch) -> None:
    """A pair's session: its numbers recorded into its own store, then the released report filled in and run."""
    from nbclient import NotebookClient

    from test_gradebook import FULL

    for name in ("LABKIT_OUT", "LABKIT_GROUP", "LABKIT_EDITION", "LABKIT_NOTEBOOK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LABKIT_FAST", "0")
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    for key, value in FULL.items():
        labkit.record(key, value)
    assert labkit.metrics.metrics_path() == folder / "build" / "student-run" / "metrics.json"
    nb = nbformat.read(released, as_version=4)
    for cell in nb.cells:
        if "check_group(GROUP_ID, MEMBERS)" in cell.source:
            cell.source = cell.source.replace('GROUP_ID = ""', 'GROUP_ID = "G07"').replace(
                'MEMBERS = [("", ""), ("", "")]', f"MEMBERS = {MEMBERS}")
        elif cell.cell_type == "markdown" and "YOUR ANSWER HERE" in cell.source:
            cell.source = "Madry's PGD training: under PGD it keeps the most accuracy for its cost."
    NotebookClient(nb, timeout=600, startup_timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    nbformat.write(nb, folder / released.name)


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return json.dumps([c.get("outputs") for c in nb.cells if c.cell_type == "code"])


def test_generate_assignment_autograde_and_feedback_keep_the_pairs_numbers(tmp_path, nbgrader_env, monkeypatch):
    course = tmp_path / "course"
    (course / "source" / "lab").mkdir(parents=True)
    shutil.copy(notebooks_dir() / "05_report.ipynb", course / "source" / "lab")
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\nc.CourseDirectory.course_id = 'labkit'\n"
        "c.Execute.timeout = 600   # importing TensorFlow can take longer than nbgrader's 30 s default\n"
        "c.Execute.startup_timeout = 300   # a loaded machine starts kernels slowly\n")

    _nbgrader(course, nbgrader_env, "generate_assignment", "lab", "--force")
    released = course / "release" / "lab" / "05_report.ipynb"
    assert "YOUR ANSWER HERE" in released.read_text()

    submission = course / "submitted" / "s1234567" / "lab"
    _pair_runs_the_report(released, submission, monkeypatch)
    assert "All numbers of notebooks 00-04 are there" in _outputs(submission / "05_report.ipynb")

    _nbgrader(course, nbgrader_env, "autograde", "lab", "--force")
    autograded = course / "autograded" / "s1234567" / "lab" / "05_report.ipynb"
    text = _outputs(autograded)
    assert "Numbers are missing" not in text and "All numbers of notebooks 00-04 are there" in text
    assert "own run" in text
    scores = subprocess.run([sys.executable, "-c", (
        "import json\nfrom nbgrader.api import Gradebook\n"
        f"with Gradebook('sqlite:///{course}/gradebook.db', 'labkit') as gb:\n"
        "    nb = gb.find_submission_notebook('05_report', 'lab', 's1234567')\n"
        "    print(json.dumps({g.name: [g.score, g.needs_manual_grade] for g in nb.grades}))")],
        env=nbgrader_env, capture_output=True, text=True, check=True)
    grades = json.loads(scores.stdout.strip().splitlines()[-1])
    assert grades["report-table"] == [2.0, False]                     # the pair's numbers scored
    assert all(grades[f"report-q{i}"][1] for i in range(1, 5))        # the answers wait for the teacher

    _nbgrader(course, nbgrader_env, "generate_feedback", "lab", "--force")
    feedback = (course / "feedback" / "s1234567" / "lab" / "05_report.html").read_text()
    assert "G07" in feedback and "own run" in feedback
