"""Self-checks of notebook 09: ART's SVM poisoning attack and the accuracy of the SVM trained on its points."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from labkit.check._base import Verdict, _close, _is_number, _rate_problem, _verdict

__all__ = ["svm_poisoning_attack", "poisoned_accuracy"]


def _same(a: Any, b: np.ndarray) -> bool:
    return a is not None and np.shape(a) == np.shape(b) and bool(np.array_equal(np.asarray(a), b))


def _labels_problem(y: Any, expected: np.ndarray, name: str, data: str) -> str | None:
    """Return a hint when ``y`` is not the one-hot form of the 0 / 1 labels ``expected``, else None."""
    y = None if y is None else np.asarray(y)
    if y is None or y.ndim != 2 or y.shape[1] != 2:
        return (f"{name} goes one-hot, one row per point (onehot(...)): ART takes the argmax of each row, and "
                "with integer labels it silently reads every label as class 0")
    if len(y) != len(expected) or not np.array_equal(y.argmax(axis=1), expected):
        return f"{name} should be the labels of {data}, one-hot, in the same order as the points"
    return None


def svm_poisoning_attack(attack: Any, victim: Any, task: Any, *, step: float | None = None, eps: float | None = None,
                         max_iter: int | None = None, strict: bool | None = None) -> Verdict:
    """Check ART's SVM poisoning attack: built on the victim, with the clean training set and the attacker's own
    validation data (not the test set), labels one-hot, and the lab's settings.

    :param attack: the pair's ``PoisoningAttackSVM``.
    :param victim: the ART-wrapped SVM under attack.
    :param task: the ``labkit.availability.BinaryTask`` (training, validation and test splits).
    :param step: the lab's ``STEP``, or None not to check it.
    :param eps: the lab's ``EPS``, or None not to check it.
    :param max_iter: the lab's ``MAX_ITER``, or None not to check it.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from art.attacks.poisoning import PoisoningAttackSVM

    x_val, x_train = getattr(attack, "x_val", None), getattr(attack, "x_train", None)
    hint = None
    if not isinstance(attack, PoisoningAttackSVM):
        hint = f"use ART's PoisoningAttackSVM (got {type(attack).__name__})"
    elif getattr(attack, "estimator", None) is not victim:
        hint = ("build the attack on the victim, the fitted ScikitlearnSVC of Step 2, not on another estimator or "
                "a new wrapper")
    elif not _same(x_train, task.x_train):
        hint = "x_train is the clean training set the victim trains on, task.x_train"
        if _same(x_train, task.x_val):
            hint = "x_train and x_val are swapped: x_train is the victim's training set, x_val the attacker's data"
    elif _same(x_val, task.x_test):
        hint = ("the test set measures the attack's result, so the attacker must not use it: validate on the "
                "attacker's own held-out data, task.x_val")
    elif _same(x_val, task.x_train):
        hint = ("validating on the training set measures nothing the victim has not already fitted: use the "
                "attacker's held-out data, task.x_val")
    elif not _same(x_val, task.x_val):
        hint = "x_val is the attacker's held-out validation data, task.x_val"
    else:
        hint = _labels_problem(getattr(attack, "y_train", None), task.y_train, "y_train", "the training points") \
            or _labels_problem(getattr(attack, "y_val", None), task.y_val, "y_val", "the validation points")
    settings = (("step", step, "STEP"), ("eps", eps, "EPS"), ("max_iter", max_iter, "MAX_ITER"))
    for name, wanted, parameter in settings if hint is None else ():
        if wanted is not None and not np.isclose(float(getattr(attack, name, np.nan)), float(wanted)):
            hint = f"use the lab's {name}, the parameter {parameter}"
            break
    return _verdict("SVM poisoning attack", hint, strict)


def _victim_accuracy(victim: Any, task: Any) -> float:
    """The test accuracy of the victim as it stands (NaN when it cannot predict)."""
    try:
        return float(np.mean(np.asarray(victim.predict(task.x_test)).argmax(axis=1) == task.y_test))
    except Exception:  # noqa: BLE001 - an unfitted or foreign model: no hint from it
        return float("nan")


def _rule_problem(rule: Callable[[np.ndarray, np.ndarray], Any], task: Any, x_poison: np.ndarray,
                  y_poison: np.ndarray, victim: Any, fit: dict[str, Any]) -> str | None:
    """Return a hint when the pair's ``rule(x_poison, y_poison)`` is wrong on other poison points, else None.

    The victim as it stands (last refitted by ART's attack) can have the right accuracy by coincidence; a rule
    that trains a fresh SVM follows the poison points it is given, so it is run on none and on half of them."""
    from labkit.availability import svm_accuracy

    half = max(1, len(x_poison) // 2)
    for xs, ys, case in ((x_poison[:0], y_poison[:0], "no poison points"),
                         (x_poison[:half], y_poison[:half], f"the first {half} poison points")):
        try:
            got = rule(xs.copy(), ys.copy())
        except Exception as err:  # noqa: BLE001 - the pair's function: say where it fails, never crash the check
            return f"your function raised {type(err).__name__} given {case}: {err}"
        expected = svm_accuracy(task, xs, ys, **fit) if len(xs) else svm_accuracy(task, **fit)
        if _rate_problem(got, "what your function returns") is None and not _close(got, expected):
            if victim is not None and _close(got, _victim_accuracy(victim, task)):
                return ("your function gives the victim's accuracy as it stands, whatever poison points it is given "
                        f"(tried with {case}): train a fresh SVC on the training set plus the points it is given")
            return (f"your function is right on ART's points by coincidence: given {case} it returns {float(got):.3f} "
                    "where a fresh SVC trained on the training set plus those points scores differently")
    return None


def _default_c(rule: Callable[[np.ndarray, np.ndarray], Any] | None, task: Any, x_poison: np.ndarray,
               y_poison: np.ndarray, kernel: str, C: Any) -> bool:
    """Whether the pair's ``rule`` scores as an SVC with scikit-learn's default C (1.0), not the lab's ``C``, given no
    poison points, half of them, and label-flipped training points (where the two differ most): the case where a
    wrong number could also read as "no poison points"."""
    from labkit.availability import svm_accuracy

    if rule is None or not _is_number(C) or float(C) == 1.0:
        return False
    half, k = max(1, len(x_poison) // 2), max(1, len(task.x_train) // 5)
    flipped = (task.x_train[:k], np.eye(2)[1 - np.asarray(task.y_train[:k], dtype=int)])   # a strong poison
    default, lab = [], []
    for xs, ys in ((x_poison[:0], y_poison[:0]), (x_poison[:half], y_poison[:half]), flipped):
        try:
            got = rule(np.array(xs), np.array(ys))
        except Exception:  # noqa: BLE001 - the pair's function: the rule check below reports it
            return False
        if not _is_number(got):
            return False
        default.append(_close(got, svm_accuracy(task, xs, ys, kernel=kernel, C=1.0)))
        lab.append(_close(got, svm_accuracy(task, xs, ys, kernel=kernel, C=C)))
    return all(default) and not all(lab)


def poisoned_accuracy(value: Any, task: Any, x_poison: np.ndarray, y_poison: np.ndarray, *, kernel: str = "linear",
                      C: float = 1.0, victim: Any = None, rule: Callable[[np.ndarray, np.ndarray], Any] | None = None,
                      strict: bool | None = None) -> Verdict:
    """Check the accuracy under availability poisoning: of an SVM retrained on the training set plus the poison
    points, measured on the test set.

    The expected value comes from fresh scikit-learn SVCs (fitting is deterministic), never from the victim, whose
    model ART's attack refits in place; the victim only serves to recognise an answer read off it.

    :param value: the pair's test accuracy.
    :param task: the ``labkit.availability.BinaryTask``.
    :param x_poison: the poison points, flattened.
    :param y_poison: their labels, 0 / 1 or one-hot.
    :param kernel: the SVM's kernel (the lab's ``KERNEL``).
    :param C: the SVM's regularisation constant (the lab's ``C``).
    :param victim: the ART-wrapped SVM the attack ran on, to recognise its accuracy (optional).
    :param rule: the pair's function ``rule(x_poison, y_poison)`` that measured ``value``, run again on other
        poison points where a coincidence shows (optional).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from labkit.availability import svm_accuracy

    hint = _rate_problem(value, "the test accuracy")
    if hint is None:
        fit = dict(kernel=kernel, C=C)
        expected = svm_accuracy(task, x_poison, y_poison, **fit)
        if not _close(value, expected):
            hint = ("train a fresh SVC (the lab's KERNEL and C) on the training set plus the poison points, "
                    "then score it on the test set")
            if victim is not None and _close(value, _victim_accuracy(victim, task)):
                hint = ("this is the victim as it stands, last refitted by ART's attack for its own steps: poisoning "
                        "acts through training, so train a fresh SVC on the training set plus all the poison points")
            elif _default_c(rule, task, np.asarray(x_poison), np.asarray(y_poison), kernel, C):
                hint = "train the SVC with the lab's settings: make_svc(KERNEL, C), not scikit-learn's default C"
            elif _close(value, svm_accuracy(task, **fit)):
                hint = ("this is the accuracy without the poison points: add x_poison, with its labels, to the "
                        "training set before fitting")
            elif _close(value, svm_accuracy(task, x_poison, y_poison, on="val", **fit)):
                hint = ("this is measured on the attacker's validation data; the result is measured on the test set, "
                        "which neither the victim nor the attacker used")
            elif _close(value, svm_accuracy(task, x_poison, y_poison, on="train", **fit)):
                hint = "this is measured on the training points; the result is measured on the test set"
            elif _close(value, 1.0 - expected):
                hint = "this is the error rate, the share of test points the poisoned SVM gets wrong"
            elif _is_number(C) and float(C) != 1.0 and _close(
                    value, svm_accuracy(task, x_poison, y_poison, kernel=kernel, C=1.0)):
                hint = "train the SVC with the lab's settings: make_svc(KERNEL, C), not scikit-learn's default C"
    if hint is None and rule is not None:
        hint = _rule_problem(rule, task, np.asarray(x_poison), np.asarray(y_poison), victim, fit)
    return _verdict("poisoned accuracy", hint, strict)
