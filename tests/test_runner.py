"""`labkit run`: executes notebooks headlessly, keeps executed copies, metrics and timings; notebooks are stripped."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import labkit
from labkit.cli import main
from labkit.classroom.runner import NotebookFailed, lab_notebooks, run_notebooks

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *sources: str) -> Path:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_run_executes_in_order_and_writes_metrics_timings_and_copies(tmp_path):
    first = _notebook(tmp_path / "10_first.ipynb", "import labkit", "labkit.record('demo.fast', labkit.is_fast())",
                      "print('hello from the kernel')")
    second = _notebook(tmp_path / "11_second.ipynb", "import labkit",
                       "labkit.record('demo.seen', labkit.get_metric('demo.fast'))")
    out = tmp_path / "out"
    timings = run_notebooks([first, second], out=out, fast=True, progress=False)
    assert list(timings) == ["10_first.ipynb", "11_second.ipynb"]
    assert labkit.load_metrics(out / "metrics.json") == {"demo.fast": True, "demo.seen": True}
    assert json.loads((out / "timings.json").read_text()).keys() == timings.keys()
    executed = nbformat.read(out / "notebooks" / "10_first.ipynb", as_version=4)
    assert "hello from the kernel" in executed.cells[2].outputs[0]["text"]
    assert nbformat.read(first, as_version=4).cells[2].outputs == []  # the source notebook is untouched
    # beside the solutions run, the student edition of every lab notebook, as the pairs get it
    assert sorted(p.name for p in (out / "student").glob("*.ipynb")) == [p.name for p in lab_notebooks()]


def test_a_failing_notebook_keeps_its_partial_copy(tmp_path):
    bad = _notebook(tmp_path / "12_bad.ipynb", "x = 1", "raise RuntimeError('boom')", "y = 2")
    with pytest.raises(NotebookFailed, match="12_bad.ipynb failed"):
        run_notebooks([bad], out=tmp_path / "out", progress=False)
    partial = nbformat.read(tmp_path / "out" / "notebooks" / "12_bad.ipynb", as_version=4)
    assert any(o.get("ename") == "RuntimeError" for o in partial.cells[1].outputs)
    assert "12_bad.ipynb" in json.loads((tmp_path / "out" / "timings.json").read_text())


def test_cli_names_the_available_notebooks_for_an_unknown_one(tmp_path, capsys):
    assert main(["run", "no_such_notebook", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no notebook 'no_such_notebook'" in err and "00_setup.ipynb" in err


def test_lab_notebooks_are_numbered_in_order_and_committed_stripped():
    notebooks = lab_notebooks(ROOT / "notebooks")
    assert notebooks and notebooks[0].name == "00_setup.ipynb"
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} carries outputs: strip it"
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "FAST" in tagged[0].source, f"{path.name} needs one tagged parameters cell"
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def test_labkit_run_writes_to_LABKIT_OUT_unless_told_otherwise(monkeypatch, tmp_path):
    from labkit import cli
    from labkit.classroom import runner

    seen = []
    monkeypatch.setattr(runner, "run_notebooks", lambda names, out, **kw: seen.append(str(out)) or {"00.ipynb": 1.0})
    monkeypatch.setenv("LABKIT_OUT", str(tmp_path / "env"))
    assert cli.main(["run", "00"]) == 0
    assert cli.main(["run", "00", "--out", str(tmp_path / "flag")]) == 0
    monkeypatch.delenv("LABKIT_OUT")
    assert cli.main(["run", "00"]) == 0
    assert seen == [str(tmp_path / "env"), str(tmp_path / "flag"), "build"]


def test_a_self_check_that_fails_on_the_solution_key_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_STRICT_CHECKS", raising=False)
    wrong = _notebook(tmp_path / "13_wrong.ipynb", "import labkit",
                      "labkit.check.chosen_mitigation(None, __import__('pandas').DataFrame("
                      "{'clean_accuracy': [0.9, 0.9], 'attack_success_rate': [1.0, 0.1]}, index=['none', 'fix']))")
    with pytest.raises(NotebookFailed, match="CheckFailed"):
        run_notebooks([wrong], out=tmp_path / "out", progress=False)
    monkeypatch.setenv("LABKIT_STRICT_CHECKS", "0")   # a teacher can relax it: the check then only prints its hint
    run_notebooks([wrong], out=tmp_path / "relaxed", progress=False)
