"""Self-checks for the lab's exercises: ``labkit.check.<exercise>(...)`` after each exercise cell.

Each check recomputes the pair's result independently (shapes, ranges, the number itself within a
tolerance), prints ``passed`` when it agrees and a short hint when it does not (what to look at, never
the answer), and returns True or False: a failing check never stops the notebook. With ``strict=True``
(or the environment variable ``LABKIT_STRICT_CHECKS=1``) a failing check raises ``CheckFailed`` instead,
which is what the tests and a teacher's automated run want.
"""

from __future__ import annotations

import numbers
import os
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["CheckFailed", "TOLERANCE", "clean_accuracy", "fgsm_attack", "pgd_attack", "accuracy_under_attack",
           "adversarial_trainer", "poisoned_data", "attack_success_rate", "neural_cleanse", "mitigation",
           "chosen_mitigation", "membership_attack"]

TOLERANCE = 0.005
"""How far a rate may be from the independent computation (half a percentage point)."""
STRICT_ENV = "LABKIT_STRICT_CHECKS"


class CheckFailed(AssertionError):
    """A self-check failed (raised only in strict mode); the message is the hint."""


def _verdict(name: str, hint: str | None, strict: bool | None, echo: Callable[[str], Any] = print) -> bool:
    """Print the verdict of check ``name`` (``hint`` None means passed); return it, or raise in strict mode."""
    if hint is None:
        echo(f"✅ {name}: passed")
        return True
    echo(f"❌ {name}: not yet. Hint: {hint}")
    if strict or (strict is None and os.environ.get(STRICT_ENV) == "1"):
        raise CheckFailed(f"{name}: {hint}")
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, bool) \
        and bool(np.isfinite(float(value)))


def _rate_problem(value: Any, what: str) -> str | None:
    """Return a hint when ``value`` is not a rate in [0, 1], else None."""
    if not _is_number(value):
        return f"{what} should be one number (a Python or NumPy float), got {type(value).__name__}"
    if 1.0 < float(value) <= 100.0:
        return f"{what} is a share in [0, 1], not a percentage"
    if not 0.0 <= float(value) <= 1.0:
        return f"{what} is a share in [0, 1]; {float(value)!r} cannot be one"
    return None


def _predicted(classifier: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(classifier.predict(np.asarray(x, dtype=np.float32), batch_size=256)).argmax(axis=1)


def _share_correct(classifier: Any, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(_predicted(classifier, x) == np.asarray(y).reshape(-1)))


def _close(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= TOLERANCE


def _eps_problem(attack_eps: Any, eps: float) -> str | None:
    """Return a hint when an attack's eps is not the lab's ``eps`` (in [0, 1] pixel units), else None."""
    if not _is_number(attack_eps):
        return "the attack's eps should be one number, the lab's EPS"
    if float(attack_eps) > 1.0:
        return ("the images are in [0, 1], so eps is too: a budget written for 0-255 pixels must be divided "
                "by 255")
    if not np.isclose(float(attack_eps), float(eps)):
        return "build the attack with the lab's budget, the parameter EPS"
    return None


def clean_accuracy(value: Any, classifier: Any, x_test: np.ndarray, y_test: np.ndarray, *,
                   x_train: np.ndarray | None = None, y_train: np.ndarray | None = None,
                   strict: bool | None = None) -> bool:
    """Check a clean accuracy: the share of clean test images the classifier labels correctly.

    :param value: the pair's clean accuracy.
    :param classifier: the ART classifier.
    :param x_test: the clean test images.
    :param y_test: their integer labels.
    :param x_train: the training images, to recognise an accuracy measured on them (optional).
    :param y_train: their labels.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    hint = _rate_problem(value, "the clean accuracy")
    if hint is None and not _close(value, _share_correct(classifier, x_test, y_test)):
        hint = "compare the predicted class (argmax of classifier.predict) with the true labels of the test images"
        if x_train is not None and y_train is not None and _close(value, _share_correct(classifier, x_train, y_train)):
            hint = ("this is the accuracy on the training images the model learnt from; measure it on the test "
                    "images it has never seen")
    return _verdict("clean accuracy", hint, strict)


def fgsm_attack(attack: Any, x_adv: np.ndarray, x: np.ndarray, *, eps: float, strict: bool | None = None) -> bool:
    """Check an FGSM attack and its adversarial images: the class, the budget, untargeted, and the perturbation.

    :param attack: the pair's ART attack.
    :param x_adv: what ``attack.generate`` returned.
    :param x: the clean images it was given.
    :param eps: the lab's budget, in [0, 1].
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    x_adv, x = np.asarray(x_adv), np.asarray(x)
    if type(attack).__name__ != "FastGradientMethod":
        hint = f"use ART's FastGradientMethod (got {type(attack).__name__})"
    elif getattr(attack, "targeted", False):
        hint = "this attack is untargeted: any wrong class counts, so leave targeted=False"
    else:
        hint = _eps_problem(getattr(attack, "eps", None), eps)
    if hint is None:
        change = np.abs(x_adv - x).max() if x_adv.shape == x.shape else None
        if change is None:
            hint = f"x_adv should have one adversarial image per clean image: shape {x.shape}, got {x_adv.shape}"
        elif change == 0:
            hint = "x_adv equals the clean images: call attack.generate(x, y=...) and keep what it returns"
        elif change > eps + 1e-5 or x_adv.min() < -1e-6 or x_adv.max() > 1 + 1e-6:
            hint = "some pixel moved by more than eps or left [0, 1]: x_adv should come straight from attack.generate"
    return _verdict("FGSM attack", hint, strict)


def pgd_attack(attack: Any, *, eps: float, strict: bool | None = None) -> bool:
    """Check a PGD attack's settings: the class, the budget, the step size and the number of steps.

    :param attack: the pair's ART ``ProjectedGradientDescent``.
    :param eps: the lab's budget, in [0, 1].
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    if not type(attack).__name__.startswith("ProjectedGradientDescent"):
        hint = f"use ART's ProjectedGradientDescent (got {type(attack).__name__})"
    else:
        hint = _eps_problem(getattr(attack, "eps", None), eps)
    if hint is None:
        step, steps = float(getattr(attack, "eps_step", 0)), int(getattr(attack, "max_iter", 0))
        if steps < 2:
            hint = "PGD's strength is its many small steps: max_iter should be more than 1"
        elif not 0 < step < float(eps):
            hint = "eps_step is one small step, a fraction of eps; with eps_step >= eps PGD is just FGSM"
        elif step * steps < float(eps):
            hint = "eps_step x max_iter is below eps: the steps cannot even reach the edge of the budget"
    return _verdict("PGD attack", hint, strict)


def accuracy_under_attack(value: Any, classifier: Any, x_adv: np.ndarray, y: np.ndarray, *,
                          x_clean: np.ndarray | None = None, strict: bool | None = None) -> bool:
    """Check an accuracy under attack: the share of adversarial images still labelled with their true class.

    :param value: the pair's accuracy under attack.
    :param classifier: the attacked classifier.
    :param x_adv: the adversarial images.
    :param y: the true labels of the clean images they came from.
    :param x_clean: the clean images, to recognise a clean accuracy (optional).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    hint = _rate_problem(value, "the accuracy under attack")
    if hint is None:
        expected = _share_correct(classifier, x_adv, y)
        if not _close(value, expected):
            hint = "compare the model's answers on the adversarial images with their true labels"
            if _close(value, 1.0 - expected):
                hint = ("this is the share of attacks that succeed; the accuracy is the share the model still "
                        "gets right")
            elif x_clean is not None and _close(value, _share_correct(classifier, x_clean, y)):
                hint = "this is measured on the clean images: predict on the adversarial ones"
    return _verdict("accuracy under attack", hint, strict)


def adversarial_trainer(trainer: Any, *, eps: float, ratio: float | None = None, baseline: Any = None,
                        strict: bool | None = None) -> bool:
    """Check an adversarial trainer's configuration: a fresh model, FGSM against that very model, eps and ratio.

    :param trainer: the pair's ``AdversarialTrainer`` (or labkit's ``FastAdversarialTrainer``).
    :param eps: the lab's budget, in [0, 1].
    :param ratio: the intended share of adversarial images per batch (optional).
    :param baseline: the baseline classifier, which must not be the one trained (optional).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    hint = None
    if not hasattr(trainer, "get_classifier"):
        hint = "build ART's AdversarialTrainer(classifier, attacks=..., ratio=...)"
    if hint is None:
        model = trainer.get_classifier()
        attacks = getattr(trainer, "attacks", None) or [trainer]   # FastAdversarialTrainer carries eps itself
        if baseline is not None and model is baseline:
            hint = ("this trains the baseline itself, which notebook 01 and the report compare against: train a "
                    "fresh model (wrap_model(build_model(...)))")
        elif type(trainer).__name__ == "AdversarialTrainer" and any(
                type(a).__name__ != "FastGradientMethod" for a in attacks):
            hint = "this lab's adversarial training uses FastGradientMethod"
        else:
            hint = next(filter(None, (_eps_problem(getattr(a, "eps", None), eps) for a in attacks)), None)
        if hint is None and any(getattr(a, "estimator", model) is not model for a in attacks):
            hint = ("the attack is built on another model: build FastGradientMethod on the model being trained, "
                    "so each batch's adversarial images follow its current weights")
        if hint is None and ratio is not None and not np.isclose(float(getattr(trainer, "ratio", ratio)), ratio):
            hint = "pass the lab's RATIO: the share of every batch replaced by its adversarial version"
    return _verdict("adversarial trainer", hint, strict)


def poisoned_data(poisoned: Any, x: np.ndarray, y: np.ndarray, *, target_class: int, poison_fraction: Any,
                  trigger: Callable[[np.ndarray], np.ndarray], source_classes: Sequence[int] | None = None,
                  nb_classes: int = 10, strict: bool | None = None) -> bool:
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


def attack_success_rate(value: Any, classifier: Any, x: np.ndarray, y: np.ndarray, *, target_class: int,
                        trigger: Callable[[np.ndarray], np.ndarray], strict: bool | None = None) -> bool:
    """Check an attack success rate: the share of triggered non-target images that land in the target class.

    :param value: the pair's attack success rate.
    :param classifier: the (backdoored) classifier.
    :param x: the clean test images.
    :param y: their integer labels.
    :param target_class: the backdoor's target class.
    :param trigger: the trigger.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from labkit.poisoning import predicted_labels

    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    hint = _rate_problem(value, "the attack success rate")
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
    return _verdict("attack success rate", hint, strict)


def _same_answers(a: Any, b: Any, x: np.ndarray) -> bool:
    from labkit.poisoning import predicted_labels

    return bool(np.array_equal(predicted_labels(a, x), predicted_labels(b, x)))


def neural_cleanse(defence: Any, poisoned_model: Any, x: np.ndarray, *, nb_classes: int = 10,
                   strict: bool | None = None) -> bool:
    """Check a Neural Cleanse detection: run on the model under suspicion, one result per class.

    :param defence: the pair's Neural Cleanse defence, after ``outlier_detection``.
    :param poisoned_model: the model handed to the defender (the backdoored one).
    :param x: a few clean images to compare the two models' answers on.
    :param nb_classes: the number of classes.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from labkit.nc_optimize import outlier_rule

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


def mitigation(mitigated: Any, defence: Any, poisoned_model: Any, x: np.ndarray, *,
               strict: bool | None = None) -> bool:
    """Check one mitigation: applied to a fresh copy of the detected defence, which itself stays untouched.

    :param mitigated: the defence the pair mitigated.
    :param defence: the defence after detection (must remain unmitigated, so every mitigation starts equal).
    :param poisoned_model: the backdoored model.
    :param x: images to compare answers on (triggered ones show a mitigation best).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    hint = None
    if mitigated is defence:
        hint = ("you mitigated the detected defence itself: call mitigate on defence.copy(), so the next "
                "mitigation does not start from an already-mitigated model")
    elif not _same_answers(defence, poisoned_model, x):
        hint = ("the detected defence was already mitigated before this copy was made: take every copy from the "
                "defence right after detection")
    elif list(getattr(defence, "flagged_classes", [None])) and _same_answers(mitigated, poisoned_model, x):
        hint = "the model answers as before: call mitigate(x_val, y_val, mitigation_types=[name]) on the copy"
    return _verdict("mitigation", hint, strict)


def chosen_mitigation(choice: Any, table: Any, *, max_clean_drop: float = 0.05, strict: bool | None = None) -> bool:
    """Check the mitigation the pair would deploy: the lowest attack success among those that keep clean accuracy.

    :param choice: the name of the chosen mitigation (a row of ``table``), or None when no mitigation keeps the
        clean accuracy within ``max_clean_drop``.
    :param table: a DataFrame with ``clean_accuracy`` and ``attack_success_rate`` columns, one row per
        mitigation, plus the backdoored model's row (its first row) as the reference.
    :param max_clean_drop: the largest loss of clean accuracy (against the first row) that is acceptable.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    reference = table.iloc[0]
    ok = table.iloc[1:][table["clean_accuracy"].iloc[1:] >= reference["clean_accuracy"] - max_clean_drop]
    if choice is None and ok.empty:
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
    return _verdict("chosen mitigation", hint, strict)


def membership_attack(attack: Any, target: Any, *, strict: bool | None = None) -> bool:
    """Check a black-box membership attack: ART's class, aimed at the target, on its predictions, and trained.

    :param attack: the pair's ``MembershipInferenceBlackBox``, after ``fit``.
    :param target: the model under attack.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    hint = None
    if type(attack).__name__ != "MembershipInferenceBlackBox":
        hint = f"use ART's MembershipInferenceBlackBox (got {type(attack).__name__})"
    elif getattr(attack, "estimator", None) is not target:
        hint = "the attack must be built on the model under attack (the target), not on a shadow model"
    elif getattr(attack, "input_type", None) != "prediction":
        hint = "the attacker sees the target's answers: use input_type='prediction'"
    elif getattr(attack, "attack_model_type", None) == "nn":
        hint = "attack_model_type='nn' needs PyTorch: use 'gb' or 'rf' (the parameter ATTACK_MODEL)"
    else:
        try:
            check_is_fitted(attack.attack_model)
        except (NotFittedError, TypeError, AttributeError):
            hint = "the attack model is not trained yet: call attack.fit(...) with the shadow models' answers"
    return _verdict("membership attack", hint, strict)
