"""The gradebook for an LMS: one row per student with rubric points, self-check status, total and problems; the
raw numbers in metrics.csv under a fixed header; provenance problems; the rubric equals the notebook's grade cells."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import labkit
from labkit.classroom import export, gradebook, report
from labkit.paths import notebooks_dir

FULL = {
    "baseline.clean_accuracy": 0.97, "evasion.eps": 0.15, "baseline.fgsm_accuracy": 0.23, "baseline.pgd_accuracy": 0.13,
    **{f"{p}.{k}": 0.6 for p in ("adversarial_training", "madry", "reactive")
       for k in ("clean_accuracy", "fgsm_accuracy", "pgd_accuracy")},
    "backdoor.clean_accuracy": 0.96, "backdoor.attack_success_rate": 0.99, "backdoor.poison_fraction": 0.1,
    "backdoor.target_class": 0, "neural_cleanse.flagged_classes": [0], "neural_cleanse.clean_model_flagged_classes": [],
    **{f"neural_cleanse.mitigations.{m}.{k}": 0.5 for m in ("unlearning", "pruning", "filtering")
       for k in ("clean_accuracy", "attack_success_rate")},
    "neural_cleanse.mitigations.filtering.clean_abstain_rate": 0.06,
    "neural_cleanse.mitigations.filtering.triggered_abstain_rate": 0.93,
    "check.fgsm_attack": "pass", "check.poisoned_data": "hint",
}
ADA, ALAN = ("Ada Lovelace", "s1234567"), ("Alan Turing", "s7654321")


def provenance(metrics, edition="student", group="G01"):
    return {k: {"edition": edition, "run_id": "r1", "notebook": "x.ipynb", "group": group} for k in metrics}


def submission(group_id="G01", members=(ADA, ALAN), metrics=None, prov=None) -> nbformat.NotebookNode:
    """Return a handed-in report as a pair's run of 05_report.ipynb saves it (outputs included)."""
    metrics = FULL if metrics is None else metrics
    prov = provenance(metrics, group=group_id) if prov is None else prov
    names = [m[0] if isinstance(m, tuple) else m for m in members]
    ids = [m[1] if isinstance(m, tuple) else "" for m in members]
    group = report.Group(group_id, tuple(names), ids=tuple(ids))
    group_cell = new_code_cell(f"GROUP_ID = {group_id!r}\nMEMBERS = {list(members)!r}\n"
                               "group = report.check_group(GROUP_ID, MEMBERS)\ngroup",
                               outputs=[new_output("execute_result", data=group._repr_mimebundle_(), execution_count=1)])
    table = report.report_table(metrics, prov, group_id=group_id, edition="student")
    table_cell = new_code_cell("report.show_table(table, metrics)", outputs=[new_output(
        "execute_result", data=report.show_table(table, metrics)._repr_mimebundle_(), execution_count=2)])
    cells = [group_cell, table_cell, new_markdown_cell("We would deploy Madry's training.")]
    for cell in cells:
        cell.metadata["tags"] = ["report"]
    cells[-1].metadata["tags"].append("answer")
    return new_notebook(cells=cells)


def export_class(tmp_path: Path, notebooks: dict[str, nbformat.NotebookNode]) -> tuple[list[dict], list[dict]]:
    for name, nb in notebooks.items():
        (tmp_path / "class").mkdir(exist_ok=True)
        nbformat.write(nb, tmp_path / "class" / name)
    export.export_submissions(tmp_path / "class", tmp_path / "out", echo=None)
    return read_csv(tmp_path / "out" / "gradebook.csv"), read_csv(tmp_path / "out" / "metrics.csv")


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_two_member_group_yields_two_rows_with_ids_points_checks_and_total(tmp_path):
    rows, _ = export_class(tmp_path, {"g01.ipynb": submission()})
    assert [(r["Student"], r["SIS User ID"], r["group"]) for r in rows] == [
        ("Ada Lovelace", "s1234567", "G01"), ("Alan Turing", "s7654321", "G01")]
    for row in rows:
        assert row["report-table (2 pts)"] == "2" and row["report-q1 (2 pts)"] == ""   # answers: the teacher's
        assert row[f"total ({gradebook.RUBRIC_TOTAL} pts)"] == "2" and row["problems"] == ""
        assert row["check fgsm_attack"] == "pass" and row["check poisoned_data"] == "hint"
        assert row["check chosen_mitigation"] == "not run"


def test_gradebook_header_is_the_lms_identity_columns_then_rubric_checks_total_problems(tmp_path):
    export_class(tmp_path, {"g01.ipynb": submission()})
    with (tmp_path / "out" / "gradebook.csv").open(newline="") as handle:
        header = next(csv.reader(handle))
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    rubric = [f"{item.grade_id} ({item.points} pts)" for item in gradebook.RUBRIC]
    assert header[len(gradebook.IDENTITY_COLUMNS):][:len(rubric)] == rubric
    checks = [h for h in header if h.startswith("check ")]
    assert checks == [f"check {name}" for name in gradebook.exercise_checks()] and len(checks) >= 10
    assert header[-2:] == [f"total ({gradebook.RUBRIC_TOTAL} pts)", "problems"]


def test_a_report_from_the_keys_run_submitted_as_a_pairs_is_flagged_and_scores_nothing(tmp_path):
    key_run = submission(prov=provenance(FULL, edition="key", group="demo"))
    other = submission("G02", (("Barbara Liskov", "s2"),), prov=provenance(FULL, group="G01"))
    never = submission("G03", (("Donald Knuth", "s3"),), prov={})
    rows, _ = export_class(tmp_path, {"key.ipynb": key_run, "copied.ipynb": other, "old.ipynb": never})
    by_file = {r["file"]: r for r in rows}
    assert "numbers from the key's run (13 rows)" in by_file["key.ipynb"]["problems"]
    assert by_file["key.ipynb"]["report-table (2 pts)"] == "0"
    assert by_file["key.ipynb"]["check fgsm_attack"] == "pass (the key's run)"
    assert "numbers from group G01's run (13 rows)" in by_file["copied.ipynb"]["problems"]
    assert "numbers from no run (13 rows)" in by_file["old.ipynb"]["problems"]
    assert {r["report-table (2 pts)"] for r in rows} == {"0"}


def test_plain_names_without_ids_still_read(tmp_path):
    rows, _ = export_class(tmp_path, {"a.ipynb": submission(members=("Ada Lovelace", "Alan Turing"))})
    assert [(r["Student"], r["SIS User ID"]) for r in rows] == [("Ada Lovelace", ""), ("Alan Turing", "")]


def test_never_run_report_reads_names_and_ids_from_source(tmp_path):
    nb = submission()
    for cell in nb.cells:
        cell.pop("outputs", None) if cell.cell_type == "markdown" else cell.update(outputs=[])
    sub = export.read_submission(_write(tmp_path / "n.ipynb", nb), tmp_path)
    assert sub.members == ["Ada Lovelace", "Alan Turing"] and sub.group_id == "G01"
    header, rows = gradebook.gradebook_rows([sub], checks=[])
    assert [r[0] for r in rows] == ["Ada Lovelace", "Alan Turing"] and rows[0][header.index("report-table (2 pts)")] == 0


def _write(path: Path, nb) -> Path:
    nbformat.write(nb, path)
    return path


def test_text_cannot_start_a_spreadsheet_formula(tmp_path):
    rows, metric_rows = export_class(tmp_path, {"f.ipynb": submission("=1+1", (("@SUM(A1)", "-2+3"), ("Eve", "e1")))})
    assert rows[0]["group"] == "'=1+1" and rows[0]["Student"] == "'@SUM(A1)" and rows[0]["SIS User ID"] == "'-2+3"
    assert metric_rows[0]["group"] == "'=1+1"


def test_metrics_csv_has_a_fixed_quoted_validated_header(tmp_path):
    flood = {**FULL, **{f"zz.k{i}": i for i in range(20_000)}, "group": "x", "file": "y",
             **{f"membership.m{i}.auc": 0.5 for i in range(400)}}
    _, metric_rows = export_class(tmp_path, {"a.ipynb": submission(), "b.ipynb": submission("G02", metrics=flood)})
    text = (tmp_path / "out" / "metrics.csv").read_text()
    header_line = text.splitlines()[0]
    header = next(csv.reader([header_line]))
    assert header_line == ",".join(f'"{h}"' for h in header)         # every header cell quoted
    assert header[:2] == ["group", "file"] and len(header) == len(set(header))
    assert len(header) - 2 <= gradebook.MAX_METRIC_COLUMNS and not any(h.startswith("zz.") for h in header)
    assert header[2:2 + len(report.CORE_KEYS)] == list(report.CORE_KEYS)
    row = next(r for r in metric_rows if r["file"] == "a.ipynb")
    for key in report.CORE_KEYS:
        assert (json.loads(row[key]) if row[key] else None) == FULL.get(key), key
    assert row["group"] == "G01" and len(metric_rows) == 2   # one row per group


def test_rubric_equals_the_report_notebooks_grade_cells_and_the_teachers_page():
    from labkit.classroom import teacher

    nb = nbformat.read(notebooks_dir() / "05_report.ipynb", as_version=4)
    graded = [(c.metadata["nbgrader"]["grade_id"], c.metadata["nbgrader"]["points"]) for c in nb.cells
              if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded == [(item.grade_id, item.points) for item in gradebook.RUBRIC]
    assert sum(points for _, points in graded) == gradebook.RUBRIC_TOTAL == 10
    assert f"Total {gradebook.RUBRIC_TOTAL} points" in teacher.RUBRIC
    for item in gradebook.RUBRIC:
        assert f"`{item.grade_id}`" in teacher.RUBRIC


def test_labkit_run_of_the_key_exports_a_report_that_the_gradebook_flags(tmp_path, monkeypatch):
    from labkit.classroom.runner import run_notebooks

    monkeypatch.delenv(report.GROUP_ENV, raising=False)
    out = tmp_path / "build"
    monkeypatch.setenv("LABKIT_OUT", str(out))
    monkeypatch.setenv("LABKIT_EDITION", "key")
    monkeypatch.setenv("LABKIT_GROUP", "demo: Demo Student A; Demo Student B")
    store = {k: v for k, v in FULL.items() if not k.startswith("check.")}
    for key, value in store.items():
        labkit.record(key, value)
    monkeypatch.delenv("LABKIT_EDITION")
    run_notebooks(["05"], out=out, progress=False)
    rows = read_csv(out / "report" / "gradebook.csv")
    assert [r["Student"] for r in rows] == ["Demo Student A", "Demo Student B"]
    assert all("numbers from the key's run (13 rows)" in r["problems"] and "demo group" in r["problems"]
               for r in rows)
    assert rows[0]["report-table (2 pts)"] == "0"
    (metric_row,) = read_csv(out / "report" / "metrics.csv")
    for key, value in store.items():
        if key in metric_row:
            assert json.loads(metric_row[key]) == value, key
    executed = nbformat.read(out / "notebooks" / "05_report.ipynb", as_version=4)
    points = next(c for c in executed.cells if "table_points" in c.source)
    assert points.outputs[0]["data"]["text/plain"] == "2"   # in the key's own report, the rows are its own run


@pytest.mark.parametrize("choice, value", [("fix", "pass"), (None, "hint")])
def test_a_self_check_records_its_verdict_for_the_gradebook(choice, value, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("LABKIT_STRICT_CHECKS", "0")
    table = pd.DataFrame({"clean_accuracy": [0.9, 0.9], "attack_success_rate": [1.0, 0.1]}, index=["none", "fix"])
    labkit.check.chosen_mitigation(choice, table)
    assert labkit.load_metrics()["check.chosen_mitigation"] == value   # under the name the notebooks call


def test_saved_check_cell_outputs_give_the_status_when_the_submission_has_them(tmp_path):
    from labkit.check._base import NOT_YET, PASSED

    nb = submission()
    checks = [new_code_cell("labkit.check.fgsm_attack(attack, EPS)", outputs=[new_output(
                  "stream", name="stdout", text=f"{NOT_YET} fgsm_attack. Hint: look at eps\n")]),
              new_code_cell("labkit.check.pgd_attack(pgd, EPS)", outputs=[new_output(
                  "stream", name="stdout", text=f"{PASSED} pgd_attack\n")]),
              new_code_cell("labkit.check.chosen_mitigation(choice, table)")]
    for cell in checks:
        cell.metadata["tags"] = ["report"]
    nb.cells.extend(checks)
    rows, _ = export_class(tmp_path, {"a.ipynb": nb})
    assert rows[0]["check fgsm_attack"] == "hint"         # the saved cell wins over the store's "pass"
    assert rows[0]["check pgd_attack"] == "pass" and rows[0]["check chosen_mitigation"] == "not run"
    assert rows[0]["check poisoned_data"] == "hint"       # no such cell: the store's record
