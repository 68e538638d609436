"""The teacher's gradebook: ``gradebook.csv`` (one row per student, for an LMS) and ``metrics.csv`` (raw numbers).

``gradebook.csv`` has one row per member of each handed-in report: the identity columns an LMS matches on
(Canvas's ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``; Moodle maps ``SIS User ID`` to its
ID number), the group and file, one column per rubric item (``RUBRIC``: the table's points, computed from the
report's saved table and its provenance; each written answer's points, empty until the teacher grades it), one
column per exercise's self-check (``pass``, ``hint`` or ``not run``: from the saved output of a check cell in the
submission, else from the verdict the check recorded into the pair's store, which the report's table output
carries), the total of the graded items, and the problems.

``metrics.csv`` has one row per submission with the numbers of the report table: a fixed, quoted header of known
metric keys only (the core keys, then the extension rows' keys, at most ``MAX_METRIC_COLUMNS``), so no submission
can add thousands of columns or a column named like a fixed one.

Everything read here comes from a handed-in notebook: it is data, never executed, and every text cell is made safe
for a spreadsheet (a leading ``= + - @`` would start a formula).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

from labkit.classroom.report import (CORE_KEYS, GROUP_MIME, METRICS_MIME, metric_order, origin_problems,
                                     report_table, table_points)

__all__ = ["RubricItem", "RUBRIC", "RUBRIC_TOTAL", "IDENTITY_COLUMNS", "MAX_METRIC_COLUMNS", "exercise_checks",
           "cell_verdicts",
           "students", "table_payload", "provenance_problems", "gradebook_rows", "metrics_columns",
           "write_gradebook"]


class RubricItem(NamedTuple):
    """One graded item of the report: its nbgrader grade id, what it grades, and its points."""

    grade_id: str
    title: str
    points: int


RUBRIC: tuple[RubricItem, ...] = (
    RubricItem("report-table", "group cell and table (autograded)", 2),
    RubricItem("report-q1", "Question 1: evasion defences", 2),
    RubricItem("report-q2", "Question 2: reactive defence", 2),
    RubricItem("report-q3", "Question 3: Neural Cleanse", 2),
    RubricItem("report-q4", "Question 4: one number", 2),
)
"""The rubric: the report notebook's nbgrader grade cells, in order (a test keeps them equal)."""
RUBRIC_TOTAL = sum(item.points for item in RUBRIC)
IDENTITY_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section", "group", "file", "page")
"""Canvas's identity columns first (its ``ID`` is Canvas's own user id: left empty), then labkit's."""
MAX_METRIC_COLUMNS = 200
_MAX_TEXT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CHECK_CALL = re.compile(r"labkit\.check\.(\w+)\(")
_METRIC_KEY = re.compile(r"^[A-Za-z0-9_]{1,40}(\.[A-Za-z0-9_]{1,40}){1,4}$")


def _csv_text(text: str) -> str:
    """Return ``text`` safe for a spreadsheet: a leading ``= + - @`` would start a formula, so quote it."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _csv_text(_clean(value, 10_000))
    try:
        return json.dumps(value, allow_nan=False)[:10_000]
    except (ValueError, TypeError, RecursionError):
        return ""


def _clean(value: Any, limit: int = _MAX_TEXT) -> str:
    """Return ``value`` as one line of printable text, at most ``limit`` characters."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 128:
        value = str(value)
    return _CONTROL.sub(" ", value).strip()[:limit] if isinstance(value, str) else ""


def exercise_checks(notebooks: Sequence[Path] | None = None) -> list[str]:
    """Return the self-checks the lab's notebooks call, in lab order (empty when no notebooks are found).

    :param notebooks: the solution notebooks; default: the lab's.
    """
    import nbformat

    from labkit.classroom.runner import lab_notebooks

    try:
        paths = lab_notebooks() if notebooks is None else list(notebooks)
    except FileNotFoundError:
        return []
    names: dict[str, None] = {}
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                names.update(dict.fromkeys(_CHECK_CALL.findall(cell.source)))
    names.pop("todo", None)   # the student edition's placeholder, not a check
    return list(names)


def _payloads(cells: Iterable[Any], mime: str) -> list[dict[str, Any]]:
    found = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs") or []:
            data = output.get("data") if isinstance(output, dict) else None
            if isinstance(data, dict) and isinstance(data.get(mime), dict):
                found.append(data[mime])
    return found


def table_payload(cells: Iterable[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the (metrics, provenance) that the report's table cell saved (both empty when none)."""
    shown = _payloads(cells, METRICS_MIME)
    payload = shown[-1] if shown else {}
    metrics = payload.get("metrics") if isinstance(payload.get("metrics"), dict) else {}
    provenance = payload.get("provenance") if isinstance(payload.get("provenance"), dict) else {}
    return metrics, provenance


def _table(sub: Any) -> Any:
    metrics, provenance = table_payload(sub.cells)
    return report_table(metrics, provenance, group_id=sub.group_id or None, edition="student")


def provenance_problems(sub: Any) -> list[str]:
    """Return the submission's rows whose numbers came from the key's run, another group's run, or no run.

    :param sub: an export ``Submission`` (its report cells and group id are read).
    """
    metrics, _ = table_payload(sub.cells)
    return origin_problems(_table(sub)) if metrics else []


def students(sub: Any) -> list[tuple[str, str]]:
    """Return (name, student id) of each member: from the group cell's saved output, else the names read.

    :param sub: an export ``Submission``.
    """
    shown = _payloads(sub.cells, GROUP_MIME)
    if shown:
        members, ids = shown[-1].get("members"), shown[-1].get("ids")
        members = members if isinstance(members, list) else []
        ids = ids if isinstance(ids, list) else []
        pairs = [(_clean(m), _clean(ids[k]) if k < len(ids) else "") for k, m in enumerate(members[:20])]
        pairs = [(name, sid) for name, sid in pairs if name]
        if pairs:
            return pairs
    return [(_clean(name), "") for name in sub.members[:20]]


def cell_verdicts(cells: Iterable[Any]) -> dict[str, str]:
    """Return ``{check name: pass / hint / not run}`` from the saved outputs of the check cells among ``cells``.

    A check cell calls ``labkit.check.<name>(...)``; its verdict line (``[PASSED] name`` or ``[NOT YET] name``),
    or an error (a strict run), gives the status; a cell without outputs was not run.

    :param cells: a submission's cells (read as data).
    """
    from labkit.check._base import PASSED

    found: dict[str, str] = {}
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source")
        called = [n for n in _CHECK_CALL.findall(source if isinstance(source, str) else "") if n != "todo"]
        outputs = [o for o in cell.get("outputs") or [] if isinstance(o, dict)]
        text = " ".join(str(o.get("text", "")) for o in outputs)
        for name in called[:50]:
            found[name] = ("not run" if not outputs else "pass" if f"{PASSED} {name}" in text else "hint")
    return found


def _check_status(name: str, metrics: dict[str, Any], provenance: dict[str, Any], group_id: str | None) -> str:
    from labkit.metrics import CHECK_PREFIX
    from labkit.provenance import OWN_RUN, origin

    value = metrics.get(CHECK_PREFIX + name)
    if value not in ("pass", "hint"):
        return "not run"
    where = origin(provenance.get(CHECK_PREFIX + name), edition="student", group_id=group_id)
    return value if where == OWN_RUN else f"{value} ({where})"


def gradebook_rows(subs: Sequence[Any], checks: Sequence[str] | None = None) -> tuple[list[str], list[list[Any]]]:
    """Return the header and rows of ``gradebook.csv``: one row per student of each submission.

    :param subs: the export's submissions.
    :param checks: the self-checks to list (default: ``exercise_checks()``).
    """
    checks = exercise_checks() if checks is None else list(checks)
    header = [*IDENTITY_COLUMNS, *(f"{item.grade_id} ({item.points} pts)" for item in RUBRIC),
              *(f"check {name}" for name in checks), f"total ({RUBRIC_TOTAL} pts)", "problems"]
    rows = []
    for sub in subs:
        metrics, provenance = table_payload(sub.cells)
        points = {"report-table": table_points(_table(sub))} if sub.cells else {}
        saved = cell_verdicts(sub.cells)   # a check cell handed in wins over the store's record
        statuses = [saved.get(n) or _check_status(n, metrics, provenance, sub.group_id or None) if sub.cells else ""
                    for n in checks]
        for name, student_id in students(sub) or [("", "")]:
            rows.append([name, "", student_id, "", "", sub.group_id, sub.file, sub.page or "",
                         *(points.get(item.grade_id, "") for item in RUBRIC), *statuses,
                         sum(points.values()) if points else "", "; ".join(sub.problems)])
    return header, rows


def metrics_columns(subs: Sequence[Any]) -> tuple[list[str], list[str]]:
    """Return the metric keys of ``metrics.csv`` (known keys only, report order) and the keys left out.

    Known keys are the core keys and the keys of the extension rows the report table shows; a key must look
    like the lab's (dotted words), so none can equal a fixed column. At most ``MAX_METRIC_COLUMNS``.

    :param subs: the export's submissions.
    """
    from labkit.classroom.report import _extension_scenarios

    known: dict[str, None] = dict.fromkeys(CORE_KEYS)
    dropped: dict[str, None] = {}
    for sub in subs:
        for row in _extension_scenarios(sub.metrics):
            if not isinstance(row, tuple):
                for key in (*row.keys, *row.notes):
                    target = known if _METRIC_KEY.match(key) and len(known) < MAX_METRIC_COLUMNS else dropped
                    target[key] = None
        dropped.update(dict.fromkeys(k for k in sub.metrics if k not in known))
    return metric_order(list(known)), [k for k in dropped if k not in known]


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Return CSV text: the header quoted, every text cell safe for a spreadsheet."""
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL).writerow([_csv_text(h) for h in header])
    body = csv.writer(buffer)
    for row in rows:
        body.writerow([_csv_value(v) for v in row])
    return buffer.getvalue()


def write_gradebook(subs: list[Any], path: Path) -> list[str]:
    """Write ``gradebook.csv`` at ``path`` and ``metrics.csv`` beside it; return the metric columns.

    :param subs: the export's submissions (in file order).
    :param path: the gradebook file (``<out>/gradebook.csv``).
    """
    from labkit.classroom._intake import write_file

    header, rows = gradebook_rows(subs)
    write_file(path, _csv(header, rows))
    keys, _ = metrics_columns(subs)
    metric_rows = [[sub.group_id, sub.file, *(sub.metrics.get(k) for k in keys)] for sub in subs]
    write_file(path.with_name("metrics.csv"), _csv(["group", "file", *keys], metric_rows))
    return keys
