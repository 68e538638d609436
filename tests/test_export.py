"""The teacher's export: a round trip on submissions made here, the gradebook, sanitising, exit codes."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import struct
import zlib
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labkit.classroom import _sanitize as sanitize, export, report
from labkit.cli import main

METRICS = {"baseline.clean_accuracy": 0.9733333333333334, "evasion.eps": 0.15, "baseline.fgsm_accuracy": 0.23,
           "baseline.pgd_accuracy": 0.1288888888888889, "backdoor.attack_success_rate": 0.99,
           "backdoor.clean_accuracy": 0.9644444444444444, "backdoor.target_class": 0,
           "neural_cleanse.flagged_classes": [0], "membership.overfitted.auc": 0.71}
HOSTILE_MARKDOWN = """**Our answer** is <b>bold</b>.

<script>document.title = 'HACKED'; document.body.innerHTML = 'HACKED';</script>
<img src="x" onerror="document.title = 'HACKED'; document.body.innerHTML = 'HACKED';">
<img src="https://evil.example/track.png"> <a href="https://evil.example/phish">a link</a>
<a href="javascript:document.title='HACKED'">js link</a> <iframe src="https://evil.example/frame"></iframe>
<svg onload="document.title='HACKED'"><circle r="5"/></svg>
<meta http-equiv="refresh" content="0;url=https://evil.example">
<p style="background: url(https://evil.example/bg.png)" onclick="document.title='HACKED'">styled</p>
<form action="https://evil.example/post"><input name="q"></form> <base href="https://evil.example/">
<object data="https://evil.example/x.swf"></object> <link rel="stylesheet" href="https://evil.example/s.css">
"""
HOSTILE_HTML_OUTPUT = ('<table><tr><td onmouseover="document.title=\'HACKED\'">cell</td></tr></table>'
                       '<style>body { display: none }</style><script>document.title="HACKED"</script>'
                       '<img src="data:image/png;base64,bm90IGEgcG5n">')


def tiny_png(width: int = 40, height: int = 20, rgb: tuple[int, int, int] = (200, 30, 30)) -> str:
    """Return a small solid-colour PNG, base64-encoded, as notebooks store figures."""
    row = b"\x00" + bytes(rgb) * width
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


def _tagged(cell, *tags):
    cell.metadata["tags"] = list(tags)
    return cell


def report_notebook(group_id: str = "G01", members=("Ada Lovelace", "Alan Turing"), metrics=None, *,
                    run: bool = True, tags: bool = True, answers=None, extra=()) -> nbformat.NotebookNode:
    """Return a handed-in report notebook shaped like 05_report.ipynb, with outputs when ``run``."""
    metrics = METRICS if metrics is None else metrics
    tag = ("report",) if tags else ()
    group_cell = new_code_cell(f"GROUP_ID = {group_id!r}\nMEMBERS = {list(members)!r}\n\n"
                               "group = labkit.classroom.report.check_group(GROUP_ID, MEMBERS)\ngroup")
    table_cell = new_code_cell("labkit.classroom.report.show_table(table, metrics)")
    figure_cell = new_code_cell("fig = labkit.classroom.report.tradeoff_plot(table)\nplt.show()")
    if run:
        group = report.Group(group_id, tuple(members))
        group_cell.outputs = [new_output("execute_result", data=group._repr_mimebundle_(), execution_count=1)]
        own = {k: {"edition": "student", "run_id": "r1", "group": group_id} for k in metrics}  # the pair's own run
        table = report.show_table(report.report_table(metrics, own, group_id=group_id, edition="student"), metrics)
        table_cell.outputs = [new_output("execute_result", data=table._repr_mimebundle_(), execution_count=2)]
        figure_cell.outputs = [new_output("display_data", data={"image/png": tiny_png(),
                                                                "text/plain": "<Figure size 900x550>"})]
    answers = ["We would deploy Madry's training: it costs 1 point of clean accuracy."] if answers is None else answers
    cells = [new_markdown_cell("# 05 · Report"), new_code_cell("import labkit"),
             _tagged(group_cell, *tag), _tagged(table_cell, *tag), _tagged(figure_cell, *tag),
             _tagged(new_markdown_cell("**Question 1.** Which defence?"), *tag)]
    cells += [_tagged(new_markdown_cell(a), *tag, "answer") for a in answers]
    cells += [_tagged(c, *tag) for c in extra]
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def hostile_notebook() -> nbformat.NotebookNode:
    """Return a submission whose markdown and outputs try to run scripts and load remote resources."""
    html_cell = new_code_cell("from IPython.display import HTML, Javascript")
    html_cell.outputs = [
        new_output("display_data", data={"text/html": HOSTILE_HTML_OUTPUT, "text/plain": "<HTML>"}),
        new_output("display_data", data={"application/javascript": "document.title = 'HACKED'"}),
        new_output("display_data", data={"image/png": "\" onerror=\"document.title='HACKED'"}),
        new_output("display_data", data={"text/markdown": "[md link](javascript:alert(1)) "
                                                          "![t](https://evil.example/m.png)"}),
        new_output("stream", name="stdout", text="<script>alert(1)</script> printed text"),
    ]
    return report_notebook("G66", ("Mallory <b>Evil</b>", "Eve"), answers=[HOSTILE_MARKDOWN], extra=[html_cell])


def write(path: Path, content) -> Path:
    """Write a notebook node (or raw text) to ``path``, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    else:
        nbformat.write(content, path)
    return path


def make_class(root: Path) -> dict[str, Path]:
    """Write one class folder of submissions covering every case the export must handle."""
    never_run = report_notebook("G05", ("Grace Hopper", "Edsger Dijkstra"), run=False)
    return {
        "good": write(root / "tuesday" / "pair01" / "05_report.ipynb", report_notebook()),
        "good2": write(root / "wednesday" / "pair02.ipynb",
                       report_notebook("G02", ("Barbara Liskov", "Donald Knuth"), {**METRICS, "evasion.eps": 0.1})),
        "corrupt": write(root / "corrupt.ipynb", '{"cells": [ {"cell_type": "markdown", '),
        "not_notebook": write(root / "notes.ipynb", json.dumps({"hello": "world"})),
        "no_names": write(root / "nonames.ipynb", report_notebook("", ("", ""))),
        "no_tags": write(root / "notags.ipynb", report_notebook("G04", ("Alan Kay", "Adele Goldberg"), tags=False)),
        "duplicate": write(root / "late" / "05_report.ipynb", report_notebook("g01", ("Ada Lovelace", "Alan Turing"))),
        "never_run": write(root / "G05.ipynb", never_run),
        "hostile": write(root / "hostile.ipynb", hostile_notebook()),
    }


def digest(root: Path) -> dict[str, tuple[str, int]]:
    """Return ``{relative path: (sha256, mtime_ns)}`` for every file under ``root``."""
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def read_gradebook_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def exported(tmp_path):
    files = make_class(tmp_path / "class")
    before = digest(tmp_path / "class")
    result = export.export_submissions(tmp_path / "class", tmp_path / "out", echo=None)
    return files, before, result, tmp_path


def test_round_trip_lists_every_submission_with_its_problems(exported):
    files, _, result, tmp_path = exported
    by_file = {s.file: s for s in result.submissions}
    assert set(by_file) == {p.relative_to(tmp_path / "class").as_posix() for p in files.values()}
    problems = {name: "; ".join(by_file[p.relative_to(tmp_path / "class").as_posix()].problems)
                for name, p in files.items()}
    assert problems["good2"] == "" and problems["hostile"] == ""
    assert problems["corrupt"].startswith("not JSON")
    assert problems["not_notebook"].startswith("not a notebook")
    assert "no names" in problems["no_names"]
    assert "no report cells" in problems["no_tags"]
    assert "duplicate group id 'G01'" in problems["good"] and "duplicate group id 'g01'" in problems["duplicate"]
    assert "never run" in problems["never_run"]
    good = by_file["tuesday/pair01/05_report.ipynb"]
    assert (good.group_id, good.members, good.metrics) == ("G01", ["Ada Lovelace", "Alan Turing"], METRICS)


def test_pages_exist_for_readable_submissions_and_the_index_links_them(exported):
    files, _, result, tmp_path = exported
    pages = {s.file: s.page for s in result.submissions}
    assert pages["corrupt.ipynb"] is None and pages["notes.ipynb"] is None and pages["notags.ipynb"] is None
    exported_pages = sorted(p for p in pages.values() if p)
    assert len(exported_pages) == 6 and len(set(exported_pages)) == 6  # the duplicate pair keeps both pages
    assert sorted(p.relative_to(tmp_path / "out").as_posix()
                  for p in (tmp_path / "out" / "groups").glob("*.html")) == exported_pages
    index = (tmp_path / "out" / "index.html").read_text()
    for page in exported_pages:
        assert f'href="{page}"' in index
    good = (tmp_path / "out" / pages["tuesday/pair01/05_report.ipynb"]).read_text()
    assert "Ada Lovelace" in good and "<table" in good and "data:image/png;base64," in good
    assert "We would deploy Madry" in good and "Question 1." in good
    assert "Content-Security-Policy" in good
    never_run = (tmp_path / "out" / pages["G05.ipynb"]).read_text()
    assert "Grace Hopper" in never_run and "not run" in never_run  # names read from the group cell's source


def test_input_files_are_byte_identical_after_export(exported):
    _, before, _, tmp_path = exported
    assert digest(tmp_path / "class") == before


def test_hostile_page_keeps_no_script_handler_or_remote_resource(exported):
    _, _, result, tmp_path = exported
    page = next((tmp_path / "out" / s.page).read_text() for s in result.submissions if s.group_id == "G66")
    lowered = page.lower()
    for forbidden in ("<script", "onerror", "onload", "onclick", "onmouseover", "javascript:", "evil.example",
                      "<iframe", "<object", "<form", "<base", "<link", "<svg", "http-equiv=\"refresh", "style=",
                      "hacked"):
        assert forbidden not in lowered, forbidden
    assert "Mallory &lt;b&gt;Evil&lt;/b&gt;" in page  # names are text, never markup
    assert "<b>bold</b>" in page and "a link" in page and "printed text" in page and "<td>cell</td>" in page
    assert "[JavaScript / widget output removed]" in page and "[invalid image removed]" in page
    assert "default-src 'none'" in page and "img-src data:" in page


def test_summary_lists_the_problems(tmp_path, capsys):
    make_class(tmp_path / "class")
    assert main(["export", str(tmp_path / "class"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "6 of 9 submissions exported" in printed
    assert "corrupt.ipynb: not JSON" in printed and "notags.ipynb: no report cells" in printed


def test_exit_code_is_nonzero_only_when_nothing_could_be_exported(tmp_path, capsys):
    bad = tmp_path / "bad"
    write(bad / "corrupt.ipynb", "not json at all")
    write(bad / "notags.ipynb", report_notebook(tags=False))
    assert main(["export", str(bad), "--out", str(tmp_path / "o1")]) == 1
    assert "nothing could be exported" in capsys.readouterr().err
    listed = {row["file"] for row in read_gradebook_rows(tmp_path / "o1" / "gradebook.csv")}
    assert listed == {"corrupt.ipynb", "notags.ipynb"}  # the problems are still listed
    write(bad / "ok" / "one.ipynb", report_notebook("G09", ("Ken Thompson",), answers=[report.ANSWER_PLACEHOLDER]))
    assert main(["export", str(bad), "--out", str(tmp_path / "o2")]) == 0
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "--out", str(tmp_path / "o3")]) == 1
    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "o4")]) == 1
    assert "no submissions at" in capsys.readouterr().err


def test_out_folder_inside_the_submissions_is_skipped(tmp_path):
    write(tmp_path / "class" / "a.ipynb", report_notebook())
    export.export_submissions(tmp_path / "class", tmp_path / "class" / "export", echo=None)
    again = export.export_submissions(tmp_path / "class", tmp_path / "class" / "export", echo=None)
    assert [s.file for s in again.submissions] == ["a.ipynb", "export/"]   # listed, never read or entered
    assert again.submissions[1].problems == ["the export's own output folder (--out): skipped"]
    with pytest.raises(ValueError, match="mix the export"):
        export.export_submissions(tmp_path / "class", tmp_path, echo=None)


def test_group_from_source_when_never_run_and_edits_after_running_are_flagged(tmp_path):
    nb = report_notebook("G03", ("Ada Lovelace", "Alan Turing"))
    nb.cells[2].source = "%matplotlib inline\nGROUP_ID = 'G03b'\nMEMBERS = ['Ada Lovelace', 'Alan Turing']\ngroup"
    sub = export.read_submission(write(tmp_path / "edited.ipynb", nb), tmp_path)
    assert sub.group_id == "G03" and any("edited after it was run" in p for p in sub.problems)
    blanks = [report.ANSWER_PLACEHOLDER, "", "YOUR ANSWER HERE"]   # labkit's, empty, nbgrader's release
    unanswered = report_notebook("G04", ("Ada",), answers=blanks, run=False)
    sub = export.read_submission(write(tmp_path / "blank.ipynb", unanswered), tmp_path)
    assert (sub.group_id, sub.members) == ("G04", ["Ada"])
    assert "3 of 3 answers left empty" in sub.problems and "never run: the report cells have no outputs" in sub.problems


def test_demo_group_is_reported_as_a_problem(tmp_path):
    nb = report_notebook("demo", ("Demo Student A", "Demo Student B"))
    nb.cells[2].outputs[0]["data"][report.GROUP_MIME]["demo"] = True
    nb.cells[2].source = "GROUP_ID = ''\nMEMBERS = ['', '']\ngroup = labkit.classroom.report.check_group(GROUP_ID, MEMBERS)"
    sub = export.read_submission(write(tmp_path / "demo.ipynb", nb), tmp_path)
    assert sub.group_id == "demo" and any(p.startswith("demo group") for p in sub.problems)


def test_clean_html_allows_formatting_and_inline_images_only():
    png = tiny_png()
    cleaned = sanitize.clean_html(f'<p onclick="x()">hi <img src="data:image/png;base64,{png}" onerror="x()">'
                                  '<img src="local.png"><img src="https://evil.example/a.png"><a href="/x">y</a></p>')
    assert cleaned == f'<p>hi <img src="data:image/png;base64,{png}"><img><img><a>y</a></p>'
    with_attachment = sanitize.markdown_to_html("![plot](attachment:plot.png)",
                                                {"plot.png": {"image/png": png}})
    assert f'src="data:image/png;base64,{png}"' in with_attachment
    assert "src=" not in sanitize.markdown_to_html("![x](attachment:missing.png)")
    assert sanitize.render_output({"output_type": "display_data",
                                   "data": {"image/png": base64.b64encode(b"GIF89a....").decode()}}) \
        == '<p class="note">[invalid image removed]</p>'
