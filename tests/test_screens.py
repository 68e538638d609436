"""benchmarks/screens.py opens the student edition of 00 and an executed notebook in JupyterLab under headless
Chromium and saves what a pair sees (issue 17, point 9). Skipped where Chromium is missing, except in CI."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("screens", ROOT / "benchmarks" / "screens.py")
screens = importlib.util.module_from_spec(spec)
spec.loader.exec_module(screens)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> str:
    found = screens.find_chromium()
    if found:
        return found
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail("CI=true but Chromium is missing: .ci/run installs Debian's 'chromium' package")
    pytest.skip("Chromium is not installed (apt-get install -y chromium); the screenshot test is skipped")


def executed_notebook(path: Path) -> Path:
    """A small notebook as a headless run saves it: a heading, printed text and a text progress bar."""
    cell = new_code_cell("print('hello')", execution_count=1)
    cell.outputs = [new_output("stream", name="stdout", text="hello\nsweep: 100%|##########| 300/300 [00:01<00:00]\n")]
    nb = new_notebook(cells=[new_markdown_cell("# 99 · A screenshot check"), cell])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_screens_of_the_student_edition_and_an_executed_notebook(chromium, tmp_path):
    out = tmp_path / "screens"
    result = screens.take_screens(out, executed_notebook(tmp_path / "99_check.ipynb"), chromium,
                                  heights={"first": 900})
    assert json.loads((out / "screens.json").read_text()) == result
    for name in ("student-00", "executed"):
        record = result["screens"][name]
        assert record["loaded"], f"JupyterLab did not show {record['notebook']} as a notebook"
        assert png_size(out / record["screens"]["first"]) == (screens.WIDTH, 900)
        assert record["stderr_outputs"] == 0 and record["error_outputs"] == 0
        assert not record["news_prompt"], "JupyterLab asked about Jupyter news: the shipped settings did not apply"
    assert (out / result["screens"]["student-00"]["screens"]["first"]).stat().st_size > 20_000   # not a blank page
