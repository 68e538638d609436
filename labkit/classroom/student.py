"""The student edition: the solution notebooks with every exercise blanked, nbgrader-style.

Exercises are marked the way nbgrader marks them, so teachers who already use nbgrader can take the same
notebooks: in a code cell, the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` are the pair's to
write; a markdown cell whose ``nbgrader`` metadata says ``"solution": true`` is an answer to write. The student
edition replaces each code region with ``# YOUR CODE HERE`` and a ``labkit.check.todo(...)`` line that, run
unfilled, says what to write there ("Exercise 1: compute `predictions` here, then run the check below") instead of
a bare ``NotImplementedError`` traceback (at the region's indentation), each markdown solution with
``YOUR ANSWER HERE`` (the report's answer cells, tagged ``answer``,
with the report's own placeholder, which ``labkit export`` counts as unanswered), strips every output, and leaves
all else identical.
"""

from __future__ import annotations

import ast
import copy
import re
import textwrap
from pathlib import Path
from typing import Any

__all__ = ["BEGIN", "END", "STUB", "MarkerError", "check_markers", "student_notebook", "write_student_edition",
           "is_exercise", "exercise_cell_metadata", "answer_cell_metadata", "instruction"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
ANSWER = "YOUR ANSWER HERE"
STUB = "# YOUR CODE HERE"
_MARKER = re.compile(r"^(\s*)(### (BEGIN|END) SOLUTION)\s*$")
_EXERCISE = re.compile(r"\*\*Exercise (\d+)\.\*\*")
_DEF = re.compile(r"^(\s*)def (\w+)\(")


class MarkerError(ValueError):
    """Solution markers are unbalanced, nested, or stand where they cannot be blanked."""


def _regions(source: str, where: str) -> list[tuple[int, int, str]]:
    """Return (begin line, end line, indentation) of every solution region of a cell's source."""
    regions, start, indent = [], None, ""
    for number, line in enumerate(source.splitlines()):
        match = _MARKER.match(line)
        if not match:
            continue
        if match.group(3) == "BEGIN":
            if start is not None:
                raise MarkerError(f"{where}, line {number + 1}: {BEGIN} inside another solution region")
            start, indent = number, match.group(1)
        else:
            if start is None:
                raise MarkerError(f"{where}, line {number + 1}: {END} without a {BEGIN} before it")
            regions.append((start, number, indent))
            start = None
    if start is not None:
        raise MarkerError(f"{where}, line {start + 1}: {BEGIN} is never closed by {END}")
    return regions


def _nbgrader_problem(meta: dict[str, Any], cell_type: str, seen: set[str]) -> str | None:
    """Return what nbgrader's metadata validator (schema 3) would reject in one cell's metadata, else None."""
    grade, solution, locked = meta.get("grade", False), meta.get("solution", False), meta.get("locked", False)
    if not (grade or solution or locked):
        return None
    grade_id = meta.get("grade_id", "")
    if not grade_id:
        return "an nbgrader cell needs a non-empty grade_id"
    if grade_id in seen:
        return f"grade_id {grade_id!r} is used twice (nbgrader needs unique ids)"
    seen.add(grade_id)
    if grade and "points" not in meta:
        return f"grade cell {grade_id!r} has no points"
    if cell_type == "markdown" and not meta.get("task", False) and bool(grade) != bool(solution):
        return f"markdown cell {grade_id!r} must be both a grade and a solution cell (a graded written answer)"
    return None


def check_markers(nb: Any, name: str = "notebook") -> int:
    """Check that every solution region is balanced and not nested, and that the nbgrader metadata is what
    nbgrader accepts; return the number of exercises.

    An exercise is a code cell with at least one region or a markdown cell marked as an nbgrader solution.

    :param nb: a notebook (nbformat node).
    :param name: the notebook's name, used in error messages.
    """
    count, seen = 0, set()
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}"
        regions = _regions(cell.source, where)
        meta = cell.get("metadata", {}).get("nbgrader", {})
        problem = _nbgrader_problem(meta, cell.cell_type, seen)
        if problem:
            raise MarkerError(f"{where}: {problem}")
        solution = meta.get("solution", False)
        if cell.cell_type == "code":
            if regions and not solution:
                raise MarkerError(f"{where}: a solution region in a cell whose nbgrader metadata lacks solution: true")
        elif cell.cell_type == "markdown" and regions:
            raise MarkerError(f"{where}: markdown answers are whole solution cells, not marked regions")
        count += is_exercise(cell)
    return count


def is_exercise(cell: Any) -> bool:
    """Return whether a cell is an exercise: a code cell with a solution region, or a markdown solution cell."""
    if cell.cell_type == "code":
        return any(match and match.group(3) == "BEGIN" for match in map(_MARKER.match, cell.source.splitlines()))
    return cell.cell_type == "markdown" and bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def exercise_cell_metadata(grade_id: str) -> dict[str, Any]:
    """Return the nbgrader metadata that marks a code cell as an (ungraded, self-checked) exercise ``grade_id``."""
    return {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": True,
            "task": False}


def answer_cell_metadata(grade_id: str, points: float) -> dict[str, Any]:
    """Return the nbgrader metadata that marks a markdown cell as a written answer ``grade_id``, graded by hand.

    :param grade_id: the answer's id, unique in its notebook.
    :param points: the points it is worth (the rubric's).
    """
    return {"grade": True, "grade_id": grade_id, "locked": False, "points": points, "schema_version": 3,
            "solution": True, "task": False}


def _bound_names(code: str) -> list[str]:
    """Return the names a region of code assigns, in order of first appearance ([] if it does not parse)."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return []
    stored = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)]
    return list(dict.fromkeys(node.id for node in sorted(stored, key=lambda n: (n.lineno, n.col_offset))))


def instruction(number: int | None, lines: list[str], start: int, end: int, used: set[str]) -> str:
    """Return what an unfilled exercise region says when run: which exercise, what to write, what comes next.

    :param number: the exercise's number (the last "**Exercise N.**" before the cell), or None.
    :param lines: the solution cell's lines.
    :param start: the line of the region's BEGIN marker.
    :param end: the line of its END marker.
    :param used: names the notebook's given code uses outside solution regions (what the region must create).
    """
    what = f"Exercise {number}" if number else "This exercise"
    indent = len(lines[start]) - len(lines[start].lstrip())
    defs = [m for m in map(_DEF.match, lines[:start]) if m and len(m.group(1)) < indent]
    if defs:
        return f"{what}: write the body of `{defs[-1].group(2)}` here, then run the check below"
    names = [n for n in _bound_names("\n".join(lines[start + 1:end])) if n in used]
    if names:
        listed = ", ".join(f"`{n}`" for n in names[:-1]) + (" and " if len(names) > 1 else "") + f"`{names[-1]}`"
        return f"{what}: compute {listed} here, then run the check below"
    return f"{what}: write your code here, then run the check below"


def _blank_code(source: str, where: str, number: int | None = None, used: set[str] = frozenset()) -> str:
    lines = source.splitlines()
    out: list[str] = []
    previous = 0
    for start, end, indent in _regions(source, where):
        out.extend(lines[previous:start])
        message = instruction(number, lines, start, end, used)
        out.extend([f"{indent}{STUB}", f"{indent}labkit.check.todo({message!r})"])
        previous = end + 1
    out.extend(lines[previous:])
    return "\n".join(out)


def _given_names(nb: Any, name: str) -> set[str]:
    """Return every identifier the notebook's code uses outside its solution regions."""
    given: set[str] = set()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            lines, previous = cell.source.splitlines(), 0
            for start, end, _ in _regions(cell.source, f"{name}, cell {index}"):
                given.update(re.findall(r"[A-Za-z_]\w*", "\n".join(lines[previous:start])))
                previous = end + 1
            given.update(re.findall(r"[A-Za-z_]\w*", "\n".join(lines[previous:])))
    return given


def _answer_placeholder(cell: Any) -> str:
    """Return what replaces a markdown answer: the report's placeholder for its answer cells (so that ``labkit
    export`` can count unanswered questions), else nbgrader's."""
    from labkit.classroom.report import ANSWER_PLACEHOLDER, ANSWER_TAG

    return ANSWER_PLACEHOLDER if ANSWER_TAG in cell.get("metadata", {}).get("tags", []) else ANSWER


def student_notebook(nb: Any, name: str = "notebook") -> Any:
    """Return the student edition of a solution notebook (the input is not modified).

    :param nb: a solution notebook (nbformat node).
    :param name: the notebook's name, used in error messages.
    """
    check_markers(nb, name)
    student = copy.deepcopy(nb)
    used, number = _given_names(nb, name), None
    for index, cell in enumerate(student.cells):
        if cell.cell_type == "markdown":
            number = next((int(n) for n in reversed(_EXERCISE.findall(cell.source))), number)
        if cell.cell_type == "code":
            cell.source = _blank_code(cell.source, f"{name}, cell {index}", number, used)
            cell.outputs = []
            cell.execution_count = None
        elif is_exercise(cell):   # a written answer
            cell.source = _answer_placeholder(cell)
        cell.get("metadata", {}).pop("execution", None)
    return student


def write_student_edition(notebooks: list[Path], out: str | Path) -> list[Path]:
    """Write the student edition of each solution notebook into ``out``; return the written paths.

    :param notebooks: the solution notebooks.
    :param out: the folder to write into (created).
    """
    import nbformat

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        student = student_notebook(nb, path.name)
        nbformat.validate(student)
        target = out / path.name
        nbformat.write(student, target)
        written.append(target)
    return written
