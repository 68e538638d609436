"""An export no file can break: every hostile case of issue 13, then property-based tests (hypothesis).

One class folder holds a good submission next to every hostile file the issue lists; it is exported
once (module fixture) and each test checks one claim: the hostile file is its own row's problem, the
good pair is exported, nothing is read or written outside the folders the teacher named.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import tempfile
import tracemalloc
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from labkit.classroom import _intake as intake, _sanitize as sanitize, export, report
from labkit.cli import main

from test_export import report_notebook, write

SECRET = "teacher's private file\n"
SVG_FIGURE = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="40" '
              'height="20" viewBox="0 0 40 20"><defs><path id="m" d="M0 0 L5 5"/></defs>'
              '<rect width="40" height="20" style="fill: #ffffff"/><use xlink:href="#m" x="3" y="3"/>'
              '<text x="2" y="15" font-size="8">fig</text></svg>')
SVG_HOSTILE = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" onload="alert(1)">'
               '<script>alert(2)</script><foreignObject><iframe src="https://evil.example/f"></iframe></foreignObject>'
               '<image xlink:href="https://evil.example/i.png"/><a href="javascript:alert(3)"><rect width="1"/></a>'
               '<rect width="5" height="5" fill="url(https://evil.example/p)" onclick="alert(4)"/>'
               '<use href="https://evil.example/s.svg#x"/><set attributeName="onload" to="alert(5)"/>'
               '<circle r="4" style="fill: url(#g)"/></svg>')


def raw_notebook(group_id, members=("Ada",), *, markdown="An answer.", extra=(), outputs=()) -> nbformat.NotebookNode:
    """Return a report notebook whose group cell holds ``group_id`` in its source and printed output."""
    nb = report_notebook("G", members, answers=[markdown], extra=extra)
    nb.cells[2].source = f"GROUP_ID = {group_id}\nMEMBERS = {list(members)!r}\ngroup"
    for output in outputs:
        nb.cells[3].outputs.append(output)
    return nb


def write_json(path: Path, text: str) -> Path:
    """Write JSON text as UTF-8 bytes (lone surrogates stay escaped, as a hostile writer would leave them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def snapshot(root: Path) -> dict[str, tuple]:
    """Return every entry under ``root`` by lstat (never following a link, never opening a fifo)."""
    seen = {}
    for folder, dirs, files in os.walk(os.fsencode(root)):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                value = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode) and info.st_size > 100_000_000:   # the sparse file: never read
                value = ("file", info.st_size, info.st_mtime_ns)
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    value = ("file", hashlib.sha256(handle.read()).hexdigest(), info.st_mtime_ns)
            else:
                value = ("other", stat.S_IFMT(info.st_mode))
            seen[os.path.relpath(path, os.fsencode(root))] = value
    return seen


def hostile_class(root: Path, outside: Path) -> dict[str, str]:
    """Write a class with one good pair and every hostile file of issue 13; return {case: listed name}."""
    cls = root / "class"
    write(cls / "good.ipynb", report_notebook())
    huge = json.loads(nbformat.writes(report_notebook("G10", ("Huge Int",))))
    huge["cells"][3]["outputs"][0]["execution_count"] = 0
    huge_text = json.dumps(huge).replace('"execution_count": 0', '"execution_count": ' + "7" * 5000)
    write_json(cls / "bigint.ipynb", huge_text)
    lone = nbformat.writes(report_notebook("G11", ("Lone Surrogate",), answers=["X"]))
    write_json(cls / "surrogate.ipynb", lone.replace('"G11"', '"G\\ud800"').replace('"X"', '"text \\udfff end"'))
    write(cls / os.fsdecode(b"caf\xe9-latin1.ipynb"), report_notebook("G12", ("Latin One",)))
    write(cls / "hexid.ipynb", _never_run(raw_notebook("0x" + "f" * 4000)))
    write(cls / "expression.ipynb", _never_run(raw_notebook("+".join(["1"] * 200_000))))
    write(cls / "nbformat3.ipynb", json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                                               "worksheets": [{"cells": []}]}))
    deep = new_code_cell("HTML(html)", outputs=[new_output("display_data", data={"text/html": "<div>" * 200_000})])
    write(cls / "deep.ipynb", report_notebook("G13", ("Deep Nest",), answers=["<b>x</b>" * 200_000], extra=[deep]))
    svg = report_notebook("G14", ("Svg Figure",))
    svg.cells[4].outputs = [new_output("display_data", data={"image/svg+xml": SVG_FIGURE, "text/plain": "<Figure>"}),
                            new_output("display_data", data={"image/svg+xml": SVG_HOSTILE, "text/plain": "<Figure>"})]
    write(cls / "svg.ipynb", svg)
    write(cls / "evil\x1b[2J\x1b]0;owned\x07\u202e.ipynb", report_notebook("G15", ("Escape Names",), run=False))
    write(cls / ".hidden.ipynb", report_notebook("G16", ("Dot File",)))
    write(cls / "notes.txt", "not a notebook at all")
    (outside / "secret.ipynb").write_text(SECRET)
    os.symlink(outside / "secret.ipynb", cls / "x.ipynb")
    os.symlink(cls / "missing.ipynb", cls / "dangling.ipynb")
    os.symlink(cls / "loop-b.ipynb", cls / "loop-a.ipynb")
    os.symlink(cls / "loop-a.ipynb", cls / "loop-b.ipynb")
    os.symlink(outside, cls / "linked-folder")
    os.mkfifo(cls / "pipe.ipynb")
    big = cls / "sparse.ipynb"
    with big.open("wb") as handle:
        handle.truncate(3 * 1024 ** 3)
    planted = cls / "export"                      # the teacher's --out, inside the submissions
    planted.mkdir()
    os.symlink(outside, planted / "groups")
    os.symlink(outside / "keep.html", planted / "index.html")
    return {"bigint": "bigint.ipynb", "surrogate": "surrogate.ipynb", "latin1": "caf\ufffd-latin1.ipynb",
            "hexid": "hexid.ipynb", "expression": "expression.ipynb", "nbformat3": "nbformat3.ipynb",
            "deep": "deep.ipynb", "svg": "svg.ipynb", "escape": "evil\x1b[2J\x1b]0;owned\x07\u202e.ipynb",
            "hidden": ".hidden.ipynb", "text": "notes.txt", "outside": "x.ipynb", "dangling": "dangling.ipynb",
            "loop": "loop-a.ipynb", "loop_b": "loop-b.ipynb", "folder_link": "linked-folder/", "fifo": "pipe.ipynb",
            "sparse": "sparse.ipynb",
            "out": "export/", "good": "good.ipynb"}


def _never_run(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return ``nb`` with its group cell's output removed, so the group is read from its source."""
    nb.cells[2].outputs = []
    return nb


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    outside = root / "outside"
    outside.mkdir()
    (outside / "keep.html").write_text(SECRET)
    (outside / "old-page.html").write_text(SECRET)
    names = hostile_class(root, outside)
    before = snapshot(root / "class"), snapshot(outside)
    tracemalloc.start()
    result = export.export_submissions(root / "class", root / "class" / "export", echo=None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rows = {s.file: s for s in result.submissions}
    return {"root": root, "names": names, "before": before, "result": result, "rows": rows, "peak": peak,
            "outside": outside}


def problems(hostile, case: str) -> str:
    return "; ".join(hostile["rows"][hostile["names"][case]].problems)


def page_of(hostile, case: str) -> str:
    sub = hostile["rows"][hostile["names"][case]]
    assert sub.page, sub.problems
    return (hostile["result"].out / sub.page).read_text(encoding="utf-8")


def test_every_entry_is_listed_and_the_good_pair_is_exported(hostile):
    assert set(hostile["names"].values()) <= set(hostile["rows"])
    assert len(hostile["rows"]) == len(hostile["names"])
    assert hostile["rows"]["good.ipynb"].page and problems(hostile, "good") == ""


@pytest.mark.parametrize("case, reason", [
    ("hidden", "hidden file"), ("text", "not JSON"), ("outside", "outside the submissions folder: refused"),
    ("dangling", "dangling symbolic link"), ("loop", "symbolic link loop"), ("fifo", "a fifo: skipped"),
    ("folder_link", "symbolic link to a folder: not followed"), ("out", "own output folder"),
    ("nbformat3", "nbformat 3 notebook: open it in Jupyter and save it again to convert it to nbformat 4"),
    ("sparse", "too large to read (3221 MB"), ("hexid", "group id is a number of about 4816 digits"),
    ("expression", "was not searched for GROUP_ID"), ("bigint", "1 integer(s) longer than 4300 digits"),
    ("surrogate", "2 text(s) held invalid Unicode"),
])
def test_each_hostile_file_is_its_own_rows_problem(hostile, case, reason):
    assert reason in problems(hostile, case)


def test_hostile_but_readable_notebooks_still_get_their_page(hostile):
    for case in ("bigint", "surrogate", "latin1", "deep", "svg", "escape", "hexid", "expression"):
        assert hostile["rows"][hostile["names"][case]].page, case
    assert hostile["rows"][hostile["names"]["surrogate"]].group_id == "G\ufffd"
    assert "text \ufffd end" in page_of(hostile, "surrogate")
    assert "Latin One" in page_of(hostile, "latin1")


def test_nothing_outside_is_read_or_written_and_the_inputs_are_unchanged(hostile):
    root, outside = hostile["root"], hostile["outside"]
    before_class, before_outside = hostile["before"]
    after_class = {k: v for k, v in snapshot(root / "class").items() if not k.startswith(b"export")}
    assert after_class == {k: v for k, v in before_class.items() if not k.startswith(b"export")}
    assert snapshot(outside) == before_outside                       # no page deleted or written through the link
    assert not (root / "class" / "export" / "groups").is_symlink()   # the planted link was replaced by a folder
    assert not (root / "class" / "export" / "index.html").is_symlink()
    every_page = "".join(p.read_text(encoding="utf-8") for p in (root / "class" / "export").rglob("*.html"))
    assert SECRET.strip() not in every_page


def test_sizes_are_checked_before_reading(hostile):
    assert hostile["peak"] < 200_000_000   # the 3 GB sparse file was never read (the old export held 3.2 GB)


def test_deep_html_is_shown_as_text_not_cleaned(hostile):
    page = page_of(hostile, "deep")
    assert "HTML nested more than 100 deep is too deep to clean" in page and "<div><div>" not in page
    assert "markdown of 1,600,000 characters is too long to render" in page and "<b>x" not in page


def test_svg_figures_are_shown_as_sanitised_data_images(hostile):
    page = page_of(hostile, "svg")
    images = re.findall(r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    good, bad = (base64.b64decode(i).decode() for i in images)
    assert "<rect" in good and 'xlink:href="#m"' in good and ">fig</text>" in good
    for forbidden in ("script", "onload", "onclick", "foreignobject", "iframe", "evil.example", "javascript",
                      "<image", "<a ", "<set", "alert"):
        assert forbidden not in bad.lower(), forbidden
    assert "url(#g)" in bad and "<rect" in bad


def test_names_printed_to_the_terminal_carry_no_control_characters(hostile):
    printed = export.summary(hostile["result"])
    assert "evil[2J]0;owned.ipynb" in printed
    assert not any(ord(c) < 32 and c != "\n" or c in "\x7f\u202e" for c in printed)


def test_out_reached_through_a_symlink_inside_the_submissions_is_refused(tmp_path):
    write(tmp_path / "class" / "a.ipynb", report_notebook())
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "class" / "trap")
    with pytest.raises(ValueError, match="passes through the symbolic link"):
        export.export_submissions(tmp_path / "class", tmp_path / "class" / "trap" / "export", echo=None)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_cell_that_breaks_the_renderer_is_a_note_not_a_lost_page(tmp_path):
    nb = report_notebook("G20", ("Ada",))
    nb.cells[4].outputs = [{"output_type": "display_data", "data": {"text/html": {"not": "text"}},
                            "metadata": {}}, "not an output"]
    nb.cells[5].attachments = ["not", "a", "mapping"]
    nb.cells[5].source = "![x](attachment:x.png)"
    write_json(tmp_path / "class" / "odd.ipynb", json.dumps(nb))
    result = export.export_submissions(tmp_path / "class", tmp_path / "out", echo=None)
    assert result.submissions[0].page and "Ada" in (tmp_path / "out" / result.submissions[0].page).read_text()


def test_markdown_past_a_pages_budget_is_shown_as_text():
    budget = sanitize.Budget(markdown=100)
    assert "<strong>" in sanitize.markdown_to_html("**a**" * 10, budget=budget)
    shown = sanitize.markdown_to_html("**b**" * 20, budget=budget)
    assert "<strong>" not in shown and "as much markdown as one page may" in shown
    long = sanitize.markdown_to_html("[" * (sanitize.MAX_MARKDOWN + 1))
    assert "too long to render" in long


def test_nesting_scan_counts_depth_not_length():
    assert sanitize.nesting("<table>" + "<tr><td>x</td></tr>" * 1000 + "</table>") == 1
    assert sanitize.nesting("<div>" * 300) == 300
    assert sanitize.nesting("<p>a<p>b<br><img src=x><li>c") == 0


# ---- property-based: generated hostile notebooks and folders (hypothesis) ----------------------------------------

FRAGMENTS = ["<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "<svg onload=alert(1)><circle r=1/></svg>",
             '<a href="javascript:alert(1)">j</a>', '<img src="https://evil.example/t.png">', "<b>bold</b>",
             '<iframe src="https://evil.example"></iframe>', '<p style="background:url(https://evil.example/b)">s</p>',
             "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",   # mXSS through foreign content
             '<noscript><p title="</noscript><img src=x onerror=alert(1)>">', "<div>" * 150, "\ud800", "\x1b[31m",
             "[l](https://evil.example)", '<meta http-equiv="refresh" content="0;url=https://evil.example">',
             "<base href=https://evil.example/>", "<form action=https://evil.example><input></form>",
             "<template><script>alert(1)</script></template>", "<!--<img src=x onerror=alert(1)>-->", "| a |\n|---|\n",
             "<svg><a xlink:href=javascript:alert(1)><text>x</text></a></svg>", "![i](https://evil.example/i.png)"]
TEXT = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=5).map("".join)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8)
OUTPUT = st.one_of(
    st.builds(lambda t: new_output("display_data", data={"text/html": t}), TEXT),
    st.builds(lambda t: new_output("display_data", data={"text/markdown": t}), TEXT),
    st.builds(lambda t: new_output("display_data", data={"image/svg+xml": t}),
              st.one_of(st.sampled_from([SVG_FIGURE, SVG_HOSTILE]), TEXT.map(lambda t: f"<svg>{t}</svg>"))),
    st.builds(lambda t: new_output("display_data", data={"image/png": t}), st.one_of(TEXT, st.just('" onerror="x'))),
    st.builds(lambda t: new_output("stream", name="stdout", text=t), TEXT),
    st.builds(lambda t: new_output("error", ename="E", evalue=t, traceback=[t]), TEXT),
    st.builds(lambda d: {"output_type": "display_data", "data": d, "metadata": {}}, JSON))
MANGLE = st.sampled_from(["none", "none", "bigint", "truncate", "nbformat3", "not-json"])


@st.composite
def hostile_notebooks(draw) -> bytes:
    """Draw a report notebook with hostile markdown, outputs and group values, maybe mangled, as file bytes."""
    nb = report_notebook("G", ("Ada",), answers=[draw(TEXT)], extra=[new_markdown_cell(draw(TEXT))])
    nb.cells[2].outputs[0]["data"][report.GROUP_MIME] = {"group_id": draw(JSON | TEXT), "members": draw(JSON)}
    nb.cells[4].outputs = draw(st.lists(OUTPUT, max_size=4))
    nb.cells[3].source = draw(TEXT)
    text = json.dumps(nb)   # ensure_ascii: a lone surrogate stays escaped, as a hostile writer would leave it
    mangle = draw(MANGLE)
    if mangle == "bigint":
        text = text.replace('"nbformat_minor": 5', '"nbformat_minor": ' + "9" * 5000)
    elif mangle == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    elif mangle == "nbformat3":
        text = json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}})
    elif mangle == "not-json":
        return draw(st.binary(max_size=200))
    return text.encode()


NAMES = st.one_of(st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1,
                          max_size=16).map(os.fsencode),
                  st.binary(min_size=1, max_size=16)).filter(lambda b: b"/" not in b and b"\0" not in b
                                                             and b not in (b".", b"..", b"good.ipynb", b"out"))
KINDS = st.sampled_from(["notebook", "notebook", "folder", "symlink-out", "symlink-in", "dangling", "loop", "fifo"])


def plant(cls: bytes, outside: bytes, name: bytes, kind: str, notebook: bytes) -> None:
    """Create one generated entry ``name`` of ``kind`` under the class folder ``cls`` (bytes paths)."""
    path = os.path.join(cls, name)
    if kind == "notebook":
        Path(os.fsdecode(path)).write_bytes(notebook)
    elif kind == "folder":
        os.mkdir(path)
        Path(os.fsdecode(os.path.join(path, b"inner.ipynb"))).write_bytes(notebook)
    elif kind == "symlink-out":
        os.symlink(os.path.join(outside, b"secret.ipynb"), path)
    elif kind == "symlink-in":
        os.symlink(os.path.join(cls, b"good.ipynb"), path)
    elif kind == "dangling":
        os.symlink(os.path.join(cls, b"nowhere"), path)
    elif kind == "loop":
        os.symlink(path, path)
    else:
        os.mkfifo(path)


class Audit(HTMLParser):
    """Collect what a written page would let a browser run or fetch (nothing, when the sanitiser holds)."""

    REMOTE = re.compile(r"(?i)(https?:|//|javascript:|vbscript:|url\((?!#))")
    SVG_BAD = re.compile(r"(?i)(<script|foreignobject|\son\w+\s*=|href=\"(?!#)|url\((?!#)|https?:|javascript:)")

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.styles = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in {"script", "iframe", "object", "embed", "link", "base", "form", "svg", "math", "frame"}:
            self.found.append(f"<{tag}>")
        self.styles += tag == "style"
        for name, value in attrs:
            value = value or ""
            if name == "src" and value.startswith("data:image/svg+xml;base64,"):
                svg = re.sub(r'xmlns(:\w+)?="[^"]*"', "", base64.b64decode(value.split(",", 1)[1]).decode())
                self.found += [f"svg: {m}" for m in self.SVG_BAD.findall(svg)]
            elif name == "src" and not value.startswith("data:image/"):
                self.found.append(f"src={value[:60]}")
            elif tag == "meta" and name == "http-equiv" and value != "Content-Security-Policy":
                self.found.append(f"meta http-equiv={value}")
            elif name.startswith("on") or name == "style" or (name != "src" and tag != "meta"
                                                                and self.REMOTE.search(value)):
                self.found.append(f"{tag} {name}={value[:60]}")


def audit(out: Path) -> list[str]:
    """Return every script, handler or external reference in the HTML written under ``out``."""
    found = []
    for page in out.rglob("*.html"):
        parser = Audit()
        parser.feed(page.read_text(encoding="utf-8"))
        found += [f"{page.name}: {f}" for f in parser.found] + ([f"{page.name}: styles"] if parser.styles != 1 else [])
    return found


def listed(rel: str, files: set[str]) -> bool:
    """Return True when ``rel`` or one of its folders (``a/``) is a row of the export."""
    parts = rel.split("/")
    return rel in files or any("/".join(parts[:i]) + "/" in files for i in range(1, len(parts) + 1))


@settings(max_examples=30, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(entries=st.lists(st.tuples(NAMES, KINDS, hostile_notebooks()), max_size=5, unique_by=lambda e: e[0]),
       out_inside=st.booleans())
def test_generated_hostile_folders_export_safely(entries, out_inside):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cls, outside = root / "class", root / "outside"
        outside.mkdir()
        (outside / "secret.ipynb").write_text(SECRET)
        write(cls / "good.ipynb", report_notebook())
        for name, kind, notebook in entries:
            plant(os.fsencode(cls), os.fsencode(outside), name, kind, notebook)
        out = cls / "out" if out_inside else root / "out"
        before = snapshot(cls), snapshot(outside)
        runs = []
        real = export.export_submissions
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(export, "export_submissions", lambda *a, **k: runs.append(real(*a, **k)) or runs[-1])
            assert main(["export", str(cls), "--out", str(out)]) == 0          # one valid submission: exit 0
        assert snapshot(cls) == {**before[0], **{k: v for k, v in snapshot(cls).items() if k.startswith(b"out")}}
        assert snapshot(outside) == before[1]                                  # inputs and outside untouched
        assert sorted(os.listdir(root)) == sorted(["class", "outside"] + ([] if out_inside else ["out"]))
        files = {s.file for s in runs[0].submissions}
        created = [os.fsdecode(k) for k, v in before[0].items() if v != ("other", stat.S_IFDIR)]  # folders entered
        assert all(listed(intake.display(rel), files) for rel in created), (created, files)
        assert audit(out) == []
        assert SECRET.strip() not in "".join(p.read_text(encoding="utf-8") for p in out.rglob("*.html"))
