"""Run the student edition as a class runs it: filled with a pair's answers, one fresh kernel per notebook.

``fill`` puts answers in the blanked places of a student notebook (the n-th code stub or written-answer
placeholder gets the n-th answer, indented to the stub's indentation). ``simulate`` executes one filled notebook
cell by cell in one kernel (nbclient's ``setup_kernel`` / ``execute_cell``). At each exercise it first runs the
cell unfilled and its check (what a pair sees before writing anything), then every wrong answer for it followed by
its check cell (each must make the check print its hint, and nothing the pair did not write may crash), and
finally the right answer, after which the notebook goes on. Everything seen is returned as a ``Run`` for the tests
to assert on.
"""

from __future__ import annotations

import copy
import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from labkit.check import NOT_YET, PASSED
from labkit.check._notebook import NOT_DONE
from labkit.classroom.student import STUB, is_exercise

_TODO = re.compile(r"^(\s*)labkit\.check\.todo\((.*)\)\s*$")
_WHERE = "__sim_where__"
# run after an error: the line of the cell (the innermost frame of the cell's own code) where it was raised
_LOCATE = f"""
import sys as _sim_sys
_sim_tb, _sim_file, _sim_line = _sim_sys.last_traceback, None, None
while _sim_tb is not None:
    if _sim_file is None and _sim_tb.tb_frame.f_code.co_name == "<module>":
        _sim_file = _sim_tb.tb_frame.f_code.co_filename
    if _sim_tb.tb_frame.f_code.co_filename == _sim_file:
        _sim_line = _sim_tb.tb_lineno
    _sim_tb = _sim_tb.tb_next
print("{_WHERE}", _sim_line)
del _sim_sys, _sim_tb, _sim_file, _sim_line
"""
_SNAPSHOT = "_sim_names = set(globals())"
_FORGET = ("for _sim_name in [n for n in set(globals()) - _sim_names if not n.startswith('_')]:\n"
           "    del globals()[_sim_name]")


@dataclass
class WrongAnswer:
    """A plausible mistake at one blanked place, and the words its check's hint must contain.

    :param place: the index of the blanked place in the notebook (0 = its first exercise region), as in ANSWERS.
    :param code: the pair's wrong code (zero indentation).
    :param hint: a regular expression the check cell's hint must match (None: the wrong code itself raises, and
        the check must then say the exercise is not done, or print a hint).
    :param why: the kind of mistake (units, wrong split, forgotten copy ...).
    :param prepare: code the harness runs before, to keep what the mistake would spoil (names starting with _).
    :param restore: code the harness runs after the check, to put back what the mistake spoilt.
    """

    place: int
    code: str
    hint: str | None
    why: str
    prepare: str = ""
    restore: str = ""


@dataclass
class Outcome:
    """What one execution of an exercise cell and its check cell showed."""

    label: str
    exercise_error: str | None = None
    error_in_pair_code: bool = True
    check_text: str = ""
    check_error: str | None = None
    check_out: bool = False


@dataclass
class Run:
    """Everything one notebook's simulation saw."""

    name: str
    errors: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    check_outs: list[str] = field(default_factory=list)
    unfilled: list[Outcome] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    wrong: list[tuple[WrongAnswer, Outcome]] = field(default_factory=list)


def _stubs(source: str) -> list[tuple[int, str]]:
    """Return (line of the ``todo`` call, indentation) of every blanked region of a student cell."""
    lines = source.splitlines()
    return [(i, m.group(1)) for i, m in enumerate(map(_TODO.match, lines))
            if m and i > 0 and lines[i - 1].strip() == STUB]


def places(nb: Any) -> list[tuple[int, int]]:
    """Return every blanked place of a student notebook in document order: (cell index, region number in it)."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            found.extend((index, k) for k in range(len(_stubs(cell.source))))
        elif is_exercise(cell):
            found.append((index, 0))
    return found


def fill_cell(source: str, answers: Sequence[str | None]) -> tuple[str, list[range]]:
    """Replace the stubs of a student code cell by answers; return the source and the lines each answer holds.

    :param source: the student cell.
    :param answers: one answer per stub (None leaves that stub as it is).
    """
    lines, out, ranges, previous = source.splitlines(), [], [], 0
    stubs = _stubs(source)
    if len(stubs) != len(answers):
        raise ValueError(f"the cell has {len(stubs)} blanked regions, {len(answers)} answers given")
    for (line, indent), answer in zip(stubs, answers):
        out.extend(lines[previous:line + 1 if answer is None else line - 1])
        if answer is not None:
            start = len(out)
            out.extend(textwrap.indent(textwrap.dedent(answer), indent, lambda _: True).splitlines())
            ranges.append(range(start + 1, len(out) + 1))   # 1-based, as tracebacks count lines
        previous = line + 1
    out.extend(lines[previous:])
    return "\n".join(out), ranges


def fill(nb: Any, answers: Sequence[str]) -> Any:
    """Return a copy of the student notebook with every blanked place filled with ``answers`` (document order)."""
    where = places(nb)
    if len(where) != len(answers):
        raise ValueError(f"the notebook has {len(where)} blanked places, {len(answers)} answers given")
    filled = copy.deepcopy(nb)
    for index in sorted({i for i, _ in where}):
        cell = filled.cells[index]
        mine = [a for (i, _), a in zip(where, answers) if i == index]
        cell.source = fill_cell(cell.source, mine)[0] if cell.cell_type == "code" else mine[0]
    return filled


def _text(outputs: list[Any], name: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == name)


def _error(outputs: list[Any]) -> Any:
    return next((o for o in outputs if o.output_type == "error"), None)


class _Kernel:
    """One kernel for one notebook, running cells given as source."""

    def __init__(self, client: Any) -> None:
        from nbformat.v4 import new_code_cell

        self.client, self._new = client, new_code_cell

    def run(self, source: str) -> list[Any]:
        cell = self._new(source)
        self.client.execute_cell(cell, 0, store_history=True)
        return cell.outputs

    def where(self) -> int | None:
        """The line of the last error within its cell's own code."""
        text = _text(self.run(_LOCATE))
        found = re.search(rf"{_WHERE} (\w+)", text)
        return int(found.group(1)) if found and found.group(1) != "None" else None


def _check_outcome(kernel: _Kernel, outcome: Outcome, check_source: str) -> Outcome:
    outputs = kernel.run(check_source)
    error = _error(outputs)
    outcome.check_text = _text(outputs) + ("\n".join(error.traceback) if error else "")
    outcome.check_error = None if error is None else f"{error.ename}: {error.evalue}"
    outcome.check_out = any(o.output_type == "execute_result" for o in outputs)
    return outcome


def _attempt(kernel: _Kernel, label: str, source: str, pair_lines: list[range], check_source: str) -> Outcome:
    """Run an exercise cell (``pair_lines``: the pair's lines in it) and its check cell."""
    outcome = Outcome(label)
    error = _error(kernel.run(source))
    if error is not None:
        outcome.exercise_error = f"{error.ename}: {error.evalue}"
        line = kernel.where()
        outcome.error_in_pair_code = line is not None and any(line in r for r in pair_lines)
    return _check_outcome(kernel, outcome, check_source)


def _unfilled(kernel: _Kernel, source: str, check_source: str) -> tuple[Outcome, list[str]]:
    """Run an exercise cell as the student edition has it, then its check."""
    outcome = Outcome("unfilled")
    outputs = kernel.run(source)
    error = _error(outputs)
    outcome.exercise_error = None if error is None else f"{error.ename}: {error.evalue}"
    instruction = list(error.traceback) if error is not None else []
    return _check_outcome(kernel, outcome, check_source), instruction


def _code_cells(nb: Any) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def _exercise(kernel: _Kernel, run: Run, student: Any, index: int, check: int, right: list[str | None],
              first_place: int, wrong: Sequence[WrongAnswer]) -> None:
    """Everything the simulation does at one exercise cell before its right answer runs."""
    check_source = student.cells[check].source
    outcome, instruction = _unfilled(kernel, student.cells[index].source, check_source)
    run.unfilled.append(outcome)
    run.instructions.extend(instruction)
    kernel.run(_SNAPSHOT)
    for answer in wrong:
        if answer.prepare:
            kernel.run(answer.prepare)
        answers = list(right)
        answers[answer.place - first_place] = answer.code
        source, ranges = fill_cell(student.cells[index].source, answers)
        run.wrong.append((answer, _attempt(kernel, answer.why, source, ranges, check_source)))
        kernel.run(_FORGET)
        if answer.restore:
            kernel.run(answer.restore)


def simulate(name: str, student: Any, answers: Sequence[str], wrong: Sequence[WrongAnswer], *, workdir: Path,
             env: dict[str, str], timeout: int = 900) -> Run:
    """Execute one student notebook filled with ``answers``, trying ``wrong`` answers at their exercises.

    :param name: the notebook's stem.
    :param student: the student edition of the notebook (nbformat node).
    :param answers: the pair's right answer for each blanked place, in document order.
    :param wrong: wrong answers, each at one place.
    :param workdir: the kernel's working folder.
    :param env: the kernel's environment (LABKIT_OUT, LABKIT_FAST, LABKIT_STRICT_CHECKS ...).
    :param timeout: seconds one cell may take.
    """
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    run = Run(name)
    where = places(student)
    filled = fill(student, answers)
    client = NotebookClient(new_notebook(cells=[new_code_cell("")]), timeout=timeout, kernel_name="python3",
                            allow_errors=True, startup_timeout=300, resources={"metadata": {"path": str(workdir)}})
    code = _code_cells(student)
    with client.setup_kernel(env=env, cwd=str(workdir)):
        kernel = _Kernel(client)
        for position, index in enumerate(code):
            mine = [p for p, (i, _) in enumerate(where) if i == index]
            if mine and position + 1 < len(code):
                right = [answers[p] for p in mine]
                here = [w for w in wrong if w.place in mine]
                _exercise(kernel, run, student, index, code[position + 1], right, mine[0], here)
            outputs = kernel.run(filled.cells[index].source)
            error = _error(outputs)
            if error is not None:
                run.errors.append(f"cell {index}: {error.ename}: {error.evalue}")
            run.stderr.extend(line for line in _text(outputs, "stderr").splitlines() if line.strip())
            text = _text(outputs)
            verdicts = [line for line in text.splitlines() if line.startswith((PASSED, NOT_YET))]
            run.verdicts.extend(verdicts)
            if "labkit.check." in filled.cells[index].source:
                if not verdicts or any(v.startswith(NOT_YET) for v in verdicts):
                    run.failed_checks.append(f"cell {index}: {verdicts or text[-300:]}")
                if any(o.output_type == "execute_result" for o in outputs):
                    run.check_outs.append(f"cell {index}")
    return run


def expected_hint_shown(answer: WrongAnswer, outcome: Outcome) -> bool:
    """Whether the check cell after a wrong answer showed the hint it should (or "not done yet" after a crash)."""
    crashed_in_pair_code = outcome.exercise_error is not None and outcome.error_in_pair_code
    if answer.hint is None or crashed_in_pair_code and NOT_DONE in outcome.check_text:
        return NOT_DONE in outcome.check_text or NOT_YET in outcome.check_text
    return NOT_YET in outcome.check_text and re.search(answer.hint, outcome.check_text) is not None


def dumps(run: Run) -> str:
    """A readable account of a run, for assertion messages."""
    return json.dumps({"errors": run.errors, "stderr": run.stderr[:20], "verdicts": run.verdicts,
                       "wrong": [(w.why, o.__dict__) for w, o in run.wrong if not expected_hint_shown(w, o)
                                 or not o.error_in_pair_code]}, indent=1, default=str)


def run_class(root: Path, answers: dict[str, Sequence[str]], wrong: dict[str, Sequence[WrongAnswer]],
              notebooks: Sequence[Path] | None = None) -> tuple[dict[str, Run], dict[str, float]]:
    """Run the whole class: write the student edition into ``root``, then run each notebook in order in a fresh
    kernel (fast setting, strict checks) with a store of its own under ``root``; return the runs and the seconds.

    :param root: an empty folder for the student edition, the store and the data cache.
    :param answers: ``ANSWERS`` (notebook stem -> one answer per blanked place).
    :param wrong: ``WRONG`` (notebook stem -> wrong answers).
    :param notebooks: the solution notebooks to run (default: the whole lab, in order).
    """
    import os
    import time

    import nbformat

    from labkit.check import STRICT_ENV
    from labkit.classroom.report import DEMO_GROUP, GROUP_ENV
    from labkit.classroom.runner import lab_notebooks
    from labkit.classroom.student import write_student_edition

    notebooks = list(notebooks or lab_notebooks())
    student_dir = Path(root) / "student"
    write_student_edition(notebooks, student_dir)
    env = {**os.environ, "LABKIT_OUT": str(Path(root) / "store"), "LABKIT_DATA_DIR": str(Path(root) / "data"),
           "LABKIT_FAST": "1", STRICT_ENV: "1", GROUP_ENV: DEMO_GROUP}
    runs, seconds = {}, {}
    for path in notebooks:
        start = time.perf_counter()
        runs[path.stem] = simulate(path.stem, nbformat.read(student_dir / path.name, as_version=4),
                                   answers[path.stem], wrong.get(path.stem, []), workdir=student_dir, env=env)
        seconds[path.stem] = round(time.perf_counter() - start, 1)
    seconds["total"] = round(sum(seconds.values()), 1)
    return runs, seconds
