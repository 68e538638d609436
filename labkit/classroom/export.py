"""The teacher's export: ``labkit export SUBMISSIONS --out DIR``.

Every file under SUBMISSIONS (nested folders allowed) is read as data with nbformat: it is never
executed and never written to. For each readable notebook the export writes one HTML page of its
cells tagged ``report`` (with their outputs, sanitised by ``labkit.classroom._sanitize``), then ``index.html``
linking all groups, and the gradebook (``labkit.classroom.gradebook``): ``gradebook.csv`` with a row per student
and ``metrics.csv`` with the numbers the report table recorded (read from the table cell's machine-readable
output), each with the problems found (not JSON, not a notebook, no report cells, no names, a duplicate group id,
report cells never run, numbers from the key's run, another group's run or no run ...).
"""

from __future__ import annotations

import ast
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from labkit.classroom.report import (ANSWER_PLACEHOLDER, ANSWER_TAG, GROUP_MIME, METRICS_MIME, REPORT_TAG)
from labkit.classroom._intake import (Found, IntakeError, check_out, display, find_entries, load_notebook, prepare_out,
                                     printable, read_capped, write_file)
from labkit.classroom._sanitize import Budget, page, render_cell
from labkit.classroom.gradebook import provenance_problems, write_gradebook
from labkit.classroom.student import ANSWER as NBGRADER_ANSWER

__all__ = ["Submission", "ExportResult", "find_entries", "read_submission", "export_submissions"]

OUTPUTS = ("index.html", "gradebook.csv", "metrics.csv", "groups")
"""What the export writes directly under ``--out`` (a symlink planted at one of these is removed first)."""
MAX_SOURCE = 20_000
"""The longest group cell whose code is parsed for GROUP_ID and MEMBERS (a real one is ~200 characters)."""
MAX_NAME = 200


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


def _parse(source: str) -> list[ast.Module]:
    """Return the cell's code as syntax trees (the whole cell, else line by line); nothing is executed."""
    try:
        return [ast.parse(source)]
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # magics, typos, absurd expressions
        chunks = []
        for line in source.splitlines():
            try:
                chunks.append(ast.parse(line.strip()))
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                continue
        return chunks


def _name(value: Any, problems: list[str]) -> str:
    """Return a group id or member name as text: a string or a small integer, at most ``MAX_NAME`` characters."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 128:
            problems.append(f"group id is a number of about {int(value.bit_length() * 0.30103)} digits: "
                            "write the group id as text, e.g. 'G01'")
            return ""
        value = str(value)
    if not isinstance(value, str):
        return ""
    text = display(value).strip()
    if len(text) > MAX_NAME:
        problems.append(f"a name or group id of {len(text)} characters was cut to {MAX_NAME}")
    return text[:MAX_NAME]


def _names(values: Any, problems: list[str]) -> list[str]:
    """Return the member names in ``values`` (a list or tuple), blanks left out, at most 20."""
    if not isinstance(values, (list, tuple)):
        return []
    first = [v[0] if isinstance(v, (list, tuple)) and len(v) == 2 else v for v in values[:20]]  # (name, id)
    names = [n for n in (_name(v, problems) for v in first) if n]
    if len(values) > 20:
        problems.append(f"{len(values)} member names: only the first 20 are listed")
    return names


def _group_from_source(cells: Iterable[Any], problems: list[str]) -> tuple[str, list[str]]:
    """Return ``GROUP_ID`` and ``MEMBERS`` as literally assigned in the cells' code (never executed)."""
    values: dict[str, Any] = {}
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source") or "")
        if len(source) > MAX_SOURCE:
            problems.append(f"a report code cell of {len(source)} characters was not searched for GROUP_ID")
            continue
        for tree in _parse(source):
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    name = node.targets[0].id
                    if name in {"GROUP_ID", "MEMBERS"} and name not in values:
                        try:
                            values[name] = ast.literal_eval(node.value)
                        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                            continue
    return _name(values.get("GROUP_ID"), problems), _names(values.get("MEMBERS"), problems)


def _read_group(sub: Submission, cells: list[Any]) -> None:
    """Fill in the group from the group cell's printed output, else from its source; note problems."""
    shown = [g for g in _outputs(cells, GROUP_MIME) if isinstance(g, dict)]
    src_id, src_members = _group_from_source(cells, sub.problems)
    if shown:
        group = shown[-1]
        sub.group_id = _name(group.get("group_id"), sub.problems)
        sub.members = _names(group.get("members"), sub.problems)
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
        sub.metrics = {display(str(k)): v for k, v in found[-1].items()}
        sub.problems.extend(provenance_problems(sub))   # numbers from the key's run, another group's, no run
    elif any(c.get("outputs") for c in sub.cells if c.get("cell_type") == "code"):
        sub.problems.append("no metrics: the report table cell has no output from labkit.classroom.report.show_table")


def read_submission(path: Path, root: Path, file: str | None = None) -> Submission:
    """Read one handed-in file as data (never executed) and return what the export needs from it.

    :param path: the file.
    :param root: the submissions folder (file names in the gradebook are relative to it).
    :param file: the name to list it under (default: ``path`` relative to ``root``).
    """
    rel = file or display(path.relative_to(root).as_posix() if path != root else path.name)
    sub = Submission(path=path, file=rel)
    try:
        nb, notes = load_notebook(read_capped(path))
    except IntakeError as err:
        sub.problems.append(str(err))
        return sub
    sub.problems += notes
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
    errors = sum(any(isinstance(o, dict) and o.get("output_type") == "error" for o in c.get("outputs") or [])
                 for c in code)
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
    budget = Budget()
    cells = "\n".join(render_cell(c, answer=ANSWER_TAG in _tags(c), budget=budget) for c in sub.cells)
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


def summary(result: ExportResult) -> str:
    """Return the summary printed at the end of an export."""
    lines = [f"labkit export: {len(result.exported)} of {len(result.submissions)} submissions exported to "
             f"{result.out} (index.html, gradebook.csv)"]
    troubled = [s for s in result.submissions if s.problems]
    if troubled:
        lines.append(f"problems in {len(troubled)} submission(s):")
        lines += [f"  {s.file}: {'; '.join(s.problems)}" for s in troubled]
    return "\n".join(printable(line) for line in lines)


def _read_isolated(found: Found, root: Path) -> Submission:
    """Return one entry as a submission; whatever goes wrong reading it becomes its problem, never the class's."""
    if found.path is None:
        return Submission(path=root / found.rel.rstrip("/"), file=found.rel, problems=[found.reason or "skipped"])
    try:
        return read_submission(found.path, root, found.rel)
    except Exception as err:  # noqa: BLE001 - a hostile file may raise anything; it must not stop the class
        return Submission(path=found.path, file=found.rel, problems=[_failure("could not be read", err)])


def _failure(what: str, err: BaseException) -> str:
    detail = printable(str(err).splitlines()[0] if str(err).strip() else "")[:120]
    return f"{what} ({type(err).__name__}{': ' + detail if detail else ''})"


def _clear_groups(groups: Path) -> None:
    """Make ``groups`` a real folder without the pages of an earlier export (links removed, never followed)."""
    if groups.is_symlink() or (groups.exists() and not groups.is_dir()):
        raise ValueError(f"{display(str(groups))} is not a folder: remove it or choose another --out")
    groups.mkdir(exist_ok=True)
    for entry in os.scandir(groups):  # pages of an earlier export would otherwise linger in the index
        if entry.name.endswith(".html") and (entry.is_symlink() or entry.is_file(follow_symlinks=False)):
            os.unlink(entry.path)


def _write_pages(subs: list[Submission], out: Path) -> None:
    """Write one page per exportable submission; a page that cannot be made becomes its problem."""
    taken: set[str] = set()
    for sub in subs:
        if sub.exportable:
            try:
                name = f"groups/{_slug(sub, taken)}.html"
                write_file(out / name, group_page(sub))
                sub.page = name
            except Exception as err:  # noqa: BLE001 - one hostile page must not stop the class
                sub.problems.append(_failure("page could not be written", err))


def export_submissions(source: str | Path, out: str | Path,
                       echo: Callable[[str], Any] | None = print) -> ExportResult:
    """Export a folder of handed-in report notebooks (or one notebook) to HTML pages and a gradebook.

    :param source: the submissions folder (nested folders allowed) or a single notebook.
    :param out: the output folder: ``index.html``, ``gradebook.csv`` and ``groups/<group>.html`` (the
        pages of an earlier export into the same folder are replaced).
    :param echo: where the summary goes (None: nowhere).
    """
    source = Path(source).resolve()
    if not source.exists():
        raise FileNotFoundError(f"no submissions at {display(str(source))}")
    out = check_out(source, out)
    root = source if source.is_dir() else source.parent
    subs = [_read_isolated(found, root) for found in find_entries(source, skip=out)]
    _mark_duplicates(subs)
    prepare_out(out, OUTPUTS)
    _clear_groups(out / "groups")
    _write_pages(subs, out)
    result = ExportResult(subs, out)
    write_file(out / "index.html", index_page(result))
    write_gradebook(subs, out / "gradebook.csv")
    if echo is not None:
        echo(summary(result))
    return result
