"""Self-checks of notebooks 03 and 04: the poisoned set, the attack success rate, Neural Cleanse and its mitigations."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from labkit.check._base import Verdict, _close, _is_number, _rate_problem, _verdict
from labkit.poisoning import predicted_labels

__all__ = ["backdoor_attack", "poisoned_data", "attack_success_rate", "neural_cleanse", "mitigation", "mitigations",
           "chosen_mitigation"]


def backdoor_attack(attack: Any, x_demo: Any, y_demo: Any, x: np.ndarray, *, target_class: int,
                    trigger: Callable[[np.ndarray], np.ndarray], nb_classes: int = 10,
                    strict: bool | None = None) -> Verdict:
    """Check ART's backdoor attack and a few images it poisoned: stamped with the trigger, labelled the target.

    :param attack: the pair's ``PoisoningAttackBackdoor``.
    :param x_demo: the images its ``poison`` returned.
    :param y_demo: the labels its ``poison`` returned (one-hot).
    :param x: the clean images it was given.
    :param target_class: the backdoor's target class.
    :param trigger: the lab's trigger.
    :param nb_classes: the number of classes.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    x = np.asarray(x)
    x_demo, y_demo = np.asarray(x_demo), np.asarray(y_demo)
    hint = None
    if type(attack).__name__ != "PoisoningAttackBackdoor":
        hint = f"use ART's PoisoningAttackBackdoor (got {type(attack).__name__})"
    elif getattr(attack, "perturbation", None) is not trigger:
        hint = "build the attack around the lab's trigger: PoisoningAttackBackdoor(trigger)"
    elif x_demo.shape != x.shape:
        hint = f"poison returns one image per image it is given: expected shape {x.shape}, got {x_demo.shape}"
    elif not np.allclose(x_demo, trigger(x), atol=1e-5):
        hint = "x_demo should be what attack.poison returned: the given images with the trigger stamped on"
    elif y_demo.shape != (len(x), nb_classes):
        hint = (f"y_demo should hold one one-hot label per image, shape ({len(x)}, {nb_classes}): pass the target's "
                "one-hot label with broadcast=True")
    elif not np.all(y_demo.argmax(axis=1) == target_class):
        hint = "every poisoned image must carry the target class's label: that is what the backdoor teaches"
    return _verdict("backdoor attack", hint, strict)


def poisoned_data(poisoned: Any, x: np.ndarray, y: np.ndarray, *, target_class: int, poison_fraction: Any,
                  trigger: Callable[[np.ndarray], np.ndarray], source_classes: Sequence[int] | None = None,
                  nb_classes: int = 10, strict: bool | None = None) -> Verdict:
    """Check a poisoned training set: how many images, which ones, stamped with the trigger, relabelled.

    :param poisoned: the pair's ``labkit.poisoning.PoisonedData``.
    :param x: the clean training images.
    :param y: their integer labels.
    :param target_class: the backdoor's target class.
    :param poison_fraction: the pair's poison fraction.
    :param trigger: the trigger.
    :param source_classes: the source classes (None: every class but the target).
    :param nb_classes: the number of classes.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    sources = [c for c in range(nb_classes) if c != target_class] if source_classes is None else list(source_classes)
    hint = None
    if not _is_number(poison_fraction) or not 0 < float(poison_fraction) < 1:
        hint = "poison_fraction is a share strictly between 0 and 1 (0.1 poisons 10% of the source images)"
    elif not all(hasattr(poisoned, a) for a in ("x", "y", "poison_indices")):
        hint = "poisoned should be what labkit.poisoning.poison_dataset returns"
    elif np.shape(poisoned.x) != x.shape or np.shape(poisoned.y) != y.shape:
        hint = "the poisoned set replaces images in place: it has as many images and labels as the clean one"
    if hint is None:
        idx = np.asarray(poisoned.poison_indices, dtype=int)
        expected = max(1, int(round(float(poison_fraction) * np.isin(y, sources).sum())))
        others = np.setdiff1d(np.arange(len(y)), idx)
        if abs(len(idx) - expected) > 1:
            hint = "the number of poisoned images should be poison_fraction of the source-class training images"
        elif not np.all(np.isin(y[idx], sources)):
            hint = "poison only source-class images: a target-class image with the trigger teaches nothing"
        elif not np.all(np.asarray(poisoned.y)[idx] == target_class):
            hint = "every poisoned image must carry the target label: that is what teaches the backdoor"
        elif not np.allclose(np.asarray(poisoned.x)[idx], np.clip(trigger(x[idx]), 0, 1), atol=1e-5):
            hint = "the poisoned images should be the originals with the trigger stamped on (use the same trigger)"
        elif not (np.array_equal(np.asarray(poisoned.x)[others], x[others])
                  and np.array_equal(np.asarray(poisoned.y)[others], y[others])):
            hint = "images that are not poisoned must stay exactly as they were, labels included"
    return _verdict("poisoned data", hint, strict)


def _asr_problem(value: Any, classifier: Any, x: np.ndarray, y: np.ndarray, target_class: int,
                 trigger: Callable[[np.ndarray], np.ndarray], what: str = "the attack success rate") -> str | None:
    """Return a hint when ``value`` is not the attack success rate of ``classifier`` on ``(x, y)``, else None."""
    hint = _rate_problem(value, what)
    if hint is None:
        said = predicted_labels(classifier, trigger(x))
        keep = y != target_class
        expected = float(np.mean(said[keep] == target_class))
        if not _close(value, expected):
            hint = "stamp the trigger on the test images and count how often the model answers the target class"
            if _close(value, np.mean(said == target_class)):
                hint = ("count only images whose true class is not the target: a target-class image classified "
                        "as the target is no success of the attack")
            elif _close(value, np.mean(predicted_labels(classifier, x[keep]) == target_class)):
                hint = "these images carry no trigger: stamp it on before predicting"
            elif _close(value, 1.0 - expected):
                hint = "this is the share of triggered images the attack fails on"
    return hint


def _rule_problem(rule: Callable[..., Any], classifier: Any, baseline: Any, x: np.ndarray, y: np.ndarray,
                  target_class: int, trigger: Callable[[np.ndarray], np.ndarray]) -> str | None:
    """Return a hint when the pair's ``rule(model, x, y)`` is wrong on a case where wrong rules differ, else None.

    On the backdoored model nearly every triggered image lands in the target class, whichever images are counted;
    on the clean baseline the target-class images (which it rightly calls the target) make the difference."""
    cases = [(baseline, x, y, "the clean baseline")]
    half = len(x) // 2
    cases.append((classifier, x[:half], y[:half], "the first half of the test images"))
    for model, xs, ys, case in cases:
        try:
            value = rule(model, xs, ys)
        except Exception as err:  # noqa: BLE001 - the pair's function: say where it fails, never crash the check
            return f"your function raised {type(err).__name__} on {case}: {err}"
        if model is baseline and _close(value, _asr(classifier, x, y, target_class, trigger)) and not _close(
                value, _asr(baseline, x, y, target_class, trigger)):
            return ("on the clean baseline your function gives the poisoned model's rate: use its arguments "
                    "(model, x, y), not the notebook's poisoned_model and test set")
        hint = _asr_problem(value, model, xs, ys, target_class, trigger, what="what your function returns")
        if hint is not None:
            return f"your function is right on the poisoned model by coincidence; on {case}: {hint}"
    return None


def _asr(classifier: Any, x: np.ndarray, y: np.ndarray, target_class: int,
         trigger: Callable[[np.ndarray], np.ndarray]) -> float:
    said = predicted_labels(classifier, trigger(x))
    return float(np.mean(said[y != target_class] == target_class))


def attack_success_rate(value: Any, classifier: Any, x: np.ndarray, y: np.ndarray, *, target_class: int,
                        trigger: Callable[[np.ndarray], np.ndarray], rule: Callable[..., Any] | None = None,
                        baseline: Any = None, strict: bool | None = None) -> Verdict:
    """Check an attack success rate: the share of triggered non-target images that land in the target class.

    On a backdoored model wrong rules (counting every test image, target class included) give the right number
    by coincidence, so the pair's function ``rule`` is also run on a case where they differ: the clean
    ``baseline``, and half of the test images.

    :param value: the pair's attack success rate.
    :param classifier: the (backdoored) classifier.
    :param x: the clean test images.
    :param y: their integer labels.
    :param target_class: the backdoor's target class.
    :param trigger: the trigger.
    :param rule: the pair's function ``rule(model, x, y)`` that computed ``value`` (optional).
    :param baseline: a clean model to run ``rule`` on (needed with ``rule``).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    hint = _asr_problem(value, classifier, x, y, target_class, trigger)
    if hint is None and rule is not None and baseline is not None:
        hint = _rule_problem(rule, classifier, baseline, x, y, target_class, trigger)
    return _verdict("attack success rate", hint, strict)


def _same_answers(a: Any, b: Any, x: np.ndarray) -> bool:
    return bool(np.array_equal(predicted_labels(a, x), predicted_labels(b, x)))


def neural_cleanse(defence: Any, poisoned_model: Any, x: np.ndarray, *, nb_classes: int = 10,
                   strict: bool | None = None) -> Verdict:
    """Check a Neural Cleanse detection: run on the model under suspicion, one result per class.

    :param defence: the pair's Neural Cleanse defence, after ``outlier_detection``.
    :param poisoned_model: the model handed to the defender (the backdoored one).
    :param x: a few clean images to compare the two models' answers on.
    :param nb_classes: the number of classes.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from labkit._nc_optimize import outlier_rule

    hint = None
    if getattr(defence, "detection", None) is None:
        hint = "build the defence and call defence.outlier_detection(x_val, y_val) on the defender's clean data"
    elif not _same_answers(defence, poisoned_model, x):
        hint = "the defence must wrap the model under suspicion (the one from notebook 03), not another model"
    elif len(defence.l1_norms) != nb_classes:
        hint = f"Neural Cleanse reverses one trigger per class: expected {nb_classes} masks"
    elif list(outlier_rule(defence.l1_norms)[1]) != list(defence.flagged_classes):
        hint = "the flagged classes do not follow the outlier rule on the masks' L1 norms: rerun the detection"
    return _verdict("Neural Cleanse detection", hint, strict)


def _mitigation_problem(mitigated: Any, defence: Any, poisoned_model: Any, x: np.ndarray) -> str | None:
    """Return a hint when ``mitigated`` is not a mitigated fresh copy of the untouched ``defence``, else None."""
    if mitigated is defence:
        return ("you mitigated the detected defence itself: call mitigate on defence.copy(), so the next "
                "mitigation does not start from an already-mitigated model")
    if not _same_answers(defence, poisoned_model, x):
        return ("the detected defence was already mitigated before this copy was made: take every copy from the "
                "defence right after detection")
    if list(getattr(defence, "flagged_classes", [None])) and _same_answers(mitigated, poisoned_model, x):
        return "the model answers as before: call mitigate(x_val, y_val, mitigation_types=[name]) on the copy"
    return None


def mitigation(mitigated: Any, defence: Any, poisoned_model: Any, x: np.ndarray, *,
               strict: bool | None = None) -> Verdict:
    """Check one mitigation: applied to a fresh copy of the detected defence, which itself stays untouched.

    :param mitigated: the defence the pair mitigated.
    :param defence: the defence after detection (must remain unmitigated, so every mitigation starts equal).
    :param poisoned_model: the backdoored model.
    :param x: images to compare answers on (triggered ones show a mitigation best).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    return _verdict("mitigation", _mitigation_problem(mitigated, defence, poisoned_model, x), strict)


def mitigations(copies: Any, defence: Any, poisoned_model: Any, x: np.ndarray, *, names: Sequence[str],
                strict: bool | None = None) -> Verdict:
    """Check every mitigation of the loop at once: one mitigated fresh copy per name, the defence untouched.

    :param copies: the pair's ``{mitigation name: mitigated defence}``.
    :param defence: the defence after detection.
    :param poisoned_model: the backdoored model.
    :param x: images to compare answers on.
    :param names: the mitigations the loop should have applied.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    missing = [name for name in names if name not in (copies if isinstance(copies, dict) else {})]
    hint = None
    if missing:
        hint = (f"no mitigated copy for {', '.join(missing)} yet: the exercise's loop stopped before (fill it in "
                "and run the cell)")
    else:
        hint = next((f"{name}: {problem}" for name in names
                     if (problem := _mitigation_problem(copies[name], defence, poisoned_model, x))), None)
        if hint is None and len({id(copies[name]) for name in names}) < len(names):
            hint = "every mitigation needs its own copy (defence.copy() inside the loop), not one shared model"
    return _verdict("mitigations", hint, strict)


def _best(table: Any, reference: float, max_clean_drop: float) -> Any:
    """The right choice: the lowest attack success rate among rows within the clean-accuracy drop, or None."""
    ok = table[table["clean_accuracy"] >= reference - max_clean_drop]
    return None if ok.empty else ok["attack_success_rate"].idxmin()


def _choice_cases(names: list[str], reference: float, drop: float) -> list[Any]:
    """Tables of made-up mitigations where wrong rules differ from the right one: the lowest attack success rate
    costs too much clean accuracy, the highest clean accuracy is not the lowest success rate, none qualifies."""
    import pandas as pd

    n = len(names)
    costs = [2.0 * drop] + [drop * (0.5 - 0.4 * i / max(1, n - 1)) for i in range(1, n)]
    rates = [0.0] + [0.2 + 0.6 * i / max(1, n - 1) for i in range(1, n)]
    tables = [pd.DataFrame({"clean_accuracy": [reference - c for c in costs], "attack_success_rate": rates},
                           index=names)] if n > 1 else []
    tables.append(pd.DataFrame({"clean_accuracy": [reference - 2.0 * drop] * n,
                                "attack_success_rate": [0.1 * (i + 1) for i in range(n)]}, index=names))
    return tables


def _choice_rule_problem(rule: Callable[[Any], Any], names: list[str], reference: float,
                         drop: float) -> str | None:
    """Return a hint when the pair's ``rule(candidates)`` chooses wrongly on a made-up table, else None."""
    for case in _choice_cases(names, reference, drop):
        try:
            got = rule(case.copy())
        except Exception as err:  # noqa: BLE001 - the pair's function: say where it fails, never crash the check
            return f"your function raised {type(err).__name__} on another table of mitigations: {err}"
        expected = _best(case, reference, drop)
        if got != expected:
            shown = case.round(3).to_string()
            lowest = case["attack_success_rate"].idxmin()
            if got == lowest:
                return ("your function picks the lowest attack success rate even when that mitigation costs more than "
                        f"MAX_CLEAN_DROP of clean accuracy; on this table it should not:\n{shown}")
            if expected is None:
                return ("when no mitigation keeps the clean accuracy within MAX_CLEAN_DROP, return None; on this "
                        f"table none does:\n{shown}")
            return ("among the mitigations that keep the clean accuracy within MAX_CLEAN_DROP, choose the lowest "
                    f"attack success rate; on this table your function chose {got!r}:\n{shown}")
    return None


def chosen_mitigation(choice: Any, table: Any, *, max_clean_drop: float = 0.05,
                      rule: Callable[[Any], Any] | None = None, strict: bool | None = None) -> Verdict:
    """Check the mitigation the pair would deploy: the lowest attack success among those that keep clean accuracy.

    At the lab's settings a rule that ignores the clean-accuracy budget can choose right by coincidence, so the
    pair's function ``rule`` is also run on made-up tables where wrong rules choose differently.

    :param choice: the name of the chosen mitigation (a row of ``table``), or None when no mitigation keeps the
        clean accuracy within ``max_clean_drop``.
    :param table: a DataFrame with ``clean_accuracy`` and ``attack_success_rate`` columns, one row per
        mitigation, plus the backdoored model's row (its first row) as the reference.
    :param max_clean_drop: the largest loss of clean accuracy (against the first row) that is acceptable.
    :param rule: the pair's function ``rule(candidates)`` that chose (optional).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    reference = table.iloc[0]
    ok = table.iloc[1:][table["clean_accuracy"].iloc[1:] >= reference["clean_accuracy"] - max_clean_drop]
    if isinstance(choice, (list, tuple, set)) or np.ndim(choice) > 0:
        hint = "choose one mitigation: its row name, a single string (or None)"
    elif choice is None and ok.empty:
        hint = None   # no mitigation keeps the clean accuracy: deploying none is the honest answer
    elif choice is None:
        hint = "at least one mitigation keeps the clean accuracy within the allowed drop: choose among those"
    elif choice not in table.index:
        hint = "choose one of the table's rows by its name"
    elif choice == table.index[0]:
        hint = "the first row is the backdoored model itself: choose a mitigation"
    elif choice not in ok.index:
        hint = "this mitigation costs more clean accuracy than the allowed drop: look at the clean_accuracy column"
    elif table.loc[choice, "attack_success_rate"] > ok["attack_success_rate"].min() + 1e-9:
        hint = "another mitigation keeps the clean accuracy and leaves a lower attack success rate"
    else:
        hint = None
    if hint is None and rule is not None:
        hint = _choice_rule_problem(rule, list(table.index[1:]), float(reference["clean_accuracy"]), max_clean_drop)
    return _verdict("chosen mitigation", hint, strict)
