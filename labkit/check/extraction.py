"""Self-checks of notebook 06: model extraction (agreement with the victim, the transfer attack)."""

from __future__ import annotations

from typing import Any

import numpy as np

from labkit.check._base import Verdict, _close, _eps_problem, _rate_problem, _verdict
from labkit.models import accuracy
from labkit.poisoning import predicted_labels

__all__ = ["agreement", "transfer_attack"]


def agreement(value: Any, substitute: Any, victim: Any, x: np.ndarray, y_true: np.ndarray | None = None, *,
              strict: bool | None = None) -> Verdict:
    """Check an agreement: the share of images on which the substitute predicts the victim's label.

    :param value: the pair's agreement.
    :param substitute: the thief's model (an ART classifier).
    :param victim: the victim classifier itself (the grader's view: its labels are not counted as queries).
    :param x: the test images.
    :param y_true: their true labels, to recognise an accuracy instead of an agreement (optional).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from labkit.data import check_labels

    hint = _rate_problem(value, "the agreement")
    if hint is None:
        said, victim_said = predicted_labels(substitute, x), predicted_labels(victim, x)
        expected = float(np.mean(said == victim_said))
        if not _close(value, expected):
            hint = ("compare the substitute's predicted labels (argmax of its predict) with the victim's labels "
                    "on the same test images")
            y = None if y_true is None else check_labels(y_true, len(said), what="y_true")
            if y is not None and _close(value, np.mean(said == y)):
                hint = ("this is the substitute's accuracy against the true labels; agreement compares its answers "
                        "with the victim's answers (victim_labels), right or wrong")
            elif y is not None and _close(value, np.mean(victim_said == y)):
                hint = "this is the victim's own accuracy: predict with the substitute and compare with the victim"
            elif _close(value, 1.0 - expected):
                hint = "this is the share of test images on which the two disagree"
    return _verdict("agreement", hint, strict)


def _budget_used(x_adv: np.ndarray, x: np.ndarray) -> float:
    """Estimate the eps that turned ``x`` into ``x_adv``: the largest change of one pixel.

    An eps of 1 or more pushes every pixel it moves to 0 or 1 (the clip of [0, 1] images), so the largest
    change no longer shows it; in that case return 255, the scale such a budget was most likely written in.
    """
    change = np.abs(x_adv - x)
    moved = x_adv[change > 1e-6]
    if moved.size and np.all((moved <= 1e-6) | (moved >= 1.0 - 1e-6)):
        return 255.0
    return float(change.max())


def _same_images(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two FGSM results agree, up to the rare pixel whose gradient sign is numerical noise."""
    return bool(np.mean(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)) > 1e-4) < 0.01)


def _fgsm(model: Any, x: np.ndarray, eps: float, y: np.ndarray | None = None) -> np.ndarray:
    from art.attacks.evasion import FastGradientMethod

    return FastGradientMethod(model, eps=float(eps), batch_size=256).generate(x, y=y)


def _x_adv_problem(x_adv: np.ndarray, victim: Any, substitute: Any, x: np.ndarray, y: np.ndarray,
                   eps: float) -> str | None:
    """Return a hint when ``x_adv`` is not FGSM at ``eps`` crafted on the substitute, else None."""
    if x_adv.shape != x.shape:
        return f"x_adv should hold one adversarial image per test image: shape {x.shape}, got {x_adv.shape}"
    change = float(np.abs(x_adv - x).max())
    if change == 0:
        return "x_adv equals the clean test images: keep what generate returns"
    if x_adv.min() < -1e-6 or x_adv.max() > 1 + 1e-6:
        return "some pixels left [0, 1]: x_adv should come straight from the attack's generate"
    if abs(change - float(eps)) > 1e-4:
        return _eps_problem(_budget_used(x_adv, x), eps) or "build the attack with the lab's budget, the parameter EPS"
    if _same_images(x_adv, _fgsm(victim, x, eps)) or _same_images(x_adv, _fgsm(victim, x, eps, y)):
        return ("these are the victim's own white-box FGSM images, made with its gradients; the thief only has "
                "query access to the victim: craft the images on the stolen model (the substitute)")
    if not (_same_images(x_adv, _fgsm(substitute, x, eps)) or _same_images(x_adv, _fgsm(substitute, x, eps, y))):
        return ("x_adv should be FGSM images crafted on the substitute (the thief's own model) from the test "
                "images, at the lab's EPS")
    return None


def transfer_attack(value: Any, x_adv: np.ndarray, victim: Any, substitute: Any, x: np.ndarray, y: np.ndarray, *,
                    eps: float, strict: bool | None = None) -> Verdict:
    """Check a transfer attack: FGSM images crafted on the substitute, and the victim's accuracy on them.

    The images must be FGSM at ``eps`` made with the substitute's gradients (with or without the true
    labels), not the victim's; the accuracy is the victim's, against the true labels.

    :param value: the pair's accuracy of the victim on ``x_adv``.
    :param x_adv: the pair's adversarial images.
    :param victim: the victim classifier.
    :param substitute: the stolen model the images should be crafted on.
    :param x: the clean test images they came from.
    :param y: their true labels (integers or one-hot).
    :param eps: the lab's budget, in [0, 1].
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from labkit.data import check_labels

    x = np.asarray(x, dtype=np.float32)
    x_adv = np.asarray(x_adv, dtype=np.float32)
    y = check_labels(y, len(x))
    hint = _x_adv_problem(x_adv, victim, substitute, x, y, eps)
    if hint is None:
        hint = _rate_problem(value, "the victim's accuracy")
    if hint is None:
        on_adv = predicted_labels(victim, x_adv)
        expected = float(np.mean(on_adv == y))
        if not _close(value, expected):
            hint = "measure the victim's accuracy on x_adv against the true labels"
            if _close(value, accuracy(substitute, x_adv, y)):
                hint = ("this is the substitute's accuracy on images made to fool it; the question is whether they "
                        "fool the victim too: measure the victim's accuracy")
            elif _close(value, accuracy(victim, x, y)):
                hint = "this is the victim's clean accuracy: measure it on the adversarial images x_adv"
            elif _close(value, np.mean(on_adv == predicted_labels(victim, x))):
                hint = ("this compares the victim's answers on x_adv with its own clean answers; the accuracy "
                        "compares them with the true labels")
            elif _close(value, 1.0 - expected):
                hint = ("this is the share of adversarial images that fool the victim; the accuracy is the share "
                        "it still gets right")
    return _verdict("transfer attack", hint, strict)
