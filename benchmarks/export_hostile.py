"""Benchmark ``labkit export`` on a class folder of hostile submissions (issue 13: <= 60 s for 200 on 2 cores).

Builds a folder of ``--n`` submissions (default 200) that cycles through the hostile cases below, then times
one ``export_submissions`` over the whole folder (the teacher's command, in this process, output to a scratch
folder). Every case is one a submission could really hand in:

deep HTML nesting (200,000 divs in an output), the same in a markdown answer, a 20 MB stream output, a
1.9 MB HTML table, mXSS and script payloads, a 5000-digit integer, lone surrogates, a 4000-digit hex group
id, a 200,000-term expression in the group cell, pathological markdown at the per-page budget (brackets,
emphasis, tables), a hostile and a large legitimate SVG, 10,000 outputs in one cell, a 3 GB sparse file,
nbformat 3, symlinks out of the folder / dangling / looping, a fifo, 1 MB of random bytes, JSON nested
100,000 deep, a non-UTF-8 file name, and ordinary good reports.

Writes ``<build>/export_hostile_bench.json`` (``labkit.out_dir()``): the wall and CPU time (the CPU time says
what the export costs when other work shares the machine; the limit is on the wall time of a quiet one), how
many submissions were listed and exported, the cases, and the machine. With ``--per-case`` it also times each
case exported alone. Usage::

    .venv/bin/python benchmarks/export_hostile.py              # 200 submissions
    .venv/bin/python benchmarks/export_hostile.py --n 40 --per-case
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import nbformat
from nbformat.v4 import new_code_cell, new_output

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_export import METRICS, hostile_notebook, report_notebook, tiny_png  # noqa: E402  (the tests' builders)

LIMIT_S = 60.0
MXSS = ["<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
        "<svg><a xlink:href=javascript:alert(1)><text>x</text></a></svg>",
        "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
        '<a href="jav&#x09;ascript:alert(1)">x</a>', "<template><script>alert(1)</script></template>"] * 20


def _nb(path: Path, nb: nbformat.NotebookNode) -> None:
    path.write_text(json.dumps(nb))


def _with_output(path: Path, data: dict, *, repeat: int = 1, group: str = "G") -> None:
    cell = new_code_cell("show()", outputs=[new_output("display_data", data=data) for _ in range(repeat)])
    _nb(path, report_notebook(group, ("Ada", "Eve"), extra=[cell]))


def _svg(size: int) -> str:
    paths = "".join(f'<path d="M{i} 0 L{i} 10" style="stroke: #1f77b4"/>' for i in range(size))
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"><g>{paths}</g></svg>'


def _text_patch(path: Path, nb: nbformat.NotebookNode, old: str, new: str) -> None:
    path.write_text(json.dumps(nb).replace(old, new, 1))


def _group_source(path: Path, source: str) -> None:
    nb = report_notebook("G", ("Ada",))
    nb.cells[2].source, nb.cells[2].outputs = source, []
    _nb(path, nb)


def _sparse(path: Path) -> None:
    with path.open("wb") as handle:
        handle.truncate(3 * 1024 ** 3)


CASES: dict[str, Callable[[Path], None]] = {
    "deep_html_output": lambda p: _with_output(p, {"text/html": "<div>" * 200_000}),
    "deep_markdown": lambda p: _nb(p, report_notebook("G", ("Ada",), answers=["<div>" * 200_000])),
    "huge_stream": lambda p: _nb(p, report_notebook("G", ("Ada",), extra=[new_code_cell(
        "print(x)", outputs=[new_output("stream", name="stdout", text="0123456789" * 2_000_000)])])),
    "big_html_table": lambda p: _with_output(p, {"text/html": "<table>" + "<tr><td>1</td><td>2</td></tr>" * 70_000
                                                            + "</table>"}),
    "mxss": lambda p: _nb(p, report_notebook("G", ("Ada",), answers=["".join(MXSS)], extra=[new_code_cell(
        "HTML(x)", outputs=[new_output("display_data", data={"text/html": "".join(MXSS)})])])),
    "script_payloads": lambda p: _nb(p, hostile_notebook()),
    "bigint": lambda p: _text_patch(p, report_notebook(), '"nbformat_minor": 5', '"nbformat_minor": ' + "9" * 5000),
    "surrogates": lambda p: _text_patch(p, report_notebook("G\u2603", ("Ada",)), "\\u2603", "\\ud800"),
    "hex_group_id": lambda p: _group_source(p, "GROUP_ID = 0x" + "f" * 4000 + "\nMEMBERS = ['Ada']"),
    "expression_200k": lambda p: _group_source(p, "GROUP_ID = " + "+".join(["1"] * 200_000)),
    "markdown_brackets": lambda p: _nb(p, report_notebook("G", ("Ada",), answers=["[" * 9_999] * 3)),
    "markdown_emphasis": lambda p: _nb(p, report_notebook("G", ("Ada",), answers=["_a" * 4_999] * 3)),
    "markdown_table": lambda p: _nb(p, report_notebook("G", ("Ada",), answers=["|a" * 2_400 + "\n" + "|-" * 2_400
                                                                               + "\n" + "|b" * 2_400] * 3)),
    "svg": lambda p: _nb(p, _svg_notebook()),
    "many_outputs": lambda p: _with_output(p, {"text/plain": "x"}, repeat=10_000),
    "sparse_3gb": _sparse,
    "nbformat3": lambda p: p.write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": []})),
    "symlinks": lambda p: (os.symlink("/etc/hostname", p), os.symlink(p.parent / "nowhere", p.with_suffix(".dangling")),
                           os.symlink(p.with_suffix(".loop"), p.with_suffix(".loop"))),
    "fifo": lambda p: os.mkfifo(p),
    "random_bytes": lambda p: p.write_bytes(random.Random(0).randbytes(1_000_000)),
    "deep_json": lambda p: p.write_text('{"nbformat": 4, "cells": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    "latin1_name": lambda p: _nb(Path(os.fsdecode(os.fsencode(p.with_suffix("")) + b"-caf\xe9.ipynb")),
                                 report_notebook("G", ("Ada",))),
    "good": lambda p: _nb(p, report_notebook("G", ("Ada", "Eve"), {**METRICS})),
}


def _svg_notebook() -> nbformat.NotebookNode:
    from test_export_hostile import SVG_HOSTILE

    nb = report_notebook("G", ("Ada",))
    nb.cells[4].outputs = [new_output("display_data", data={"image/svg+xml": _svg(3000)}),
                           new_output("display_data", data={"image/svg+xml": SVG_HOSTILE}),
                           new_output("display_data", data={"image/png": tiny_png()})]
    return nb


def build_class(root: Path, n: int) -> dict[str, int]:
    """Write ``n`` submissions cycling through ``CASES`` under ``root``; return how many of each case."""
    names = list(CASES)
    counts: dict[str, int] = {}
    for i in range(n):
        case = names[i % len(names)]
        folder = root / f"pair{i:03d}"
        folder.mkdir(parents=True)
        CASES[case](folder / f"{case}.ipynb")
        counts[case] = counts.get(case, 0) + 1
    return counts


def timed_export(source: Path, out: Path) -> tuple[float, float, object]:
    """Return the wall and CPU time of one export of ``source`` into ``out``, and its result."""
    from labkit.classroom.export import export_submissions

    start, cpu = time.perf_counter(), time.process_time()
    result = export_submissions(source, out, echo=None)
    return time.perf_counter() - start, time.process_time() - cpu, result


def per_case(scratch: Path) -> dict[str, float]:
    """Return the wall time of exporting each case alone (a folder holding that one submission)."""
    times = {}
    for case in CASES:
        folder = scratch / "single" / case
        folder.mkdir(parents=True)
        CASES[case](folder / f"{case}.ipynb")
        times[case] = round(timed_export(folder, scratch / "single-out" / case)[0], 3)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="submissions in the class folder (default 200)")
    parser.add_argument("--per-case", action="store_true", help="also time each case exported alone")
    parser.add_argument("--out", type=Path, help="where the JSON goes (default <build>/export_hostile_bench.json)")
    args = parser.parse_args(argv)
    from labkit.paths import out_dir

    scratch = Path(tempfile.mkdtemp(prefix="labkit-export-bench-"))
    try:
        counts = build_class(scratch / "class", args.n)
        load = os.getloadavg()[0]
        wall, cpu, result = timed_export(scratch / "class", scratch / "out")
        report = {"benchmark": "export_hostile", "n_submissions": args.n, "wall_s": round(wall, 2),
                  "cpu_s": round(cpu, 2), "limit_s": LIMIT_S,
                  "within_limit": wall <= LIMIT_S, "listed": len(result.submissions),
                  "exported": len(result.exported), "cases": counts,
                  "machine": {"python": platform.python_version(), "platform": platform.platform(),
                              "cpus": os.cpu_count(), "load_average_1m_before": load}}
        if args.per_case:
            report["per_case_s"] = per_case(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    path = args.out or out_dir() / "export_hostile_bench.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"labkit export of {args.n} hostile submissions: {report['wall_s']} s wall, {report['cpu_s']} s CPU "
          f"(limit {LIMIT_S:.0f} s wall; load average {load:.1f} before; "
          f"{report['exported']} exported, {report['listed']} listed) -> {path}")
    return 0 if report["within_limit"] else 1


if __name__ == "__main__":
    sys.exit(main())
