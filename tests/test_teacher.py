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


# --- the page is generated whole: prose parts, run files and benchmark files --------------------------------------

HOSTILE = {"benchmark": "export_hostile", "n_submissions": 200, "wall_s": 12.34, "cpu_s": 11.5, "limit_s": 60.0,
           "within_limit": True, "listed": 216, "exported": 151, "machine": {"cpus": 2, "load_average_1m_before": 0.5}}
CLAIMS = {"numbers": {"baseline.clean_accuracy": {"mean": 0.978, "std": 0.003, "min": 0.976, "max": 0.98,
                                                  "seeds": [0, 1]}},
          "claims": [{"claim": "a claim", "where": "01", "measured": "mean +0.3", "verdict": "holds"}],
          "seeds_per_stage": {"evasion": [0, 1]}}
NC = {"setting": "full", "dataset": "digits", "target_class": 0, "trigger": "square:size=3", "settings": {"steps": 120},
      "seeds": [{"seed": 0}], "target_anomaly_index_per_seed": [3.5], "detection_rate": 1.0,
      "false_positive_rate": 0.0, "search_epochs": [[90, 70]]}


def _build(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "timings.json").write_text(json.dumps({"00_setup.ipynb": 30.0}))
    for name, data in files.items():
        (folder / name).write_text(json.dumps(data))
    return folder


def _missing_parts(page: str, parts=teacher.PARTS_DIR) -> list[str]:
    """Return the part files of ``parts`` whose text (apart from ``{{markers}}``) is not all on ``page``."""
    import re

    missing = []
    for path in sorted(parts.glob("*.md")):
        chunks = [c.strip() for c in re.split(r"\{\{\w+\}\}", path.read_text().strip())]
        if not all(chunk in page for chunk in chunks):
            missing.append(path.stem)
    return missing


SECTIONS = ("# Teacher's guide", "## Material", "## The 90-minute plan", "## Exercises", "## Expected numbers",
            "## What the key rests on: numbers over seeds", "## Neural Cleanse over seeds (benchmark)",
            "## Grading rubric (report cells)", "## Exporting a class folder")


def test_every_prose_part_and_section_is_on_the_page(tmp_path):
    build = _build(tmp_path / "b", **{"key_claims.json": CLAIMS, "export_hostile_bench.json": HOSTILE,
                                      "neural_cleanse_eval.json": NC})
    page = teacher.write_page(build, tmp_path / "teacher.md").read_text()
    assert sorted(p.stem for p in teacher.PARTS_DIR.glob("*.md")) == sorted(teacher.PARTS)
    assert _missing_parts(page) == []
    positions = [page.index(heading + "\n") for heading in SECTIONS]
    assert positions == sorted(positions)
    assert teacher.RUBRIC.strip() in page
    assert "**A submission cannot stop or harm the export.**" in page  # the hand-written hardening paragraph
    assert "keeps `LABKIT_FAST` from the\nenvironment" in page  # the hand-written FAST sentences


def test_a_part_left_off_the_page_is_caught(tmp_path):
    import shutil

    parts = tmp_path / "parts"
    shutil.copytree(teacher.PARTS_DIR, parts)
    page = teacher.render_page({}, {}, parts=parts)
    assert _missing_parts(page, parts) == []
    (parts / "tournament.md").write_text("A new part nobody wired into the generator.\n")
    assert _missing_parts(page, parts) == ["tournament"]
    (parts / "provenance.md").write_text("Changed wording of the threat model.\n")
    assert "Changed wording of the threat model." in teacher.render_page({}, {}, parts=parts)
    assert "Changed wording" not in page and "provenance" in _missing_parts(page, parts)


def test_a_missing_part_or_marker_is_a_clear_error(tmp_path):
    import shutil

    parts = tmp_path / "parts"
    shutil.copytree(teacher.PARTS_DIR, parts)
    (parts / "nbgrader.md").unlink()
    with pytest.raises(FileNotFoundError, match="nbgrader.md.*checkout"):
        teacher.render_page({}, {}, parts=parts)
    shutil.copy(teacher.PARTS_DIR / "nbgrader.md", parts)
    (parts / "material.md").write_text("See {{tournament_link}}.\n")
    with pytest.raises(ValueError, match="no value for tournament_link"):
        teacher.render_page({}, {}, parts=parts)
    build = _build(tmp_path / "b")
    assert teacher.main([str(build), "--out", str(tmp_path / "t.md"), "--parts", str(parts)]) == 1


def test_missing_benchmarks_say_which_script_to_run_never_a_number(tmp_path):
    page = teacher.write_page(_build(tmp_path / "b"), tmp_path / "teacher.md").read_text()
    for script in ("benchmarks/key_claims.py", "benchmarks/neural_cleanse.py", "benchmarks/export_hostile.py"):
        assert f"**Not measured yet**: run `{script}`" in page
    assert "11.1 s" not in page and "entries listed" not in page
    fast = _build(tmp_path / "fast", **{"neural_cleanse_eval.json": {**NC, "setting": "fast"}})
    page = teacher.write_page(fast, tmp_path / "teacher.md").read_text()
    assert "**Not measured yet** (only FAST runs in" in page and "3.50" not in page


def test_benchmark_numbers_are_read_from_their_json_and_named_with_it(tmp_path):
    build = _build(tmp_path / "b", **{"key_claims.json": CLAIMS, "export_hostile_bench.json": HOSTILE,
                                      "neural_cleanse_eval.json": NC})
    page = teacher.write_page(build, tmp_path / "teacher.md").read_text()
    assert (f"200 hostile submissions (`{build}/export_hostile_bench.json`): 12.3 s (11.5 s CPU) on a 2-core "
            "machine (1-minute load average 0.50 before the run), within the limit of 60 s; 151 exported, "
            "216 entries listed.") in page
    assert f"into `{build}/key_claims.json`" in page and "0.978 ± 0.003" in page
    assert f"Rows in order from `{build}/neural_cleanse_eval.json`." in page and "| 3.50 |" in page
    assert "**Not measured yet**" not in page
    slow = _build(tmp_path / "slow", **{"export_hostile_bench.json": {**HOSTILE, "wall_s": 75.0,
                                                                      "within_limit": False}})
    assert "75.0 s (11.5 s CPU)" in teacher.write_page(slow, tmp_path / "t.md").read_text()
    assert "OVER the limit of 60 s" in (tmp_path / "t.md").read_text()


def test_a_corrupt_benchmark_file_names_itself(tmp_path):
    build = _build(tmp_path / "b")
    (build / "key_claims.json").write_text("{not json")
    with pytest.raises(ValueError, match="key_claims.json is not valid JSON"):
        teacher.write_page(build, tmp_path / "teacher.md")
    assert teacher.main([str(build), "--out", str(tmp_path / "t.md")]) == 1


def test_the_page_says_how_to_regenerate_it_and_from_what(tmp_path):
    page = teacher.write_page(_build(tmp_path / "b"), tmp_path / "teacher.md", note="Quiet machine.").read_text()
    header = page[:page.index("-->")]
    assert page.startswith("<!--") and "--note 'Quiet machine.'" in header
    for name, producer in teacher.INPUTS:
        assert f"{tmp_path / 'b'}/{name}: {producer}" in header
        assert f"``build/{name}``" in teacher.__doc__ and producer.split()[0] in teacher.__doc__


def test_the_committed_page_carries_every_part_and_section():
    from pathlib import Path

    page = (Path(teacher.__file__).resolve().parents[2] / "docs" / "teacher.md").read_text()
    assert page.startswith("<!--\nGenerated by labkit/classroom/teacher.py")
    assert _missing_parts(page) == []
    assert all(heading + "\n" in page for heading in SECTIONS)
