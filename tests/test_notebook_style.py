"""What a pair reads at a 1,400 px window: code lines that fit the cell, a report table that aligns
(issue 17, point 5)."""

from __future__ import annotations

from html.parser import HTMLParser

import nbformat
import pytest

from labkit.classroom import report
from labkit.classroom.runner import lab_notebooks

from test_report import FULL

MAX_LINE = 100   # characters of code a notebook cell shows without scrolling at a 1,400 px window


@pytest.mark.parametrize("path", lab_notebooks(), ids=lambda p: p.stem)
def test_code_lines_fit_the_cell(path):
    nb = nbformat.read(path, as_version=4)
    long = [f"{cell.get('id')}: {len(line)} characters: {line.strip()[:60]}..."
            for cell in nb.cells if cell.cell_type == "code"
            for line in cell.source.splitlines() if len(line) > MAX_LINE]
    assert long == [], f"{path.name}: code lines over {MAX_LINE} characters run off the cell"


class _Cells(HTMLParser):
    """Collect (tag, style, text) of every th/td of a table."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[list] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("th", "td"):
            self.cells.append([tag, dict(attrs).get("style", ""), ""])

    def handle_data(self, data):
        if self.cells:
            self.cells[-1][2] += data


def test_report_table_aligns_text_left_numbers_right_and_keeps_scenario_names_on_one_line():
    parser = _Cells()
    parser.feed(report.show_table(report.report_table(FULL), FULL).to_html())
    heads = [text for tag, _, text in parser.cells if tag == "th"]
    rows = [parser.cells[i:i + len(heads)] for i in range(len(heads), len(parser.cells), len(heads))]
    numbers = {"clean accuracy", "accuracy under attack", "attack success", "Δ clean vs baseline",
               "Δ attack success vs undefended"}
    assert numbers <= set(heads) and {"scenario", "notes", "status"} <= set(heads)
    for row in rows:
        for head, (_, style, text) in zip(heads, row):
            assert ("text-align: right" if head in numbers else "text-align: left") in style, (head, text)
        assert "white-space: nowrap" in row[heads.index("scenario")][1]
    assert any(text == "0.230" for _, _, text in parser.cells)
