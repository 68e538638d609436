"""Progress bars in executed notebooks are saved in their final state, as text (issue 17, point 8)."""

from __future__ import annotations

import re

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from labkit.classroom.runner import run_notebooks
from labkit.progress import TextProgress

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_a_text_bar_prints_its_final_state_once_on_stdout(capsys):
    with TextProgress(total=300, desc="demo", unit="step") as bar:
        for _ in range(300):
            bar.update(1)
    for _ in TextProgress(range(5), desc="inner", leave=False):   # an inner bar vanishes, as in a live notebook
        pass
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and out.startswith("demo: 100%") and "300/300" in out
    assert err == ""


def test_executed_notebook_keeps_the_bars_final_count_as_text_not_a_widget(tmp_path):
    nb = new_notebook(cells=[
        new_code_cell("from tqdm.auto import tqdm, trange   # imported before labkit, as ART's modules do"),
        new_code_cell("for i in tqdm(range(300), desc='eps sweep'):\n    pass"),
        new_code_cell("for i in trange(7, desc='rounds'):\n    pass"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "10_bars.ipynb")
    run_notebooks([tmp_path / "10_bars.ipynb"], out=tmp_path / "out", fast=True, progress=False)
    executed = nbformat.read(tmp_path / "out" / "notebooks" / "10_bars.ipynb", as_version=4)
    sweep, rounds = executed.cells[1].outputs, executed.cells[2].outputs
    assert [o.get("name") for o in sweep] == ["stdout"] and "eps sweep: 100%" in sweep[0]["text"]
    assert "300/300" in sweep[0]["text"] and "7/7" in rounds[0]["text"]
    saved = nbformat.writes(executed)
    assert WIDGET_VIEW not in saved and not re.search(r"\b0/300", saved) and " 0%" not in saved
