"""The teacher's page: the plan with measured times, pending where a notebook did not run, and the rubric."""

from __future__ import annotations

import json

import pytest

from labkit.classroom import teacher


def test_page_shows_measured_times_and_marks_the_rest_pending(tmp_path):
    build = tmp_path / "run"
    build.mkdir()
    (build / "timings.json").write_text(json.dumps({"00_setup.ipynb": 42.4, "03_backdoor_poisoning.ipynb": 170.0,
                                                    "07_membership_inference.ipynb": 90.0}))
    (build / "metrics.json").write_text(json.dumps({"baseline.clean_accuracy": 0.9733,
                                                    "backdoor.clean_accuracy": 0.96,
                                                    "backdoor.attack_success_rate": 0.99}))
    out = teacher.write_page(build, tmp_path / "teacher.md")
    page = out.read_text()
    assert "| `00_setup` | 0-10 | 42 s |" in page
    assert "| `03_backdoor_poisoning` | 45-60 | 2.8 min |" in page
    assert "| `01_evasion_fgsm` | 10-30 | pending |" in page
    assert "`07_membership_inference` (extension)" in page
    assert "| baseline | 0.973 |" in page and "0.990" in page
    assert "**Pending:** `01_evasion_fgsm`, `02_adversarial_training`" in page
    assert "Grading rubric" in page and "labkit export SUBMISSIONS --out DIR" in page
    assert sum(minutes for _, minutes, _ in teacher.PLAN) == 90


def test_no_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="labkit run"):
        teacher.write_page(tmp_path / "nothing", tmp_path / "teacher.md")
    assert teacher.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "t.md")]) == 1


def test_exercise_table_reads_each_exercise_and_its_check_from_the_notebooks(tmp_path):
    import nbformat

    from labkit.classroom.runner import lab_notebooks
    from labkit.classroom.student import answer_cell_metadata, check_markers, exercise_cell_metadata

    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    code.metadata["nbgrader"] = exercise_cell_metadata("x")
    answer = nbformat.v4.new_markdown_cell("A fine answer.")
    answer.metadata["nbgrader"] = answer_cell_metadata("q", 2)
    nb.cells = [nbformat.v4.new_markdown_cell("Intro.\n\n**Exercise 1.** Set `x` to one: the unit. Then go on."),
                code, nbformat.v4.new_code_cell("labkit.check.unit(x)"),
                nbformat.v4.new_markdown_cell("**Question 1.** Why one? Say why."), answer]
    nbformat.write(nb, tmp_path / "99_demo.ipynb")
    rows = teacher.exercise_table([tmp_path / "99_demo.ipynb"]).splitlines()[2:]
    assert rows == ["| `99_demo` | Exercise 1. Set `x` to one | `labkit.check.unit` |",
                    "| `99_demo` | Question 1. Why one | written answer (graded with the rubric) |"]

    real = teacher.exercise_table(lab_notebooks()).splitlines()[2:]
    assert len(real) == sum(check_markers(nbformat.read(p, as_version=4)) for p in lab_notebooks())
    assert all(row.count("|") == 4 and ("labkit.check." in row or "written answer" in row) for row in real)
    assert all(" Exercise " in row or " Question " in row for row in real)
