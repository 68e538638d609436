"""Self-checks that test the pair's logic, not a coincidence, and that read well in a notebook: a verdict line and
nothing more, an unfilled exercise that says what to do, a check run too early that says the exercise is not done."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from art.attacks.evasion import ProjectedGradientDescent

import labkit._nc_optimize  # noqa: F401 - test_check.Defence reads its outlier rule
from labkit import check
from labkit.check._notebook import NOT_DONE
from labkit.poisoning import Trigger

from check_helpers import fails, passes, small_lab
from test_check import NORMS, TARGET, Defence, Stub

EPS, STEPS = 0.1, 20


@pytest.fixture(scope="module")
def lab():
    return small_lab()


def test_pgd_without_madrys_factor_passed_the_old_sanity_checks_and_is_caught(lab, capsys):
    _, clf = lab
    rule = dict(eps=EPS, max_iter=STEPS, eps_step=2.5 * EPS / STEPS)
    passes(capsys, check.pgd_attack, ProjectedGradientDescent(clf, eps=EPS, eps_step=2.5 * EPS / STEPS,
                                                                max_iter=STEPS), **rule)
    no_factor = ProjectedGradientDescent(clf, eps=EPS, eps_step=EPS / STEPS, max_iter=STEPS)
    passes(capsys, check.pgd_attack, no_factor, eps=EPS)   # sensible steps, so only the rule can catch it
    fails(capsys, check.pgd_attack, no_factor, hint="Madry's factor", **rule)
    fails(capsys, check.pgd_attack, ProjectedGradientDescent(clf, eps=EPS, eps_step=EPS / 4, max_iter=STEPS),
          hint="eps_step should", **rule)
    fails(capsys, check.pgd_attack, ProjectedGradientDescent(clf, eps=EPS, eps_step=2.5 * EPS / STEPS),
          hint="max_iter=20", **rule)


def test_an_asr_over_every_test_image_is_caught_on_the_baseline_where_the_rules_differ(lab, capsys):
    data, clean = lab
    trigger, backdoored = Trigger(), Stub(lit_rate=1.0)   # every triggered image goes to the target
    x, y = data.x_test, data.y_test
    kw = dict(target_class=TARGET, trigger=trigger)

    def right(model, x, y):
        return float(np.mean(model.predict(trigger(x[y != TARGET])).argmax(axis=1) == TARGET))

    def over_all(model, x, y):
        return float(np.mean(model.predict(trigger(x)).argmax(axis=1) == TARGET))

    def on_globals(model, x_, y_):
        return right(backdoored, x, y)

    value = right(backdoored, x, y)
    assert over_all(backdoored, x, y) == value   # the coincidence: at the lab's settings both rules agree
    passes(capsys, check.attack_success_rate, value, backdoored, x, y, **kw)   # the number alone cannot tell
    passes(capsys, check.attack_success_rate, value, backdoored, x, y, rule=right, baseline=clean, **kw)
    fails(capsys, check.attack_success_rate, value, backdoored, x, y, rule=over_all, baseline=clean,
          hint="whose true class is not the target", **kw)
    fails(capsys, check.attack_success_rate, value, backdoored, x, y, rule=on_globals, baseline=clean,
          hint="use its arguments", **kw)


def test_a_choice_that_ignores_the_clean_accuracy_budget_is_caught_on_another_table(capsys):
    table = pd.DataFrame({"clean_accuracy": [0.96, 0.95, 0.80, 0.94], "attack_success_rate": [1.0, 0.0, 0.05, 0.3]},
                         index=["none", "unlearning", "pruning", "filtering"])

    def right(candidates):
        kept = candidates[candidates["clean_accuracy"] >= 0.96 - 0.05]
        return kept["attack_success_rate"].idxmin() if len(kept) else None

    def lowest(candidates):
        return candidates["attack_success_rate"].idxmin()

    def never_none(candidates):
        return candidates[candidates["clean_accuracy"] >= 0.96 - 0.05]["attack_success_rate"].idxmin()

    assert right(table.iloc[1:]) == lowest(table.iloc[1:]) == "unlearning"   # the coincidence
    passes(capsys, check.chosen_mitigation, "unlearning", table)   # the choice alone cannot tell
    passes(capsys, check.chosen_mitigation, "unlearning", table, rule=right)
    fails(capsys, check.chosen_mitigation, "unlearning", table, rule=lowest, hint="costs more than")
    fails(capsys, check.chosen_mitigation, "unlearning", table, rule=never_none, hint="raised ValueError")
    fails(capsys, check.chosen_mitigation, 0.0, table, hint="by its name")
    fails(capsys, check.chosen_mitigation, ["unlearning"], table, hint="single string")


def test_mitigations_checks_every_copy_and_says_when_the_loop_did_not_run(lab, capsys):
    data, _ = lab
    x = Trigger()(data.x_test[:50])
    poisoned, defence = Stub(), Defence(NORMS)
    names = ["unlearning", "pruning"]
    copies = {name: defence.copy() for name in names}
    for twin in copies.values():
        twin.mitigate()
    passes(capsys, check.mitigations, copies, defence, poisoned, x, names=names)
    fails(capsys, check.mitigations, {}, defence, poisoned, x, names=names, hint="no mitigated copy for unlearning")
    shared = copies["unlearning"]
    fails(capsys, check.mitigations, {n: shared for n in names}, defence, poisoned, x, names=names,
          hint="its own copy")
    fails(capsys, check.mitigations, {**copies, "pruning": defence.copy()}, defence, poisoned, x, names=names,
          hint="pruning: the model answers as before")


def test_a_check_shows_nothing_after_its_verdict_line_in_a_notebook(lab, capsys):
    from IPython.core.formatters import DisplayFormatter

    data, clf = lab
    labels = clf.predict(data.x_test).argmax(axis=1)
    verdict = check.predictions(labels, clf, data.x_test)
    assert capsys.readouterr().out == f"{check.PASSED} predictions\n"
    assert DisplayFormatter().format(verdict) == ({}, {})   # no Out[...] line under the check cell
    assert DisplayFormatter().format(True)[0]   # which a plain True would have shown
    assert verdict and verdict.passed and repr(verdict) == "Verdict('predictions', passed=True)"


def test_verdict_lines_are_plain_ascii(lab, capsys):
    data, clf = lab
    check.clean_accuracy(1.0, clf, data.x_test, data.y_test)
    check.clean_accuracy(0.0, clf, data.x_test, data.y_test)
    out = capsys.readouterr().out
    assert out.isascii() and out.count(check.PASSED) + out.count(check.NOT_YET) == 2


def test_todo_stops_a_cell_with_its_instruction_only():
    with pytest.raises(check.ExerciseNotDone) as err:
        check.todo("Exercise 1: compute `predictions` here, then run the check below")
    assert isinstance(err.value, NotImplementedError)
    assert err.value._render_traceback_() == ["Exercise 1: compute `predictions` here, then run the check below"]


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    from labkit.check._notebook import install

    shell = InteractiveShell.instance()
    shell.set_custom_exc((), None)
    assert install()
    yield shell
    shell.set_custom_exc((), None)
    InteractiveShell.clear_instance()


def test_a_check_run_before_its_exercise_says_the_exercise_is_not_done(shell, capsys):
    shell.run_cell("import labkit")
    result = shell.run_cell("labkit.check.predictions(predictions, None, None)")
    out = capsys.readouterr().out
    assert isinstance(result.error_in_exec, NameError)   # still an error: "Run all" stops, strict runs fail
    assert NOT_DONE in out and "`predictions`" in out and "Traceback" not in out
    result = shell.run_cell("print(undefined_elsewhere)")   # any other NameError keeps its traceback
    assert isinstance(result.error_in_exec, NameError)
    assert NOT_DONE not in capsys.readouterr().out


def test_an_unfilled_exercise_prints_its_instruction_not_a_traceback(shell, capsys):
    shell.run_cell("import labkit\n# YOUR CODE HERE\nlabkit.check.todo('Exercise 2: compute `x` here, then run the "
                   "check below')")
    out = capsys.readouterr().out
    assert "Exercise 2: compute `x` here" in out and "Traceback" not in out and "NotImplementedError" not in out
