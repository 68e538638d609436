"""The report table, the group check and the report notebook (05_report.ipynb)."""

from __future__ import annotations

import json
import math

import nbformat
import pytest

import labkit
from labkit.classroom import report
from labkit.paths import notebooks_dir

FULL = {
    "baseline.clean_accuracy": 0.97, "evasion.eps": 0.15, "baseline.fgsm_accuracy": 0.23, "baseline.pgd_accuracy": 0.13,
    "adversarial_training.clean_accuracy": 0.965, "adversarial_training.fgsm_accuracy": 0.72,
    "adversarial_training.pgd_accuracy": 0.6, "madry.clean_accuracy": 0.96, "madry.fgsm_accuracy": 0.75,
    "madry.pgd_accuracy": 0.67, "reactive.clean_accuracy": 0.95, "reactive.fgsm_accuracy": 0.64,
    "reactive.pgd_accuracy": 0.5, "backdoor.clean_accuracy": 0.96, "backdoor.attack_success_rate": 0.99,
    "backdoor.poison_fraction": 0.1, "backdoor.target_class": 0, "neural_cleanse.flagged_classes": [0],
    "neural_cleanse.clean_model_flagged_classes": [], "neural_cleanse.anomaly_index": [3.2] + [0.5] * 9,
    **{f"neural_cleanse.mitigations.{m}.{k}": v for m, (ca, asr) in
       {"unlearning": (0.955, 0.02), "pruning": (0.94, 0.3), "filtering": (0.92, 0.04)}.items()
       for k, v in (("clean_accuracy", ca), ("attack_success_rate", asr))},
    "neural_cleanse.mitigations.filtering.clean_abstain_rate": 0.06,
    "neural_cleanse.mitigations.filtering.triggered_abstain_rate": 0.93,
}


@pytest.fixture
def class_setting(monkeypatch, tmp_path):
    """A student's session: no demo group, not the fast setting, an empty build folder."""
    monkeypatch.delenv(report.GROUP_ENV, raising=False)
    monkeypatch.setenv("LABKIT_FAST", "0")
    monkeypatch.setenv("LABKIT_OUT", str(tmp_path))
    return tmp_path


def test_full_table_holds_the_recorded_numbers():
    table = report.report_table(FULL)
    assert table.loc["baseline · FGSM", "accuracy under attack"] == FULL["baseline.fgsm_accuracy"]
    assert table.loc["baseline · FGSM", "attack success"] == pytest.approx(1 - FULL["baseline.fgsm_accuracy"])
    row = table.loc["adversarial training (FGSM) · PGD"]
    assert row["clean accuracy"] == FULL["adversarial_training.clean_accuracy"]
    assert row["Δ clean vs baseline"] == pytest.approx(0.965 - 0.97)
    assert row["Δ attack success vs undefended"] == pytest.approx((1 - 0.6) - (1 - 0.13))
    unlearning = table.loc["Neural Cleanse unlearning · trigger"]
    assert unlearning["attack success"] == 0.02
    assert unlearning["Δ attack success vs undefended"] == pytest.approx(0.02 - 0.99)
    assert table.loc["backdoored model · trigger", "attack success"] == 0.99
    assert "poison 10%" in table.loc["backdoored model · trigger", "notes"]
    core = [name for name in table.index if table.loc[name, "notebook"] < "05"]
    assert len(core) == 13 and (table.loc[core, "status"] == "ok").all()
    assert report.missing_notebooks(table) == []


def test_every_scenario_of_the_issue_has_a_row():
    names = list(report.report_table(FULL).index)
    for expected in ["baseline", "baseline · FGSM", "baseline · PGD", "adversarial training (FGSM) · FGSM",
                     "Madry PGD training · PGD", "reactive defence · FGSM", "backdoored model · trigger",
                     "Neural Cleanse unlearning · trigger", "Neural Cleanse pruning · trigger",
                     "Neural Cleanse filtering · trigger"]:
        assert expected in names


def test_empty_store_names_the_notebooks_to_run_instead_of_crashing():
    table = report.report_table({})
    assert table["clean accuracy"].isna().all()
    assert table.loc["baseline", "status"] == "missing: run 00_setup.ipynb"
    assert "01_evasion_fgsm.ipynb" in table.loc["baseline · PGD", "status"]
    assert table.loc["Neural Cleanse pruning · trigger", "status"] == "missing: run 04_neural_cleanse.ipynb"
    assert report.missing_notebooks(table) == ["00_setup.ipynb", "01_evasion_fgsm.ipynb",
                                               "02_adversarial_training.ipynb", "03_backdoor_poisoning.ipynb",
                                               "04_neural_cleanse.ipynb"]
    assert table.loc["model extraction", "status"] == "not run (06_model_extraction.ipynb)"
    assert table.loc["availability poisoning", "status"] == "not run (09_availability_poisoning.ipynb)"


def test_a_missing_notebook_only_affects_its_rows():
    partial = {k: v for k, v in FULL.items() if not k.startswith(("madry.", "reactive.", "adversarial_training."))}
    table = report.report_table(partial)
    assert report.missing_notebooks(table) == ["02_adversarial_training.ipynb"]
    assert math.isnan(table.loc["Madry PGD training · FGSM", "Δ attack success vs undefended"])
    assert table.loc["baseline · PGD", "status"] == "ok"


def test_extension_rows_appear_when_their_numbers_exist():
    metrics = {**FULL, "extraction.jacobian.agreement": 0.84, "extraction.jacobian.queries": 1800,
               "extraction.jacobian.transfer_attack_accuracy": 0.41, "membership.overfitted.attack_accuracy": 0.66,
               "membership.overfitted.auc": 0.71, "membership.overfitted.model_accuracy": 0.9,
               "availability.svm.accuracy_drop": 0.12, "availability.svm.accuracy": 0.81,
               "availability.poison_fraction": 0.03}
    table = report.report_table(metrics)
    extraction = table.loc["model extraction (jacobian) · transfer FGSM"]
    assert extraction["accuracy under attack"] == 0.41 and "queries 1800" in extraction["notes"]
    assert table.loc["membership inference (overfitted)", "attack success"] == 0.66
    availability = table.loc["availability poisoning (svm)"]
    assert availability["Δ clean vs baseline"] == pytest.approx(-0.12)   # against its own SVM, not the CNN
    assert availability["clean accuracy"] == 0.81 and availability["status"] == "ok"
    assert "drop vs its own clean SVM 0.12" in availability["notes"] and "poison 3%" in availability["notes"]
    assert table.loc["clean-label poisoning (Poison Frogs)", "status"].startswith("not run")
    assert "model extraction" not in table.index


def test_show_table_carries_a_machine_readable_copy_and_plain_html():
    provenance = {"baseline.clean_accuracy": {"edition": "student", "run_id": "r1", "group": "G07"}}
    table = report.report_table(FULL, provenance, group_id="G07", edition="student")
    bundle = report.show_table(table, FULL)._repr_mimebundle_()
    assert bundle[report.METRICS_MIME]["metrics"] == FULL
    assert json.loads(json.dumps(bundle[report.METRICS_MIME])) == {  # storable in a notebook
        "metrics": FULL, "provenance": provenance, "edition": "student", "group_id": "G07"}
    assert "<table" in bundle["text/html"] and "<script" not in bundle["text/html"]
    assert "0.230" in bundle["text/html"] and "—" in bundle["text/html"]


def test_tradeoff_plot_draws_one_point_per_scenario_with_both_numbers():
    import matplotlib

    matplotlib.use("Agg")
    table = report.report_table(FULL)
    fig = report.tradeoff_plot(table)
    expected = table.dropna(subset=["clean accuracy", "attack success"])
    assert len(fig.axes[0].collections) == len(expected) == 12
    empty = report.tradeoff_plot(report.report_table({}))
    assert len(empty.axes[0].collections) == 0 and "run notebooks" in empty.axes[0].texts[0].get_text()


def test_metric_order_puts_the_core_keys_first():
    keys = report.metric_order(["zzz.other", "membership.m.auc", "backdoor.target_class", "baseline.clean_accuracy"])
    assert keys == ["baseline.clean_accuracy", "backdoor.target_class", "membership.m.auc", "zzz.other"]
    assert report.notebook_for("baseline.clean_accuracy") == "00_setup.ipynb"
    assert report.notebook_for("baseline.pgd_accuracy") == "01_evasion_fgsm.ipynb"
    assert report.notebook_for("neural_cleanse.mitigations.pruning.clean_accuracy") == "04_neural_cleanse.ipynb"


def test_check_group_accepts_a_filled_in_group(class_setting):
    group = report.check_group(" G07 ", ["Ada Lovelace", "Alan Turing"])
    assert group == report.Group("G07", ("Ada Lovelace", "Alan Turing"))
    assert group._repr_mimebundle_()[report.GROUP_MIME] == {"group_id": "G07", "members": ["Ada Lovelace",
                                                                                              "Alan Turing"],
                                                            "ids": ["", ""], "demo": False}


def test_members_with_student_ids(class_setting):
    group = report.check_group("G07", [("Ada Lovelace", "s1234567"), ["Alan Turing", " s7654321 "]])
    assert group.members == ("Ada Lovelace", "Alan Turing") and group.ids == ("s1234567", "s7654321")
    assert group._repr_mimebundle_()[report.GROUP_MIME]["ids"] == ["s1234567", "s7654321"]
    assert "Ada Lovelace (s1234567)" in str(group)
    with pytest.raises(report.GroupMissingError, match="student id of Alan Turing"):
        report.check_group("G07", [("Ada Lovelace", "s1234567"), ("Alan Turing", "")])
    with pytest.raises(report.GroupMissingError, match=r"\(\"Full Name\", \"student id\"\)"):
        report.check_group("G07", [("Ada Lovelace", "s1", "extra")])
    assert report.parse_group("G01: Ada Lovelace (s1); Alan Turing").ids == ("s1", "")


@pytest.mark.parametrize("group_id, members, says", [
    ("", ["", ""], "GROUP_ID"), ("G07", ["Ada Lovelace", ""], "MEMBERS"), ("", ["Ada", "Alan"], "GROUP_ID"),
    ("G07", [], "MEMBERS"), ("G07", "Ada and Alan", "must be a list"),
])
def test_check_group_stops_with_a_clear_message_when_empty(class_setting, group_id, members, says):
    with pytest.raises(report.GroupMissingError, match=says):
        report.check_group(group_id, members)


def test_headless_runs_get_a_marked_demo_group(class_setting, monkeypatch):
    monkeypatch.setenv(report.GROUP_ENV, "G00: Grace Hopper; Edsger Dijkstra")
    group = report.check_group("", ["", ""])
    assert group == report.Group("G00", ("Grace Hopper", "Edsger Dijkstra"), demo=True)
    assert report.check_group("G07", ["Ada"]).demo is False  # a filled-in cell wins over the environment
    monkeypatch.delenv(report.GROUP_ENV)
    monkeypatch.setenv("LABKIT_FAST", "1")
    assert report.check_group("", ["", ""]).demo is True
    with pytest.raises(ValueError, match="LABKIT_GROUP"):
        report.parse_group("no colon here")


def _report_notebook():
    return nbformat.read(notebooks_dir() / "05_report.ipynb", as_version=4)


def test_the_report_notebook_tags_its_graded_cells_and_is_stripped():
    nb = _report_notebook()
    tagged = [c for c in nb.cells if report.REPORT_TAG in c.metadata.get("tags", [])]
    sources = "\n".join(c.source for c in tagged)
    for needle in ("check_group(GROUP_ID, MEMBERS)", "show_table(", "tradeoff_plot(", "Question 1"):
        assert needle in sources
    answers = [c for c in tagged if report.ANSWER_TAG in c.metadata.get("tags", [])]
    assert len(answers) >= 3 and all(c.cell_type == "markdown" for c in answers)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def _execute(nb, tmp_path):
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=300, startup_timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(notebooks_dir())}}).execute()
    return nb


def test_report_notebook_runs_on_an_empty_store(class_setting, monkeypatch):
    monkeypatch.setenv(report.GROUP_ENV, "G00: Grace Hopper; Edsger Dijkstra")
    nb = _execute(_report_notebook(), class_setting)
    text = json.dumps([c.get("outputs") for c in nb.cells if c.cell_type == "code"])
    assert "Numbers are missing: run 00_setup.ipynb" in text
    assert "not run (06_model_extraction.ipynb)" in text
    assert "image/png" in text


def test_report_notebook_stops_at_an_empty_group_cell(class_setting):
    from nbclient.exceptions import CellExecutionError

    (class_setting / "metrics.json").write_text(json.dumps(FULL))
    with pytest.raises(CellExecutionError, match="Fill in GROUP_ID"):
        _execute(_report_notebook(), class_setting)
    assert labkit.load_metrics(class_setting / "metrics.json") == FULL


def test_notes_name_the_classes_neural_cleanse_flags():
    table = report.report_table({**FULL, "neural_cleanse.flagged_classes": [0, 3]})
    assert "Neural Cleanse flags classes 0, 3" in table.loc["backdoored model · trigger", "notes"]
    assert "Neural Cleanse flags class 0" in report.report_table(FULL).loc["backdoored model · trigger", "notes"]
    assert "Neural Cleanse flags none" in table.loc["baseline", "notes"]


def _entry(edition="student", group=None):
    return {"edition": edition, "run_id": "r1", "notebook": "03_backdoor_poisoning.ipynb", "time": "t",
            "labkit": "0.1.0", "group": group}


def test_run_column_says_whose_run_produced_each_row_and_the_points_follow():
    own = {k: _entry(group="G07") for k in FULL}
    table = report.report_table(FULL, own, group_id="G07", edition="student")
    assert (table.loc[list(report.CORE_ROWS), "run"] == "own run").all()
    assert report.table_points(table) == 2 and report.origin_problems(table) == []
    mixed = {**own, "backdoor.attack_success_rate": _entry("key"), "madry.pgd_accuracy": _entry(group="G03")}
    table = report.report_table(FULL, mixed, group_id="G07", edition="student")
    assert table.loc["backdoored model · trigger", "run"] == "the key's run"
    assert table.loc["Madry PGD training · PGD", "run"] == "group G03's run"
    assert table.loc["baseline", "run"] == "own run"
    assert report.table_points(table) == 1   # 11 of 13 core rows are the pair's own
    problems = report.origin_problems(table)
    assert "numbers from the key's run (1 row): backdoored model · trigger" in problems
    assert "numbers from group G03's run (1 row): Madry PGD training · PGD" in problems
    key_run = report.report_table(FULL, {k: _entry("key", "demo") for k in FULL}, group_id="G07", edition="student")
    assert report.table_points(key_run) == 0 and report.origin_problems(key_run)[0].startswith(
        "numbers from the key's run (13 rows)")
    assert report.report_table(FULL, {k: _entry("key", "demo") for k in FULL}, group_id="demo",
                               edition="key").loc["baseline", "run"] == "own run"   # the key's own report
    no_run = report.report_table(FULL, {}, group_id="G07", edition="student")
    assert report.table_points(no_run) == 0 and report.origin_problems(no_run)[0].startswith("numbers from no run")
    assert report.table_points(report.report_table({}, {}, group_id="G07", edition="student")) == 0


def test_the_report_notebook_grades_the_table_in_an_nbgrader_cell_and_asks_for_student_ids():
    nb = _report_notebook()
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    table_cell = next(c for c in graded if c.cell_type == "code")
    assert "report.table_points(table)" in table_cell.source and table_cell.metadata["nbgrader"]["locked"]
    assert table_cell.metadata["nbgrader"]["points"] == report.TABLE_POINTS
    group_cell = next(c for c in nb.cells if "check_group(GROUP_ID, MEMBERS)" in c.source)
    assert 'MEMBERS = [("", ""), ("", "")]' in group_cell.source
