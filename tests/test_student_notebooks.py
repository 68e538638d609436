"""The real notebooks as solution keys: balanced markers, a clean student edition, and exercises that are real."""

from __future__ import annotations

import re

import nbformat
import pytest

import labkit.check

from labkit.classroom.runner import lab_notebooks
from labkit.classroom.student import BEGIN, END, STUB, check_markers, student_notebook

NOTEBOOKS = lab_notebooks()


def _read(path):
    return nbformat.read(path, as_version=4)


def _solution_lines(source: str) -> tuple[list[str], set[str]]:
    """Return the lines inside the cell's solution regions and the lines outside them (stripped, non-empty)."""
    inside, outside, within = [], set(), False
    for line in source.splitlines():
        if line.strip() in (BEGIN, END):
            within = line.strip() == BEGIN
        elif line.strip():
            (inside.append if within else outside.add)(line.strip())
    return inside, outside


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_marker_pairs_are_balanced(path):
    check_markers(_read(path), path.name)   # raises MarkerError with the cell when unbalanced


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_two_to_four_exercises_each_followed_by_a_self_check(path):
    nb = _read(path)
    assert 2 <= check_markers(nb, path.name) <= 4   # a practical is something students do, not watch
    grade_ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.get("metadata", {})]
    assert len(grade_ids) == len(set(grade_ids))   # nbgrader needs each cell's grade_id to be unique
    code = [c for c in nb.cells if c.cell_type == "code"]
    numbered = 0
    for cell, after in zip(code, code[1:] + [None]):
        if BEGIN in cell.source:   # the very next code cell checks the pair's work, with a check that exists
            called = re.findall(r"labkit\.check\.(\w+)\(", after.source if after is not None else "")
            assert called and all(hasattr(labkit.check, c) for c in called), (path.name, cell.id)
            assert cell.metadata.get("nbgrader", {}).get("solution"), (path.name, cell.id)
            numbered += 1   # and the handout asks for it as the next numbered exercise
            i = nb.cells.index(cell)
            text = next(c.source for c in reversed(nb.cells[:i])
                        if c.cell_type == "markdown" and "**Exercise" in c.source)
            assert re.findall(r"\*\*Exercise (\d+)\.\*\*", text)[-1] == str(numbered), (path.name, cell.id)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_student_edition_is_valid_and_has_no_solution_left(path):
    nb = _read(path)
    student = student_notebook(nb, path.name)
    nbformat.validate(student)
    assert [c.id for c in student.cells] == [c.id for c in nb.cells]
    text = nbformat.writes(student)
    assert BEGIN not in text and END not in text
    for original, blanked in zip(nb.cells, student.cells):
        if original.cell_type == "code":
            assert blanked.outputs == [] and blanked.execution_count is None
            inside, outside = _solution_lines(original.source)
            left = {line.strip() for line in blanked.source.splitlines()}
            assert not [line for line in inside if line not in outside and line in left], original.id
            if inside:   # each region became the stub that says what to write there
                assert blanked.source.count(STUB) == blanked.source.count("labkit.check.todo(") == \
                    original.source.count(BEGIN)
        elif original.get("metadata", {}).get("nbgrader", {}).get("solution"):
            assert original.source.strip() not in text
        else:
            assert blanked.source == original.source


# --- no scaffolding traps: what an exercise text names exists before it, or the pair is asked to create it ---

LIBRARIES = {"NumPy": "numpy", "pandas": "pandas", "scikit-learn": "sklearn", "matplotlib": "matplotlib"}


def _bound(code: str) -> set[str]:
    """Names a code text binds: assignments, imports, definitions and their arguments, loop targets."""
    import ast

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _imported(code: str) -> set[str]:
    return set(re.findall(r"^\s*(?:import|from)\s+(\w+)", code, re.M))


def scaffolding_traps(solution, student) -> list[str]:
    """Return what an exercise text of the student edition names but the pair can neither find nor is asked to
    create, and the libraries it names that no cell before it (or its own cell) imports."""
    import builtins
    import keyword
    import textwrap

    key_code = "\n".join(c.source for c in solution.cells if c.cell_type == "code")
    regions = "\n".join(textwrap.dedent(r) for r in re.findall(rf"{BEGIN}\n(.*?)[ \t]*{END}", key_code, re.S))
    given = set(re.findall(r"[A-Za-z_]\w*", "\n".join(c.source for c in student.cells if c.cell_type == "code")))
    asked = {n for n in _bound(regions) if n in given}   # what the pair creates and the given code then uses
    attributes = set(re.findall(r"\.([A-Za-z_]\w*)", key_code)) | set(re.findall(r"[(,]\s*(\w+)\s*=(?!=)", key_code))
    defined, imported, traps = set(dir(builtins)) | set(keyword.kwlist), set(), []
    for index, cell in enumerate(student.cells):
        if cell.cell_type == "code":
            defined |= _bound(cell.source)
            imported |= _imported(cell.source)
            continue
        found = re.search(r"\*\*Exercise (\d+)\.\*\*", cell.source)
        if not found:
            continue
        text, following = cell.source[found.start():], []
        for after in student.cells[index + 1:]:
            if after.cell_type != "code":
                break
            following.append(after.source)
        template = _bound("\n".join(following))
        for name in sorted(set(re.findall(r"`([A-Za-z_]\w*)`", text))):
            if name not in asked | defined | template | attributes:
                traps.append(f"Exercise {found.group(1)}: `{name}` is neither given before it nor asked for")
        for library, module in LIBRARIES.items():
            if library in text and module not in imported | _imported("\n".join(following)):
                traps.append(f"Exercise {found.group(1)}: names {library}, which no cell before it imports")
    return traps


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_exercise_text_names_what_the_pair_cannot_find(path):
    nb = _read(path)
    assert scaffolding_traps(nb, student_notebook(nb, path.name)) == []


def test_the_scaffolding_test_finds_the_traps_it_is_for():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    from labkit.classroom.student import exercise_cell_metadata

    def lab(given: str, text: str) -> list[str]:
        solution = new_notebook(cells=[
            new_code_cell(given), new_markdown_cell(text),
            new_code_cell("### BEGIN SOLUTION\ntarget_onehot = np.eye(10)[0]\nkwargs = {}\ny = f(x, **kwargs)\n"
                          "### END SOLUTION\nprint(y)", metadata={"nbgrader": exercise_cell_metadata("e1")})])
        return scaffolding_traps(solution, student_notebook(solution))

    assert lab("import numpy as np\nx = 1", "**Exercise 1.** Make `y` from `x` with NumPy.") == []
    assert lab("x = 1", "**Exercise 1.** Make `y` from `x` with NumPy.") == [
        "Exercise 1: names NumPy, which no cell before it imports"]
    assert lab("import numpy as np\nx = 1", "**Exercise 1.** Use `target_onehot` and `kwargs` to make `y`.") == [
        "Exercise 1: `kwargs` is neither given before it nor asked for",
        "Exercise 1: `target_onehot` is neither given before it nor asked for"]


def choices_the_parameters_fix(nb) -> list[str]:
    """Return exercise sentences that ask the pair to choose or set a value the parameters cell already fixes."""
    params = next((c.source for c in nb.cells if "parameters" in c.metadata.get("tags", [])), "")
    fixed = set(re.findall(r"^([A-Z][A-Z0-9_]*)\s*=", params, re.M))
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "**Exercise" in cell.source:
            for sentence in re.split(r"(?<=[.!?])\s+", cell.source):
                asked = re.search(r"\b(?:[Cc]hoose|[Pp]ick|[Dd]ecide)\b[^`]*`([A-Z][A-Z0-9_]*)`", sentence)
                if asked and asked.group(1) in fixed:
                    found.append(sentence)
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_exercise_asks_to_choose_what_the_parameters_cell_sets(path):
    assert choices_the_parameters_fix(_read(path)) == []


def test_the_choice_test_finds_a_choice_the_parameters_fix():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("POISON_FRACTION = 0.10", metadata={"tags": ["parameters"]}),
                             new_markdown_cell("**Exercise 2.** Choose the poison fraction (the parameter "
                                               "`POISON_FRACTION`) and poison the training set.")])
    assert len(choices_the_parameters_fix(nb)) == 1
