"""The teacher's export: ``labkit export SUBMISSIONS --out DIR``.

Every file under SUBMISSIONS (nested folders allowed) is read as data with nbformat: it is never
executed and never written to. For each readable notebook the export writes one HTML page of its
cells tagged ``report`` (with their outputs, sanitised by ``labkit.classroom._sanitize``), then ``index.html``
linking all groups and ``gradebook.csv`` with a row per submission: file, group id, members, page,
every metric the report table recorded (read from the table cell's machine-readable output), and the
problems found (not JSON, not a notebook, no report cells, no names, a duplicate group id, report
cells never run ...).
"""

from __future__ import annotations

import ast
import csv
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from labkit.classroom.report import (ANSWER_PLACEHOLDER, ANSWER_TAG, CORE_KEYS, GROUP_MIME, METRICS_MIME, REPORT_TAG,
                           metric_order)
from labkit.classroom._sanitize import page, render_cell
from labkit.classroom.student import ANSWER as NBGRADER_ANSWER

__all__ = ["Submission", "ExportResult", "find_submissions", "read_submission", "export_submissions"]

SKIPPED_DIRS = {".ipynb_checkpoints", "__MACOSX", "__pycache__"}
MAX_BYTES = 100_000_000


@dataclass
class Submission:
    """One handed-in file and what the export made of it."""

    path: Path
    file: str                                   # path relative to the submissions folder
    group_id: str = ""
    members: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    cells: list[Any] = field(default_factory=list)  # the report-tagged cells
    problems: list[str] = field(default_factory=list)
    page: str | None = None                     # the exported page, relative to the output folder

    @property
    def exportable(self) -> bool:
        """True when the submission has report cells to show."""
        return bool(self.cells)


@dataclass
class ExportResult:
    """What an export wrote: the submissions (in file order) and the output folder."""

    submissions: list[Submission]
    out: Path

    @property
    def exported(self) -> list[Submission]:
        """Return the submissions that got a page."""
        return [s for s in self.submissions if s.page]


def find_submissions(root: Path, skip: Path | None = None) -> list[Path]:
    """Return every file under ``root`` (or ``root`` itself), skipping hidden files and checkpoints.

    :param root: the submissions folder, or one notebook.
    :param skip: a folder not to descend into (the export's own output).
    """
    root = Path(root)
    if root.is_file():
        return [root]
    found = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if any(p.startswith(".") or p in SKIPPED_DIRS for p in parts) or not path.is_file():
            continue
        if skip is not None and path.resolve().is_relative_to(skip):
            continue
        found.append(path)
    return found


def _tags(cell: Any) -> list[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _outputs(cells: Iterable[Any], mime: str) -> list[Any]:
    """Return the payloads of ``mime`` in the outputs of ``cells``, in order."""
    found = []
    for cell in cells:
        for output in cell.get("outputs") or [] if cell.get("cell_type") == "code" else []:
            data = output.get("data") if isinstance(output, dict) else None
            if isinstance(data, dict) and mime in data:
                found.append(data[mime])
    return found


def _group_from_source(cells: Iterable[Any]) -> tuple[str, list[str]]:
    """Return ``GROUP_ID`` and ``MEMBERS`` as literally assigned in the cells' code (never executed)."""
    values: dict[str, Any] = {}
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source") or "")
        try:
            chunks = [ast.parse(source)]
        except SyntaxError:  # magics or a typo elsewhere in the cell: read the lines one by one
            chunks = []
            for line in source.splitlines():
                try:
                    chunks.append(ast.parse(line.strip()))
                except SyntaxError:
                    continue
        for tree in chunks:
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    name = node.targets[0].id
                    if name in {"GROUP_ID", "MEMBERS"} and name not in values:
                        try:
                            values[name] = ast.literal_eval(node.value)
                        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                            continue
    group_id = values.get("GROUP_ID")
    members = values.get("MEMBERS")
    group_id = str(group_id).strip() if isinstance(group_id, (str, int)) else ""
    members = [str(m).strip() for m in members if str(m).strip()] if isinstance(members, (list, tuple)) else []
    return group_id, members


def _read_group(sub: Submission, cells: list[Any]) -> None:
    """Fill in the group from the group cell's printed output, else from its source; note problems."""
    shown = [g for g in _outputs(cells, GROUP_MIME) if isinstance(g, dict)]
    src_id, src_members = _group_from_source(cells)
    if shown:
        group = shown[-1]
        sub.group_id = str(group.get("group_id") or "").strip()
        members = group.get("members")
        sub.members = [str(m).strip() for m in members if str(m).strip()] if isinstance(members, list) else []
        if group.get("demo"):
            sub.problems.append("demo group from a headless run: the pair did not fill in its names")
        elif (src_id or src_members) and (src_id, src_members) != (sub.group_id, sub.members):
            sub.problems.append("group cell edited after it was run (the printed group is used)")
    else:
        sub.group_id, sub.members = src_id, src_members
    if not sub.group_id or not sub.members:
        missing = [what for what, value in (("group id", sub.group_id), ("member names", sub.members)) if not value]
        sub.problems.append("no names: " + " and ".join(missing) + " not filled in")


def _read_metrics(sub: Submission) -> None:
    found = [m.get("metrics") for m in _outputs(sub.cells, METRICS_MIME) if isinstance(m, dict)]
    found = [m for m in found if isinstance(m, dict)]
    if found:
        sub.metrics = {str(k): v for k, v in found[-1].items()}
    elif any(c.get("outputs") for c in sub.cells if c.get("cell_type") == "code"):
        sub.problems.append("no metrics: the report table cell has no output from labkit.classroom.report.show_table")


def read_submission(path: Path, root: Path) -> Submission:
    """Read one handed-in file as data (never executed) and return what the export needs from it.

    :param path: the file.
    :param root: the submissions folder (file names in the gradebook are relative to it).
    """
    import nbformat

    rel = path.relative_to(root).as_posix() if path != root else path.name
    sub = Submission(path=path, file=rel)
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        sub.problems.append(f"too large to read ({len(raw) / 1e6:.0f} MB)")
        return sub
    try:
        text = raw.decode("utf-8-sig")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        sub.problems.append(f"not JSON: {str(err).splitlines()[0][:120]}")
        return sub
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or "nbformat" not in data:
        sub.problems.append("not a notebook: JSON without nbformat 'cells'")
        return sub
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as err:  # nbformat raises many types on malformed notebooks
        sub.problems.append(f"not a notebook: {str(err).splitlines()[0][:120]}")
        return sub
    cells = [c for c in nb.cells if isinstance(c, dict)]
    sub.cells = [c for c in cells if REPORT_TAG in _tags(c)]
    if not sub.cells:
        sub.problems.append(f"no report cells: no cell is tagged '{REPORT_TAG}'")
    _read_group(sub, sub.cells or cells)
    code = [c for c in sub.cells if c.get("cell_type") == "code"]
    unrun = [c for c in code if not c.get("outputs")]
    if code and len(unrun) == len(code):
        sub.problems.append("never run: the report cells have no outputs")
    elif unrun:
        sub.problems.append(f"{len(unrun)} of {len(code)} report code cells have no output")
    errors = sum(any(o.get("output_type") == "error" for o in c.get("outputs") or []) for c in code)
    if errors:
        sub.problems.append(f"{errors} report cell(s) ended in an error")
    answers = [c for c in sub.cells if c.get("cell_type") == "markdown" and ANSWER_TAG in _tags(c)]
    blank = {"", ANSWER_PLACEHOLDER, NBGRADER_ANSWER}   # labkit's placeholder, and nbgrader's in its releases
    empty = sum("".join(c.get("source") or "").strip() in blank for c in answers)
    if empty:
        sub.problems.append(f"{empty} of {len(answers)} answers left empty")
    if sub.cells:
        _read_metrics(sub)
    return sub


def _mark_duplicates(subs: list[Submission]) -> None:
    by_id: dict[str, list[Submission]] = {}
    for sub in subs:
        if sub.group_id:
            by_id.setdefault(sub.group_id.casefold(), []).append(sub)
    for same in by_id.values():
        if len(same) > 1:
            for sub in same:
                others = ", ".join(o.file for o in same if o is not sub)
                sub.problems.append(f"duplicate group id {sub.group_id!r} (also in {others})")


def _slug(sub: Submission, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", sub.group_id).strip("-")[:60]
    if not base:
        base = "nogroup-" + re.sub(r"[^A-Za-z0-9_-]+", "-", Path(sub.file).with_suffix("").as_posix()).strip("-")[:60]
    name, n = base, 2
    while name.casefold() in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name.casefold())
    return name


def _problems_html(problems: list[str]) -> str:
    if not problems:
        return '<p class="ok">No problems found.</p>'
    items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
    return f'<div class="problems"><b>Problems</b><ul>{items}</ul></div>'


def group_page(sub: Submission) -> str:
    """Return the HTML page of one submission: header, problems, then its report cells in order."""
    title = f"Group {sub.group_id}" if sub.group_id else f"No group id ({sub.file})"
    members = " · ".join(sub.members) if sub.members else "(no names)"
    cells = "\n".join(render_cell(c, answer=ANSWER_TAG in _tags(c)) for c in sub.cells)
    body = (f'<header><p class="crumb"><a href="../index.html">← all groups</a></p>'
            f"<h1>{html.escape(title)}</h1><p class=\"members\">{html.escape(members)}</p>"
            f'<p class="meta">file: {html.escape(sub.file)}</p>{_problems_html(sub.problems)}</header>\n'
            f"<main>\n{cells}\n</main>\n"
            "<footer><p>Exported by <code>labkit export</code>: the cells tagged <code>report</code>, read "
            "without running them; scripts, event handlers and external resources removed.</p></footer>")
    return page(f"{title} · labkit report", body)


def index_page(result: ExportResult) -> str:
    """Return the index page: one row per submission, linking each exported group page."""
    rows = []
    for sub in result.submissions:
        group = html.escape(sub.group_id or "(no group id)")
        link = f'<a href="{html.escape(sub.page)}">{group}</a>' if sub.page else group
        problems = "<br>".join(html.escape(p) for p in sub.problems) or '<span class="ok">none</span>'
        rows.append(f"<tr><td>{link}</td><td>{html.escape(', '.join(sub.members) or '—')}</td>"
                    f"<td>{html.escape(sub.file)}</td><td>{problems}</td></tr>")
    body = ("<header><h1>Lab reports</h1>"
            f'<p class="meta">{len(result.exported)} of {len(result.submissions)} submissions exported; '
            "the grades table is <a href=\"gradebook.csv\">gradebook.csv</a>.</p></header>\n<main>"
            '<table class="index"><thead><tr><th>group</th><th>members</th><th>file</th><th>problems</th></tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table></main>")
    return page("Lab reports · labkit", body)


def _csv_text(text: str) -> str:
    """Return ``text`` safe for a spreadsheet: a leading ``= + - @`` would start a formula, so quote it."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    return _csv_text(value) if isinstance(value, str) else json.dumps(value)


def write_gradebook(subs: list[Submission], path: Path) -> list[str]:
    """Write ``gradebook.csv`` (one row per submission) and return its metric columns.

    Metric values are written as JSON (numbers exactly as recorded, lists as ``[...]``); a metric a
    submission did not record is an empty cell. Text a spreadsheet would read as a formula (a student
    named ``=HYPERLINK(...)``) is quoted with a leading ``'``.
    """
    keys = metric_order(list(dict.fromkeys([*CORE_KEYS, *(k for s in subs for k in s.metrics)])))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "group_id", "members", "page", *keys, "problems"])
        for sub in subs:
            text = [sub.file, sub.group_id, "; ".join(sub.members), sub.page or ""]
            writer.writerow([*map(_csv_text, text), *(_csv_value(sub.metrics.get(k)) for k in keys),
                             _csv_text("; ".join(sub.problems))])
    return keys


def summary(result: ExportResult) -> str:
    """Return the summary printed at the end of an export."""
    lines = [f"labkit export: {len(result.exported)} of {len(result.submissions)} submissions exported to "
             f"{result.out} (index.html, gradebook.csv)"]
    troubled = [s for s in result.submissions if s.problems]
    if troubled:
        lines.append(f"problems in {len(troubled)} submission(s):")
        lines += [f"  {s.file}: {'; '.join(s.problems)}" for s in troubled]
    return "\n".join(lines)


def export_submissions(source: str | Path, out: str | Path,
                       echo: Callable[[str], Any] | None = print) -> ExportResult:
    """Export a folder of handed-in report notebooks (or one notebook) to HTML pages and a gradebook.

    :param source: the submissions folder (nested folders allowed) or a single notebook.
    :param out: the output folder: ``index.html``, ``gradebook.csv`` and ``groups/<group>.html`` (the
        pages of an earlier export into the same folder are replaced).
    :param echo: where the summary goes (None: nowhere).
    """
    source, out = Path(source).resolve(), Path(out).resolve()
    if not source.exists():
        raise FileNotFoundError(f"no submissions at {source}")
    if source.is_dir() and (out == source or source.is_relative_to(out)):
        raise ValueError(f"--out {out} would mix the export with the submissions; choose another folder")
    root = source if source.is_dir() else source.parent
    subs = [read_submission(p, root) for p in find_submissions(source, skip=out)]
    _mark_duplicates(subs)
    groups = out / "groups"
    groups.mkdir(parents=True, exist_ok=True)
    for old in groups.glob("*.html"):  # pages of an earlier export would otherwise linger in the index
        old.unlink()
    taken: set[str] = set()
    for sub in subs:
        if sub.exportable:
            sub.page = f"groups/{_slug(sub, taken)}.html"
            (out / sub.page).write_text(group_page(sub), encoding="utf-8")
    result = ExportResult(subs, out)
    (out / "index.html").write_text(index_page(result), encoding="utf-8")
    write_gradebook(subs, out / "gradebook.csv")
    if echo is not None:
        echo(summary(result))
    return result
