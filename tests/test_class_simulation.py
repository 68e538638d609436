"""The class simulation: the student edition, filled with a pair's answers written apart from the key, run as a pair
runs it (fast setting, strict checks, one fresh kernel per notebook, its own store), with plausible wrong answers
tried at every exercise on the way. See tests/classroom_sim/harness.py for how one notebook is run."""

from __future__ import annotations

import json
import re
from collections import Counter

import nbformat
import pytest

from classroom_sim.answers import ANSWERS
from classroom_sim.harness import expected_hint_shown, places, run_class
from classroom_sim.wrong_answers import WRONG
from labkit.check import NOT_YET
from labkit.check._notebook import NOT_DONE
from labkit.classroom.runner import lab_notebooks
from labkit.classroom.student import student_notebook

NOTEBOOKS = lab_notebooks()
NAMES = [p.stem for p in NOTEBOOKS]


def _student(path):
    return student_notebook(nbformat.read(path, as_version=4), path.name)


def _exercise_cells(nb):
    """The code cells with a blanked region, each followed by its check cell."""
    return sorted({i for i, _ in places(nb) if nb.cells[i].cell_type == "code"})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_answers_fill_every_blank_and_every_exercise_has_two_wrong_answers(path):
    nb = _student(path)
    where = places(nb)
    assert len(ANSWERS[path.stem]) == len(where), "one answer per blanked place, in document order"
    per_cell = Counter(where[w.place][0] for w in WRONG.get(path.stem, []))
    for index in _exercise_cells(nb):
        assert per_cell[index] >= 2, f"{path.stem}, cell {index}: fewer than two wrong answers"


def test_at_least_fifty_wrong_answers():
    assert sum(len(v) for v in WRONG.values()) >= 50


@pytest.fixture(scope="module")
def simulation(tmp_path_factory):
    """Run the whole class once: 00-09 in order, each in a fresh kernel, into a store of its own."""
    root = tmp_path_factory.mktemp("class")
    runs, seconds = run_class(root, ANSWERS, WRONG)
    print(f"class simulation, seconds: {json.dumps(seconds)}")
    return runs


@pytest.mark.parametrize("name", NAMES)
def test_the_pairs_answers_pass_every_check_without_an_error(simulation, name):
    run = simulation[name]
    assert run.errors == [], run.errors
    assert run.failed_checks == [], run.failed_checks


@pytest.mark.parametrize("name", NAMES)
def test_every_wrong_answer_makes_its_check_print_its_hint(simulation, name):
    missed = [(w.why, o.check_text[-400:]) for w, o in simulation[name].wrong if not expected_hint_shown(w, o)]
    assert missed == [], missed


@pytest.mark.parametrize("name", NAMES)
def test_no_wrong_answer_crashes_code_the_pair_did_not_write(simulation, name):
    crashed = [(w.why, o.exercise_error) for w, o in simulation[name].wrong if not o.error_in_pair_code]
    assert crashed == [], crashed
    in_checks = [(w.why, o.check_error) for w, o in simulation[name].wrong
                 if o.check_error and not o.check_error.startswith(("CheckFailed", "NameError"))]
    assert in_checks == [], in_checks


@pytest.mark.parametrize("name", NAMES)
def test_an_unfilled_exercise_says_what_to_do_and_its_check_says_it_is_not_done(simulation, name):
    """What "Run All" shows a pair in the student edition: every cell before the first exercise runs (no error in
    the run), the exercise stops it with one sentence saying what to write, and its check says it is not done."""
    run = simulation[name]
    assert len(run.instructions) == len(run.unfilled)   # one line per exercise, no traceback
    for outcome in run.unfilled:
        assert outcome.exercise_error and outcome.exercise_error.startswith("ExerciseNotDone"), outcome
        assert NOT_DONE in outcome.check_text or NOT_YET in outcome.check_text, outcome.check_text
        assert "Traceback" not in outcome.check_text and "NameError" not in outcome.check_text
    for line in run.instructions:   # the whole output of an unfilled exercise: one sentence, no traceback
        assert re.fullmatch(r"Exercise \d+: .+, then run the check below", line), line


@pytest.mark.parametrize("name", NAMES)
def test_check_cells_show_only_their_verdict(simulation, name):
    run = simulation[name]
    assert run.check_outs == [], "a check cell shows an Out[...] value after its verdict line"
    assert not [o.label for _, o in run.wrong if o.check_out]
    assert all(v.isascii() for v in run.verdicts)


@pytest.mark.parametrize("name", NAMES)
def test_no_cell_writes_to_stderr(simulation, name):
    assert simulation[name].stderr == []
