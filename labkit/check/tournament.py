"""Self-checks of notebook 10: the pair's side of the class tournament (the entry, the attack file, its success).

The checks take plain arrays and numbers (the challenge's ``x``, ``y`` and ``eps``), so that they recompute each
answer independently of ``labkit.tournament``, which scores the same files in class.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from labkit.check._base import Verdict, _close, _is_number, _rate_problem, _verdict
from labkit.poisoning import predicted_labels

__all__ = ["tournament_entry", "tournament_attack", "tournament_success"]

ATTACKS = ("FGSM", "PGD")
"""The columns of the candidates' table that hold an accuracy under attack (the rest: ``clean``)."""
BUDGET_SLACK = 1e-6
"""How far past eps a pixel may move (float rounding), as the teacher's intake allows; nothing is ever clipped."""


# --- Exercise 1: which defended model to enter ------------------------------------------------------------------

def _robust(table: Any) -> Any:
    """Each row's robust accuracy: the worst of its accuracies under attack."""
    return table[[c for c in ATTACKS if c in table.columns]].min(axis=1)


def _best_entry(table: Any, floor: float) -> Any:
    """The rule: among rows with clean accuracy at or over ``floor``, the highest robust accuracy; None if none."""
    kept = _robust(table)[table["clean"] >= floor]
    return None if kept.empty else kept.idxmax()


def _entry_cases(floor: float) -> list[Any]:
    """Made-up candidates' tables on which the wrong rules choose differently from the right one."""
    import pandas as pd

    def table(rows: dict[str, tuple[float, float, float]]) -> Any:
        return pd.DataFrame.from_dict(rows, orient="index", columns=["clean", *ATTACKS]).rename_axis("model")

    low, high = max(floor - 0.15, 0.0), min(floor + 0.05, 1.0)
    return [
        # the most robust model is under the floor: it is listed, not ranked
        table({"baseline": (high, 0.05, 0.02), "adversarial_training": (high, 0.60, 0.30),
               "madry": (low, 0.70, 0.60)}),
        # PGD alone would choose "adversarial_training", whose FGSM number is its worse one (masked gradients)
        table({"baseline": (high, 0.05, 0.02), "adversarial_training": (high, 0.20, 0.55),
               "madry": (high, 0.50, 0.45)}),
        # the most accurate model on clean images is the least robust
        table({"baseline": (min(high + 0.03, 1.0), 0.10, 0.05), "madry": (high, 0.55, 0.50)}),
        # nothing clears the floor
        table({"baseline": (low, 0.05, 0.02), "madry": (low, 0.60, 0.50)}),
    ]


def _entry_rule_problem(rule: Callable[[Any], Any], floor: float) -> str | None:
    """Return a hint when the pair's ``rule(candidates)`` chooses wrongly on a made-up table, else None."""
    for case in _entry_cases(floor):
        try:
            got = rule(case.copy())
        except Exception as err:  # noqa: BLE001 - the pair's function: say where it fails, never crash the check
            return f"your function raised {type(err).__name__} on another table of candidates: {err}"
        if got is not None and not isinstance(got, str):
            if _is_number(got):
                return "your function should return the chosen model's name (a row's index), not its accuracy"
            return f"your function should return one row name (a string) or None, got a {type(got).__name__}"
        expected = _best_entry(case, floor)
        if got == expected:
            continue
        shown = case.round(3).to_string()
        if expected is None:
            return ("when no model reaches the clean-accuracy floor, return None (the teacher lists such a model "
                    f"but does not rank it); on this table none does:\n{shown}")
        if got in case.index and case.loc[got, "clean"] < floor:
            return ("a model under the clean-accuracy floor is not ranked, however robust: keep only the rows whose "
                    f"clean accuracy reaches challenge.clean_floor; on this table your function chose {got!r}:\n"
                    f"{shown}")
        if got == case["clean"].idxmax():
            return ("the entry is ranked by its robust accuracy, not its clean accuracy (the floor only decides "
                    f"who is ranked); on this table your function chose {got!r}:\n{shown}")
        if got == case["PGD"].idxmax():
            return ("a model's robust accuracy is its worst number under attack, the smaller of its FGSM and PGD "
                    f"columns, not PGD alone; on this table your function chose {got!r}:\n{shown}")
        return f"on this table your function chose {got!r}, not the most robust model over the floor:\n{shown}"
    return None


def tournament_entry(choice: Any, candidates: Any, *, clean_floor: float,
                     rule: Callable[[Any], Any] | None = None, strict: bool | None = None) -> Verdict:
    """Check the model a pair enters: over the clean-accuracy floor, the highest robust accuracy.

    A model's robust accuracy is its worst accuracy under the attacks of the table (the smaller of ``FGSM`` and
    ``PGD``): the teacher's suite also takes the worst case. The lab's own models can make a wrong rule choose right
    by coincidence, so the pair's function ``rule`` is also run on made-up tables where wrong rules differ.

    :param choice: the chosen model's name (a row of ``candidates``), or None when none reaches the floor.
    :param candidates: a DataFrame with the columns ``clean``, ``FGSM`` and ``PGD``, one row per saved model.
    :param clean_floor: the class's clean-accuracy floor (``challenge.clean_floor``).
    :param rule: the pair's function ``rule(candidates)`` that chose (optional).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    floor = float(clean_floor)
    expected = _best_entry(candidates, floor)
    if isinstance(choice, (list, tuple, set)) or np.ndim(choice) > 0:
        hint = "choose one model: its row name, a single string (or None)"
    elif _is_number(choice):
        hint = "return the chosen model's name (the row's index, e.g. with idxmax), not its accuracy"
    elif choice is None:
        hint = None if expected is None else "at least one model reaches the clean-accuracy floor: choose among those"
    elif choice not in candidates.index:
        hint = f"choose one of the table's rows by its name: {', '.join(map(str, candidates.index))}"
    elif candidates.loc[choice, "clean"] < floor:
        hint = ("this model is under the clean-accuracy floor (challenge.clean_floor): the teacher lists it but does "
                "not rank it")
    elif _robust(candidates)[choice] < _robust(candidates)[expected] - 1e-9:
        hint = ("another model over the floor has a higher robust accuracy, its worst number under attack (the "
                "smaller of its FGSM and PGD columns)")
    else:
        hint = None
    if hint is None and rule is not None:
        hint = _entry_rule_problem(rule, floor)
    return _verdict("tournament entry", hint, strict)


# --- Exercise 2: the attack file --------------------------------------------------------------------------------

def _fgsm_accuracy(surrogate: Any, x: np.ndarray, y: np.ndarray, eps: float) -> float:
    from art.attacks.evasion import FastGradientMethod

    x_fgsm = FastGradientMethod(surrogate, eps=float(eps), batch_size=256).generate(x, y=y)
    return float(np.mean(predicted_labels(surrogate, x_fgsm) == y))


def _shape_problem(x_adv: Any, x: np.ndarray) -> str | None:
    """Return a hint when ``x_adv`` is not one finite float image per challenge image, else None."""
    try:
        x_adv = np.asarray(x_adv)
    except (TypeError, ValueError):
        return "x_adv should be a NumPy array of images, one per challenge image"
    if x_adv.shape != x.shape:
        return (f"x_adv should hold one adversarial image per challenge image, shape {x.shape} (challenge.x), got "
                f"{x_adv.shape}: attack all of challenge.x, in its order")
    if not np.issubdtype(x_adv.dtype, np.floating):
        return f"x_adv should hold float pixels in [0, 1] like challenge.x, got {x_adv.dtype}"
    if not np.all(np.isfinite(x_adv)):
        return "x_adv holds NaN or infinite pixels: keep what the attack's generate returns"
    return None


def _budget_problem(x_adv: np.ndarray, x: np.ndarray, eps: float) -> str | None:
    """Return a hint when ``x_adv`` leaves [0, 1], leaves the eps-ball around ``x`` or is ``x``; never clips."""
    change = float(np.abs(x_adv - x).max())
    if x_adv.min() < -BUDGET_SLACK or x_adv.max() > 1 + BUDGET_SLACK:
        return ("some pixels left [0, 1]: the teacher refuses such a file (nothing is clipped for you); keep what the "
                "attack's generate returns, the classifier's clip_values keep it in range")
    if change > eps + BUDGET_SLACK:
        units = " (an eps written for 0-255 pixels must be divided by 255)" if change > 3 * eps else ""
        return (f"a pixel moved by {change:.3f}, more than the class budget challenge.eps = {eps}: the teacher refuses "
                f"the whole file, it is not clipped{units}. Build the attack with eps=challenge.eps, and do not add "
                "anything to its images")
    if change == 0:
        return "x_adv equals the challenge images: keep what the attack's generate returns"
    if change < 0.5 * eps:
        return (f"your largest change is {change:.3f}, under half the budget challenge.eps = {eps}: the class allows "
                "the whole budget, and a weaker attack breaks fewer models")
    return None


def tournament_attack(x_adv: Any, surrogate: Any, x: np.ndarray, y: np.ndarray, *, eps: float,
                      strict: bool | None = None) -> Verdict:
    """Check a pair's attack file before it is saved: shape, range, budget, and that it is an attack on the surrogate.

    Nothing is clipped: an image a pixel outside [0, 1] or outside the L-inf ball of radius ``eps`` around its
    challenge image fails, as the teacher's intake refuses it. The images must also fool the surrogate they were
    crafted on at least about as often as FGSM at ``eps`` does (PGD should do better).

    :param x_adv: the pair's adversarial images.
    :param surrogate: the model (ART classifier) they were crafted on.
    :param x: the challenge images (``challenge.x``).
    :param y: their labels (``challenge.y``, integers or one-hot).
    :param eps: the class budget (``challenge.eps``), in [0, 1].
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from labkit.data import check_labels

    x = np.asarray(x, dtype=np.float32)
    y = check_labels(y, len(x))
    hint = _shape_problem(x_adv, x)
    if hint is None:
        x_adv = np.asarray(x_adv, dtype=np.float32)
        hint = _budget_problem(x_adv, x, float(eps))
    if hint is None:
        on_adv = float(np.mean(predicted_labels(surrogate, x_adv) == y))
        if on_adv > _fgsm_accuracy(surrogate, x, y, eps) + 0.05:
            hint = (f"the surrogate still classifies {on_adv:.0%} of x_adv right, more than under a single FGSM step: "
                    "craft the images with PGD on `surrogate` itself, from challenge.x with its labels challenge.y")
    return _verdict("tournament attack", hint, strict)


# --- Exercise 3: the attack's success rate ----------------------------------------------------------------------

def tournament_success(value: Any, model: Any, x_adv: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                       strict: bool | None = None) -> Verdict:
    """Check an attack file's success rate against one model, as the tournament's red score counts it.

    Success: among the challenge images the model classifies correctly when clean, the share it misclassifies in
    the attack file (an image it already gets wrong is no break).

    :param value: the pair's success rate.
    :param model: the model attacked (an ART classifier).
    :param x_adv: the attack file's images.
    :param x: the clean challenge images.
    :param y: their labels (integers or one-hot).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from labkit.data import check_labels

    y = check_labels(y, len(x))
    hint = _rate_problem(value, "the success rate")
    if hint is None:
        clean_right = predicted_labels(model, x) == y
        adv_wrong = predicted_labels(model, x_adv) != y
        expected = float(np.mean(adv_wrong[clean_right])) if clean_right.any() else 0.0
        if not _close(value, expected):
            hint = ("count only the challenge images the model gets right when clean, and among them the share it "
                    "gets wrong on x_adv")
            if _close(value, np.mean(adv_wrong)) and _close(value, np.mean(~adv_wrong)):
                hint = (f"this is the model's accuracy on x_adv, or the share of all images it gets wrong on x_adv, "
                        f"which counts those it already got wrong when clean (here both are {float(value):.0%}): the "
                        "success rate keeps only the images it classifies right when clean, and counts those it "
                        "gets wrong on x_adv")
            elif _close(value, np.mean(adv_wrong)):
                hint = ("this counts every image the model gets wrong on x_adv, including those it already got wrong "
                        "when clean: those are no break. Keep only the images it classifies right when clean")
            elif _close(value, np.mean(~adv_wrong)):
                hint = "this is the model's accuracy on x_adv; the success rate counts the images it gets wrong"
            elif _close(value, np.mean(adv_wrong & clean_right)):
                hint = ("the breaks are right, the denominator is not: divide by the number of images the model "
                        "classifies right when clean, not by all the challenge images")
            elif _close(value, 1.0 - expected):
                hint = "this is the share the attack fails on; the success rate is the share it breaks"
    return _verdict("tournament success", hint, strict)
