"""The tournament's scoring, one copy for the pair's dry run (notebook 10) and the teacher's ``labkit tournament``.

Blue score: clean accuracy, then accuracy under FGSM, PGD with random restarts and ART's Square attack (a
gradient-free random search, which a model that only masks its gradients does not stop), all at the class eps.
The robust accuracy is the per-image worst case: an image counts only when the model is right on it clean and
under every attack of the suite (Square runs on the images FGSM and PGD left standing, which is all the worst
case needs). Red score: an attack file's success rate against a model is the share of the
challenge images the model classifies correctly when clean that the file's version makes it misclassify.
Every attack is seeded (``labkit.set_seed``), so a rerun gives the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Suite", "as_classifier", "blue_scores", "success_rate", "saturated_share", "BLUE_COLUMNS", "SATURATED"]

BLUE_COLUMNS = ("clean_accuracy", "fgsm_accuracy", "pgd_accuracy", "square_extra", "robust_accuracy")
SATURATED = 0.5
"""Share of images with saturated outputs from which a model is flagged (its robust accuracy may be overstated)."""


@dataclass(frozen=True)
class Suite:
    """The standard attack suite's settings (the eps is the challenge's).

    :param pgd_steps: PGD iterations, step 2.5 eps / steps (Madry's rule, as notebook 01).
    :param restarts: PGD's random starts; an image counts as broken if any start breaks it.
    :param square_iter: iterations of the Square attack (about one model query per image each). Fewer than
        ~300 leave it too weak on 16x16 digits: a model that only masks its gradients kept twice its true
        robust accuracy at 100 iterations in the tournament's test model.
    :param batch_size: images per forward pass.
    """

    pgd_steps: int = 20
    restarts: int = 2
    square_iter: int = 300
    batch_size: int = 512

    @classmethod
    def fast(cls) -> "Suite":
        """The smoke setting (``LABKIT_FAST=1``): fewer PGD steps and starts; Square as strong as in class."""
        return cls(pgd_steps=10, restarts=1, square_iter=300)

    def as_dict(self) -> dict[str, int]:
        """Return the settings as a plain dict (for the leaderboard and the JSON results)."""
        return asdict(self)


def as_classifier(model: Any, x: np.ndarray) -> Any:
    """Return a loaded Keras model as the lab's ART classifier, after checking it outputs class probabilities.

    :param model: the Keras model (loaded with ``compile=False``).
    :param x: a few images to check its output on.
    :raises ValueError: the output is not one probability per class (no softmax at the end).
    """
    import keras

    from labkit.models import wrap_model

    probs = np.asarray(model.predict(x[:32], verbose=0))
    if probs.ndim != 2 or not np.isfinite(probs).all() or probs.min() < 0 or \
            not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("its outputs are not class probabilities: end the model with a softmax, as "
                         "labkit.build_model does")
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy())
    return wrap_model(model)


def _attacks(classifier: Any, eps: float, suite: Suite) -> dict[str, Any]:
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent, SquareAttack

    return {
        "fgsm": FastGradientMethod(classifier, eps=eps, batch_size=suite.batch_size),
        "pgd": ProjectedGradientDescent(classifier, norm=np.inf, eps=eps, eps_step=2.5 * eps / suite.pgd_steps,
                                        max_iter=suite.pgd_steps, num_random_init=suite.restarts,
                                        batch_size=suite.batch_size, verbose=False),
        "square": SquareAttack(classifier, norm=np.inf, eps=eps, max_iter=suite.square_iter, nb_restarts=1,
                               batch_size=suite.batch_size, verbose=False),
    }


def blue_scores(classifier: Any, x: np.ndarray, y: np.ndarray, eps: float, *, suite: Suite = Suite(),
                seed: int = 0) -> dict[str, float]:
    """Return a model's clean accuracy, its accuracy under FGSM and under PGD, what Square adds, and its robust
    accuracy (the per-image worst case over the suite).

    The Square attack runs only on the images FGSM and PGD left correctly classified: the worst case needs
    nothing more, and it is the slowest attack of the suite. ``square_extra`` is the share of all images it
    broke there: well above 0, the model's gradients mislead FGSM and PGD (gradient masking).
    Used in 10, Step 6 (``dry_run``) and by the teacher's ``labkit tournament``.

    :param classifier: the ART classifier.
    :param x: the test images (the teacher's held-back split; the challenge images in a dry run).
    :param y: their integer labels.
    :param eps: the class budget, L-infinity.
    :param suite: the attacks' settings.
    :param seed: seed of every attack's random choices.
    """
    from labkit.seed import set_seed

    labels = np.asarray(y, dtype=np.int64)
    onehot = np.eye(classifier.nb_classes, dtype=np.float32)[labels]
    probabilities = classifier.predict(x, batch_size=suite.batch_size)
    robust = probabilities.argmax(axis=1) == labels
    scores = {"clean_accuracy": float(robust.mean()), "saturated": saturated_share(probabilities)}
    attacks = _attacks(classifier, eps, suite)
    for name in ("fgsm", "pgd"):
        set_seed(seed)
        x_adv = np.clip(attacks[name].generate(x, y=onehot), x - eps, x + eps)
        right = classifier.predict(x_adv, batch_size=suite.batch_size).argmax(axis=1) == labels
        scores[f"{name}_accuracy"] = float(right.mean())
        robust &= right
    left = np.flatnonzero(robust)
    broken = 0
    if len(left):
        set_seed(seed)
        x_adv = np.clip(attacks["square"].generate(x[left], y=onehot[left]), x[left] - eps, x[left] + eps)
        right = classifier.predict(x_adv, batch_size=suite.batch_size).argmax(axis=1) == labels[left]
        broken = int((~right).sum())
        robust[left[~right]] = False
    scores["square_extra"] = broken / len(x)
    scores["robust_accuracy"] = float(robust.mean())
    return scores


def saturated_share(probabilities: np.ndarray) -> float:
    """Return the share of images whose runner-up probability is exactly 0 (the softmax saturated in float32).

    A softmax gives that only when the top logit leads by ~100 or more: a model trained as the lab's never does
    (0 of 150 held-back images for the tournament test's baseline, FGSM- and Madry-trained models), a model whose
    logits are multiplied by a huge constant nearly always. There the Square attack, which reads probabilities,
    sees no signal either, so the model's robust accuracy may be overstated: the leaderboard says so.

    :param probabilities: the model's outputs, (n, classes).
    """
    runner_up = np.sort(np.asarray(probabilities), axis=1)[:, -2]
    return float(np.mean(runner_up == 0.0))


def success_rate(classifier: Any, x: np.ndarray, y: np.ndarray, x_adv: np.ndarray,
                 batch_size: int = 256) -> tuple[float, int]:
    """Return an attack file's success rate against a model and how many images it was measured on.

    The rate is the share of the images the model classifies correctly when clean that ``x_adv`` makes it
    misclassify (NaN when the model gets none right). Used in 10, Step 6 and by ``labkit tournament``.

    :param classifier: the ART classifier.
    :param x: the challenge images.
    :param y: their integer labels.
    :param x_adv: the attack file's images, checked against the budget already.
    :param batch_size: images per forward pass.
    """
    labels = np.asarray(y, dtype=np.int64)
    correct = classifier.predict(x, batch_size=batch_size).argmax(axis=1) == labels
    if not correct.any():
        return float("nan"), 0
    fooled = classifier.predict(x_adv[correct], batch_size=batch_size).argmax(axis=1) != labels[correct]
    return float(fooled.mean()), int(correct.sum())
