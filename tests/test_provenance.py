"""Provenance: every recorded number says which edition, run, notebook, time, labkit version and group produced it;
the student edition records into its own store; the report's group claims its store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import labkit
from labkit import provenance
from labkit.classroom import report
from labkit.metrics import claim_group, load_store, metrics_path
from labkit.paths import notebooks_dir
from test_runner import _notebook  # a notebook file of code cells, as the runner's tests write them


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """A pair's kernel: no LABKIT_OUT / LABKIT_EDITION / run id / notebook / group, working in an empty folder."""
    for name in ("LABKIT_OUT", provenance.EDITION_ENV, provenance.RUN_ID_ENV, provenance.NOTEBOOK_ENV,
                 "LABKIT_GROUP", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_number_carries_its_provenance(monkeypatch, build_dir):
    monkeypatch.setenv(provenance.RUN_ID_ENV, "run-42")
    monkeypatch.setenv(provenance.NOTEBOOK_ENV, "/somewhere/03_backdoor_poisoning.ipynb")
    monkeypatch.setenv("LABKIT_GROUP", "G07: Ada Lovelace; Alan Turing")
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    labkit.record("backdoor.attack_success_rate", 0.99)
    entry = load_store().provenance["backdoor.attack_success_rate"]
    assert entry["edition"] == "student" and entry["run_id"] == "run-42" and entry["group"] == "G07"
    assert entry["notebook"] == "03_backdoor_poisoning.ipynb" and entry["labkit"] == labkit.__version__
    assert before <= dt.datetime.fromisoformat(entry["time"]) <= dt.datetime.now(dt.timezone.utc)


def test_edition_is_the_key_only_for_the_solution_notebooks(monkeypatch, no_env):
    monkeypatch.setenv(provenance.NOTEBOOK_ENV, str(notebooks_dir() / "03_backdoor_poisoning.ipynb"))
    assert provenance.edition() == "key"
    monkeypatch.setenv(provenance.NOTEBOOK_ENV, str(no_env / "lab" / "03_backdoor_poisoning.ipynb"))
    assert provenance.edition() == "student"
    monkeypatch.delenv(provenance.NOTEBOOK_ENV)
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebooks_dir() / "05_report.ipynb"))   # a Jupyter server's kernel
    assert provenance.edition() == "key" and provenance.notebook_path().name == "05_report.ipynb"
    monkeypatch.setenv(provenance.EDITION_ENV, "student")
    assert provenance.edition() == "student"
    monkeypatch.setenv(provenance.EDITION_ENV, "teacher")
    with pytest.raises(ValueError, match="LABKIT_EDITION must be 'key' or 'student'"):
        provenance.edition()


def test_an_interactive_kernel_has_one_run_id_per_session(no_env):
    assert provenance.run_id() == provenance.run_id() and len(provenance.run_id()) == 12
    assert provenance.current()["notebook"] == "unknown"


def _checkout(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    (root / "labkit").mkdir()
    return root


def test_the_student_edition_records_into_its_own_store_never_the_keys(monkeypatch, no_env):
    root = _checkout(no_env / "checkout")
    (root / "build").mkdir()
    key_store = root / "build" / "metrics.json"
    key_store.write_text(json.dumps({"baseline.clean_accuracy": 0.97}))
    student = root / "build" / "student"
    student.mkdir()
    monkeypatch.chdir(student)                          # the student edition inside a checkout where make lab ran
    assert metrics_path() == root / "build" / "student-run" / "metrics.json"
    assert labkit.load_metrics() == {}                  # the key's numbers are not the pair's
    labkit.record("baseline.clean_accuracy", 0.5)
    assert json.loads(key_store.read_text()) == {"baseline.clean_accuracy": 0.97}
    monkeypatch.setenv(provenance.NOTEBOOK_ENV, str(root / "notebooks" / "00_setup.ipynb"))
    assert metrics_path() == key_store                  # the solution key keeps build/metrics.json
    monkeypatch.delenv(provenance.NOTEBOOK_ENV)
    monkeypatch.chdir(no_env)                           # a copy of the lab outside any checkout
    assert metrics_path() == no_env / "build" / "student-run" / "metrics.json"


def test_the_group_cell_claims_the_store_and_a_copied_store_shows_whose_it_was(monkeypatch, build_dir):
    labkit.record("baseline.clean_accuracy", 0.9)
    monkeypatch.setenv("LABKIT_FAST", "0")
    report.check_group("G01", [("Ada Lovelace", "s1")])
    store = load_store()
    assert store.group == "G01" and store.provenance["baseline.clean_accuracy"]["group"] == "G01"
    labkit.record("baseline.fgsm_accuracy", 0.2)        # later numbers are the group's too
    assert load_store().provenance["baseline.fgsm_accuracy"]["group"] == "G01"
    before = metrics_path().stat().st_mtime_ns
    lock = Path(str(metrics_path()) + ".lock")
    lock.unlink(missing_ok=True)
    report.check_group("G02", [("Barbara Liskov", "s2")])   # another group runs its report on the copied store
    assert metrics_path().stat().st_mtime_ns == before and not lock.exists()   # left as it was, no lock file
    store = load_store()
    table = report.report_table(store.metrics, store.provenance, group_id="G02", edition="student")
    assert table.loc["baseline", "run"] == "group G01's run"
    assert report.origin_problems(table)[0].startswith("numbers from group G01's run (3 rows): baseline")


def test_claiming_a_missing_store_creates_nothing(build_dir):
    claim_group("G01")
    assert not metrics_path().exists()


def test_labkit_run_gives_one_run_id_and_names_each_notebook(tmp_path, monkeypatch):
    from labkit.classroom.runner import run_notebooks

    monkeypatch.delenv("LABKIT_GROUP", raising=False)
    first = _notebook(tmp_path / "10_first.ipynb", "import labkit", "labkit.record('demo.first', 1)")
    second = _notebook(tmp_path / "11_second.ipynb", "import labkit", "labkit.record('demo.second', 2)")
    out = tmp_path / "out"
    run_notebooks([first, second], out=out, progress=False)
    entries = load_store(out / "metrics.json").provenance
    assert entries["demo.first"]["notebook"] == "10_first.ipynb"
    assert entries["demo.second"]["notebook"] == "11_second.ipynb"
    assert entries["demo.first"]["run_id"] == entries["demo.second"]["run_id"] != provenance.run_id()
    assert entries["demo.first"]["edition"] == "student"      # not a notebook of the solution key
    assert entries["demo.first"]["group"] == "demo"           # labkit run's demo group


def test_origin_reads_a_handed_in_entry_as_untrusted_data():
    assert provenance.origin({"edition": "student", "group": "G01"}, group_id="g01") == provenance.OWN_RUN
    assert provenance.origin({"edition": "student", "group": "X" * 10_000}, group_id="G01") == f"group {'X' * 40}'s run"
    assert provenance.origin({"edition": "student", "group": {"a": 1}}, group_id="G01") == provenance.OWN_RUN
    for junk in (None, "key", ["key"], {"edition": "admin"}, {"edition": ["key"]}):
        assert provenance.origin(junk, group_id="G01") == "no run"
    assert provenance.origin({"edition": "key"}, edition="student") == "the key's run"
