"""The student edition: nbgrader markers, blanking, stripping, and the real notebooks' exercises."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labkit.classroom.student import (MarkerError, answer_cell_metadata, check_markers, exercise_cell_metadata, student_notebook,
                            write_student_edition)


def _solution_nb():
    code = new_code_cell("x = 1\n### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION\nprint(y)",
                         metadata={"nbgrader": exercise_cell_metadata("ex1")}, execution_count=3,
                         outputs=[new_output("stream", name="stdout", text="2\n")])
    nested = new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION",
                           metadata={"nbgrader": exercise_cell_metadata("ex2")})
    answer = new_markdown_cell("Because the model overfits.", metadata={"nbgrader": answer_cell_metadata("q1", 2)})
    plain = new_markdown_cell("## Step 1 · Explain")
    return new_notebook(cells=[plain, code, nested, answer])


def test_student_edition_blanks_solutions_strips_outputs_and_keeps_the_rest():
    nb = _solution_nb()
    before = nbformat.writes(nb)
    student = student_notebook(nb)
    assert nbformat.writes(nb) == before  # the solution notebook is not modified
    assert student.cells[0].source == "## Step 1 · Explain"
    assert student.cells[1].source == ("x = 1\n# YOUR CODE HERE\n"
                                       "labkit.check.todo('This exercise: compute `y` here, then run the check below')"
                                       "\nprint(y)")
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert student.cells[2].source == ("def f():\n    # YOUR CODE HERE\n"
                                       "    labkit.check.todo('This exercise: write the body of `f` here, then run the "
                                       "check below')")
    assert student.cells[3].source == "YOUR ANSWER HERE"
    text = nbformat.writes(student)
    for secret in ("y = x + 1", "return 42", "overfits", "BEGIN SOLUTION", "END SOLUTION"):
        assert secret not in text
    nbformat.validate(student)
    assert check_markers(nb) == 3


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without a"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION", "inside another"),
])
def test_unbalanced_markers_are_refused_with_the_place(source, message):
    nb = new_notebook(cells=[new_code_cell(source, metadata={"nbgrader": exercise_cell_metadata("e")})])
    with pytest.raises(MarkerError, match=message):
        student_notebook(nb, "03_backdoor.ipynb")


def test_a_region_outside_a_solution_cell_is_refused():
    nb = new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")])
    with pytest.raises(MarkerError, match="solution: true"):
        check_markers(nb)


def test_write_student_edition(tmp_path):
    source = tmp_path / "01_demo.ipynb"
    nbformat.write(_solution_nb(), source)
    written = write_student_edition([source], tmp_path / "student")
    assert [p.name for p in written] == ["01_demo.ipynb"]
    assert "labkit.check.todo(" in written[0].read_text()


def test_report_answer_cells_get_the_placeholder_the_export_counts_as_unanswered():
    from labkit.classroom.report import ANSWER_PLACEHOLDER, ANSWER_TAG

    answer = new_markdown_cell("Unlearning: it keeps clean accuracy.",
                               metadata={"nbgrader": answer_cell_metadata("q1", 2), "tags": ["report", ANSWER_TAG]})
    student = student_notebook(new_notebook(cells=[answer]))
    assert student.cells[0].source == ANSWER_PLACEHOLDER
    assert student.cells[0].metadata["tags"] == ["report", ANSWER_TAG]


@pytest.mark.parametrize("metadata, message", [
    (exercise_cell_metadata("ex1"), "grade_id 'ex1' is used twice"),
    (exercise_cell_metadata(""), "non-empty grade_id"),
    ({k: v for k, v in answer_cell_metadata("q2", 2).items() if k != "points"}, "has no points"),
])
def test_nbgrader_metadata_is_checked_as_nbgrader_validates_it(metadata, message):
    extra = new_code_cell("### BEGIN SOLUTION\nz = 3\n### END SOLUTION", metadata={"nbgrader": metadata})
    nb = _solution_nb()
    nb.cells.append(extra)
    with pytest.raises(MarkerError, match=message):
        check_markers(nb)


def test_a_written_answer_must_be_a_graded_cell_as_nbgrader_requires():
    ungraded = new_markdown_cell("An answer.", metadata={"nbgrader": exercise_cell_metadata("q9")})
    with pytest.raises(MarkerError, match="both a grade and a solution cell"):
        check_markers(new_notebook(cells=[ungraded]))
    assert check_markers(new_notebook(cells=[new_markdown_cell("An answer.",
                                                               metadata={"nbgrader": answer_cell_metadata("q9", 2)})]))


def test_an_unfilled_exercise_names_its_number_and_what_to_compute():
    intro = new_markdown_cell("**Exercise 3.** Compute `fgsm_accuracy` and `x_adv`.")
    code = new_code_cell("### BEGIN SOLUTION\nx_adv = attack(x)\nfgsm_accuracy = score(x_adv)\nhelper = 2\n"
                         "### END SOLUTION\nprint(fgsm_accuracy, x_adv)",
                         metadata={"nbgrader": exercise_cell_metadata("ex3")})
    student = student_notebook(new_notebook(cells=[intro, code]))
    assert "labkit.check.todo('Exercise 3: compute `x_adv` and `fgsm_accuracy` here, then run the check below')" \
        in student.cells[1].source   # `helper`, which no given code uses, is not asked for
