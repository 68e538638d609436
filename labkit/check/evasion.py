"""Self-checks of notebooks 00 to 02: clean accuracy, FGSM and PGD, accuracy under attack, adversarial training."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from labkit.check._base import Verdict, _close, _eps_problem, _rate_problem, _verdict
from labkit.models import accuracy

__all__ = ["clean_accuracy", "predictions", "fgsm_attack", "pgd_attack", "accuracy_under_attack", "adversarial_trainer",
           "madry_trainer"]


def clean_accuracy(value: Any, classifier: Any, x_test: np.ndarray, y_test: np.ndarray, *,
                   x_train: np.ndarray | None = None, y_train: np.ndarray | None = None,
                   strict: bool | None = None) -> Verdict:
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
    if hint is None and not _close(value, accuracy(classifier, x_test, y_test)):
        hint = "compare the predicted class (argmax of classifier.predict) with the true labels of the test images"
        if x_train is not None and y_train is not None and _close(value, accuracy(classifier, x_train, y_train)):
            hint = ("this is the accuracy on the training images the model learnt from; measure it on the test "
                    "images it has never seen")
    return _verdict("clean accuracy", hint, strict)


def predictions(labels: Any, classifier: Any, x: np.ndarray, *, strict: bool | None = None) -> Verdict:
    """Check predicted labels: one integer class per image, the class the classifier gives the highest probability.

    :param labels: the pair's predicted labels.
    :param classifier: the ART classifier.
    :param x: the images they were predicted for.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    labels, n = np.asarray(labels), len(x)
    expected = np.asarray(classifier.predict(np.asarray(x, dtype=np.float32), batch_size=256))
    hint = None
    if labels.shape == expected.shape:
        hint = ("classifier.predict returns one probability per class for every image: the predicted label is the "
                "class with the highest one (argmax over the classes, axis=1)")
    elif labels.shape == (expected.shape[1],):
        hint = "that is one value per class: take the argmax over the classes (axis=1), not over the images"
    elif labels.shape != (n,):
        hint = f"expected one label per image, shape ({n},); got shape {labels.shape}"
    elif not np.issubdtype(labels.dtype, np.integer):
        hint = "labels are whole class numbers (integers), like data.y_test"
    elif not np.array_equal(labels, expected.argmax(axis=1)):
        hint = "predict on the same images, in the same order, and take the most probable class of each"
    return _verdict("predictions", hint, strict)


def fgsm_attack(attack: Any, x_adv: np.ndarray, x: np.ndarray, *, eps: float, strict: bool | None = None) -> Verdict:
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


def _pgd_problem(attack: Any, eps: float) -> str | None:
    """Return a hint when ``attack`` is not a PGD attack with the lab's budget and sensible steps, else None."""
    if not type(attack).__name__.startswith("ProjectedGradientDescent"):
        return f"use ART's ProjectedGradientDescent (got {type(attack).__name__})"
    hint = _eps_problem(getattr(attack, "eps", None), eps)
    if hint is None:
        step, steps = float(getattr(attack, "eps_step", 0)), int(getattr(attack, "max_iter", 0))
        if steps < 2:
            hint = "PGD's strength is its many small steps: max_iter should be more than 1"
        elif not 0 < step < float(eps):
            hint = "eps_step is one small step, a fraction of eps; with eps_step >= eps PGD is just FGSM"
        elif step * steps < float(eps) * (1 - 1e-6):
            hint = "eps_step x max_iter is below eps: the steps cannot even reach the edge of the budget"
    return hint


def _steps_problem(attack: Any, max_iter: int | None, eps_step: float | None) -> str | None:
    """Return a hint when the attack's number of steps or step size is not the exercise's, else None."""
    steps, step = getattr(attack, "max_iter", None), float(getattr(attack, "eps_step", 0))
    if max_iter is not None and steps != max_iter:
        return f"use the lab's number of iterations, max_iter={max_iter} (the parameter), not {steps}"
    if eps_step is not None and not np.isclose(step, float(eps_step), rtol=1e-6):
        hint = "eps_step should follow the exercise's rule, written with the lab's EPS and number of steps"
        if max_iter and np.isclose(step * max_iter, float(getattr(attack, "eps", np.nan)), rtol=1e-6):
            hint = ("eps_step x max_iter is exactly eps: PGD then only reaches the edge of the budget on a straight "
                    "path and cannot move along it; follow the exercise's rule (Madry's factor included)")
        return hint
    return None


def pgd_attack(attack: Any, *, eps: float, max_iter: int | None = None, eps_step: float | None = None,
               strict: bool | None = None) -> Verdict:
    """Check a PGD attack's settings: the class, the budget, the step size and the number of steps.

    :param attack: the pair's ART ``ProjectedGradientDescent``.
    :param eps: the lab's budget, in [0, 1].
    :param max_iter: the lab's number of iterations, or None not to check it.
    :param eps_step: the step size the exercise's rule gives, or None to check only that it is sensible.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    hint = _pgd_problem(attack, eps)
    if hint is None or hint.startswith("eps_step x max_iter"):
        hint = _steps_problem(attack, max_iter, eps_step) or hint
    return _verdict("PGD attack", hint, strict)


def accuracy_under_attack(value: Any, classifier: Any, x_adv: np.ndarray, y: np.ndarray, *,
                          x_clean: np.ndarray | None = None, strict: bool | None = None) -> Verdict:
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
        expected = accuracy(classifier, x_adv, y)
        if not _close(value, expected):
            hint = "compare the model's answers on the adversarial images with their true labels"
            if _close(value, 1.0 - expected):
                hint = ("this is the share of attacks that succeed; the accuracy is the share the model still "
                        "gets right")
            elif x_clean is not None and _close(value, accuracy(classifier, x_clean, y)):
                hint = "this is measured on the clean images: predict on the adversarial ones"
    return _verdict("accuracy under attack", hint, strict)


def adversarial_trainer(trainer: Any, *, eps: float, ratio: float | None = None, baseline: Any = None,
                        strict: bool | None = None) -> Verdict:
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


def madry_trainer(trainer: Any, *, eps: float, nb_epochs: int | None = None, baseline: Any = None,
                  others: Sequence[Any] = (), strict: bool | None = None) -> Verdict:
    """Check a Madry PGD adversarial trainer: a fresh model, the budget in the images' units, sensible PGD steps.

    :param trainer: the pair's ``AdversarialTrainerMadryPGD``.
    :param eps: the lab's budget, in [0, 1].
    :param nb_epochs: the intended number of epochs (optional).
    :param baseline: the baseline classifier, which must not be the one trained (optional).
    :param others: models trained already (e.g. the FGSM-trained one), which must not be trained again.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    hint = None
    if type(trainer).__name__ != "AdversarialTrainerMadryPGD":
        hint = f"build ART's AdversarialTrainerMadryPGD (got {type(trainer).__name__})"
    else:
        model = trainer.get_classifier()
        if baseline is not None and model is baseline:
            hint = ("this trains the baseline itself, which the report compares against: train the fresh model "
                    "madry_model")
        elif any(model is other for other in others):
            hint = "this model was adversarially trained already: train the fresh model madry_model"
        elif getattr(trainer.attack, "estimator", model) is not model:
            hint = "the trainer's PGD attack must attack the model being trained"
        else:
            hint = _pgd_problem(trainer.attack, eps)
        if hint is None and nb_epochs is not None and trainer.nb_epochs != nb_epochs:
            hint = ("ART's defaults (205 epochs, eps 8) are for CIFAR-10 in 0-255 pixels: pass nb_epochs, eps "
                    "and eps_step yourself")
    return _verdict("Madry PGD trainer", hint, strict)
