"""Backdoor poisoning: a trigger, poisoned training data, the attack success rate and a poison-fraction sweep.

The attack is ART's ``PoisoningAttackBackdoor`` (Gu et al., 2017): a visible trigger is stamped on a share
of the training images of the source class(es) and those images are relabelled to the target class. A
model trained on them behaves normally on clean images and answers the target whenever it sees the
trigger. labkit adds the plumbing around ART's call: the trigger (a small square patch, or ART's
``add_pattern_bd``), the choice of images to poison, the attack success rate (ASR), the sweep and plots (the
plots live in ``labkit._poisoning_plots`` and are served from here, where notebook 03 calls them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from labkit._poisoning_plots import plot_poisoned_samples, plot_sweep, two_row_grid

__all__ = [
    "Trigger", "PoisonedData", "poison_dataset", "predicted_labels", "attack_success_rate", "poison_fraction_sweep",
    "backdoor_scores", "check_class", "check_poison_fraction", "clean_subset", "two_row_grid",
    "plot_poisoned_samples", "plot_sweep",
]

_CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")
_KINDS = ("square", "pattern")


def check_class(label: Any, nb_classes: int, *, what: str = "target_class") -> int:
    """Return ``label`` as an int after checking that it is a class index in [0, nb_classes - 1].

    :param label: the class index to check.
    :param nb_classes: the number of classes of the model or data set.
    :param what: the name used in the error message.
    """
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) < nb_classes:
        raise ValueError(f"{what} must be a class index in [0, {nb_classes - 1}], got {label!r}")
    return int(label)


def check_poison_fraction(poison_fraction: Any) -> float:
    """Return ``poison_fraction`` as a float after checking that it lies strictly between 0 and 1.

    :param poison_fraction: the share of the source-class training images to poison, e.g. 0.1 for 10%.
    """
    if isinstance(poison_fraction, bool) or not isinstance(poison_fraction, (int, float, np.floating, np.integer)) \
            or not 0.0 < float(poison_fraction) < 1.0:
        raise ValueError(f"poison_fraction must be a number strictly between 0 and 1 (0.1 poisons 10% of the "
                         f"source-class images), got {poison_fraction!r}")
    return float(poison_fraction)


@dataclass(frozen=True)
class Trigger:
    """A visible backdoor trigger; calling it stamps the trigger on a batch of images (NHWC) and returns a copy.

    ``kind="square"`` pastes a ``size`` x ``size`` square of value ``value`` in a corner; ``kind="pattern"``
    is ART's ``add_pattern_bd`` (a 4-pixel checkerboard two pixels from the bottom-right edge). A Trigger is
    the ``perturbation`` that ART's ``PoisoningAttackBackdoor`` takes.

    :param kind: ``"square"`` or ``"pattern"``.
    :param size: side of the square in pixels (square only).
    :param value: pixel value of the trigger, in [0, 1].
    :param corner: ``"bottom-right"``, ``"bottom-left"``, ``"top-right"`` or ``"top-left"`` (square only).
    """

    kind: str = "square"
    size: int = 3
    value: float = 1.0
    corner: str = "bottom-right"

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"trigger kind must be one of {_KINDS}, got {self.kind!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise ValueError(f"trigger size must be a positive number of pixels, got {self.size!r}")
        if not 0.0 <= float(self.value) <= 1.0:
            raise ValueError(f"trigger value must be a pixel value in [0, 1], got {self.value!r}")
        if self.corner not in _CORNERS:
            raise ValueError(f"trigger corner must be one of {_CORNERS}, got {self.corner!r}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return a copy of the batch ``x`` (n, H, W, C) with the trigger stamped on every image."""
        from labkit.data import check_images

        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"a trigger is stamped on a batch of images (n, height, width, channels); got {x.shape}")
        x = check_images(x, x.shape[1:], what="the images to stamp")  # value is a [0, 1] pixel: not onto 0-255
        if self.kind == "pattern":
            from art.attacks.poisoning.perturbations import add_pattern_bd

            return add_pattern_bd(x, distance=2, pixel_value=float(self.value))
        height, width = x.shape[1:3]
        if self.size > min(height, width):
            raise ValueError(f"a {self.size}x{self.size} trigger does not fit in {height}x{width} images")
        rows, cols = self._slices(height, width)
        stamped = np.array(x, copy=True)
        stamped[:, rows, cols, :] = self.value
        return stamped

    def _slices(self, height: int, width: int) -> tuple[slice, slice]:
        rows = slice(height - self.size, height) if self.corner.startswith("bottom") else slice(0, self.size)
        cols = slice(width - self.size, width) if self.corner.endswith("right") else slice(0, self.size)
        return rows, cols

    def mask(self, input_shape: Sequence[int]) -> np.ndarray:
        """Return the trigger's true mask, shape (H, W, 1): 1 where the trigger overwrites pixels, else 0.

        Its sum is the L1 norm Neural Cleanse should recover for the target class (9 for a 3x3 square).

        :param input_shape: the shape of one image, (height, width, channels).
        """
        height, width = int(input_shape[0]), int(input_shape[1])
        blank = np.zeros((1, height, width, 1), dtype=np.float32)
        probe = Trigger(self.kind, self.size, 1.0, self.corner)(blank)
        return probe[0]

    @property
    def spec(self) -> str:
        """A short text form, e.g. ``"square:size=3,value=1.0,corner=bottom-right"`` (recorded in the metrics).

        ART's pattern has no size or corner, so its spec names only what it uses: ``"pattern:value=1.0"``.
        """
        if self.kind == "pattern":
            return f"pattern:value={float(self.value)}"
        return f"{self.kind}:size={self.size},value={float(self.value)},corner={self.corner}"

    @classmethod
    def from_spec(cls, spec: str) -> "Trigger":
        """Rebuild a Trigger from its ``spec`` text.

        :param spec: the text that ``Trigger.spec`` gave, e.g. ``"square:size=3,value=1.0,corner=bottom-right"``.
        """
        kind, _, rest = str(spec).partition(":")
        fields = dict(item.split("=", 1) for item in rest.split(",") if "=" in item)
        try:
            return cls(kind, int(fields.get("size", 3)), float(fields.get("value", 1.0)),
                       fields.get("corner", "bottom-right"))
        except (TypeError, ValueError) as err:
            raise ValueError(f"not a trigger spec: {spec!r} ({err})") from err


@dataclass
class PoisonedData:
    """A training set with some images poisoned: the images, the labels, and which indices were poisoned."""

    x: np.ndarray
    y: np.ndarray
    poison_indices: np.ndarray
    original_labels: np.ndarray

    @property
    def n_poison(self) -> int:
        """The number of poisoned images."""
        return int(len(self.poison_indices))


def poison_dataset(x: np.ndarray, y: np.ndarray, attack: Any, *, target_class: int, poison_fraction: float,
                   source_classes: Sequence[int] | None = None, nb_classes: int = 10, seed: int = 0) -> PoisonedData:
    """Poison a share of the source-class training images with ART's backdoor attack; return a poisoned copy.

    ``poison_fraction`` of the images whose label is a source class (all classes but the target by default)
    are chosen at random, passed through ``attack.poison`` (which stamps the trigger and gives them the
    target label), and put back in place of the originals. ``x`` and ``y`` are not changed.

    :param x: training images, (n, H, W, C) in [0, 1].
    :param y: integer labels, shape (n,).
    :param attack: an ART ``PoisoningAttackBackdoor`` (its perturbation is the trigger).
    :param target_class: the class the trigger should lead to.
    :param poison_fraction: share of the source-class images to poison, strictly between 0 and 1.
    :param source_classes: classes whose images are poisoned; None means every class but the target.
    :param nb_classes: number of classes.
    :param seed: seed of the random choice of images.
    """
    from labkit.data import check_images, check_labels

    x = check_images(x, np.shape(x)[1:])
    y = check_labels(y, len(x), nb_classes=nb_classes)
    target = check_class(target_class, nb_classes)
    fraction = check_poison_fraction(poison_fraction)
    if source_classes is None:
        sources = [c for c in range(nb_classes) if c != target]
    else:
        sources = [check_class(c, nb_classes, what="source class") for c in source_classes]
        if not sources or target in sources:
            raise ValueError(f"source_classes must be a non-empty list of classes other than the target "
                             f"{target}, got {list(source_classes)!r}")
    candidates = np.flatnonzero(np.isin(y, sources))
    n_poison = max(1, int(round(fraction * len(candidates))))
    if len(candidates) == 0:
        raise ValueError(f"no training image belongs to the source classes {sources}")
    indices = np.sort(np.random.default_rng(seed).choice(candidates, size=n_poison, replace=False))
    target_onehot = np.eye(nb_classes, dtype=np.float32)[target]
    x_poison, y_poison = attack.poison(x[indices], y=target_onehot, broadcast=True)
    if np.shape(x_poison) != x[indices].shape:
        raise ValueError(f"the attack's trigger function returned shape {np.shape(x_poison)}; it must return the "
                         f"batch it was given, shape {x[indices].shape}, with the trigger stamped on every image")
    x_out, y_out = x.copy(), y.copy()
    x_out[indices] = np.clip(x_poison, 0.0, 1.0)
    y_out[indices] = np.asarray(y_poison).argmax(axis=1)
    return PoisonedData(x_out, y_out, indices, y[indices].copy())


def clean_subset(x: np.ndarray, y: np.ndarray, fraction: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return a stratified random share of clean images and their labels: the data a defender trusts.

    Neural Cleanse's paper reverses triggers and unlearns with a small set of clean data (10% of the
    original training data); labkit takes it from the clean (unpoisoned) training images.

    :param x: clean images.
    :param y: their integer labels.
    :param fraction: the share to keep, strictly between 0 and 1.
    :param seed: seed of the random choice.
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction!r}")
    x_keep, _, y_keep, _ = train_test_split(np.asarray(x), np.asarray(y), train_size=float(fraction),
                                            stratify=np.asarray(y), random_state=seed)
    return x_keep, y_keep


def predicted_labels(classifier: Any, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Return the predicted class of each image, or -1 where the classifier abstains (an all-zero output row).

    Neural Cleanse's filtering abstains by returning a row of zeros; counting such a row as class 0
    would be wrong, so abstentions get the label -1 here.

    :param classifier: an ART classifier (or labkit's Neural Cleanse estimator).
    :param x: images.
    :param batch_size: images per forward pass.
    """
    scores = np.asarray(classifier.predict(np.asarray(x, dtype=np.float32), batch_size=batch_size))
    labels = scores.argmax(axis=1)
    labels[~np.any(scores != 0, axis=1)] = -1
    return labels


def attack_success_rate(classifier: Any, x: np.ndarray, y: np.ndarray, *, target_class: int,
                        trigger: Any) -> float:
    """Return the attack success rate: the share of triggered images, whose true class is not the target,
    that the classifier assigns to the target.

    :param classifier: an ART classifier.
    :param x: clean test images, (n, H, W, C) in [0, 1].
    :param y: their integer labels, shape (n,).
    :param target_class: the backdoor's target class.
    :param trigger: the function that stamps the trigger (a ``Trigger``).
    """
    from labkit.data import check_images, check_labels

    nb_classes = int(getattr(classifier, "nb_classes", 10))
    target = check_class(target_class, nb_classes)
    x = check_images(x, tuple(getattr(classifier, "input_shape", np.shape(x)[1:])))
    y = check_labels(y, len(x), nb_classes=nb_classes)
    keep = y != target
    if not keep.any():
        raise ValueError("every image belongs to the target class: the attack success rate needs other classes")
    return float(np.mean(predicted_labels(classifier, _stamp(trigger, x[keep])) == target))


def _stamp(trigger: Any, x: np.ndarray) -> np.ndarray:
    """Return ``trigger(x)`` after checking that the trigger gave back one image of ``x``'s shape per image.

    :param trigger: the function that stamps the trigger (a ``Trigger`` or your own function).
    :param x: the images to stamp, (n, H, W, C) in [0, 1].
    """
    from labkit.data import check_images

    stamped = np.asarray(trigger(x))
    expected = f"({len(x)}, {', '.join(map(str, x.shape[1:]))})"
    if stamped.shape != x.shape:
        raise ValueError(f"the trigger function returned shape {stamped.shape}; it must return the batch it was "
                         f"given, shape {expected}, with the trigger stamped on every image")
    return check_images(stamped, x.shape[1:], what="the trigger function's output")


def backdoor_scores(classifier: Any, x: np.ndarray, y: np.ndarray, *, target_class: int,
                    trigger: Any) -> dict[str, float]:
    """Return a model's clean accuracy, attack success rate and abstain rates on clean and triggered images.

    An abstention (Neural Cleanse's filtering) counts as a wrong answer for the clean accuracy and as a
    failed attack for the ASR; the abstain rates say how often it happened.

    :param classifier: an ART classifier (or a Neural Cleanse estimator).
    :param x: clean test images.
    :param y: their integer labels.
    :param target_class: the backdoor's target class.
    :param trigger: the trigger (a ``Trigger``).
    """
    y = np.asarray(y).reshape(-1)
    clean = predicted_labels(classifier, x)
    triggered = predicted_labels(classifier, _stamp(trigger, np.asarray(x)[y != target_class]))
    return {"clean_accuracy": float(np.mean(clean == y)),
            "attack_success_rate": attack_success_rate(classifier, x, y, target_class=target_class, trigger=trigger),
            "clean_abstain_rate": float(np.mean(clean == -1)),
            "triggered_abstain_rate": float(np.mean(triggered == -1))}


def poison_fraction_sweep(data: Any, fractions: Sequence[float], *, target_class: int, trigger: Any,
                          source_classes: Sequence[int] | None = None, epochs: int = 20, seed: int = 0,
                          trained: Mapping[float, Any] | None = None, progress: bool = True) -> Any:
    """Train one poisoned model per poison fraction and return a table of clean accuracy and ASR.

    Used in 03, Step 7. Each model is trained as 03 trains its own (``poison_dataset`` with ``seed``, then
    ``set_seed(seed)`` and ``train_model``), so a model already trained that way can be passed in ``trained``
    instead of training it again.

    :param data: a ``labkit.Dataset``.
    :param fractions: the poison fractions to try, e.g. (0.01, 0.03, 0.05, 0.1).
    :param target_class: the backdoor's target class.
    :param trigger: the trigger (a ``Trigger``).
    :param source_classes: classes whose images are poisoned; None means every class but the target.
    :param epochs: training epochs of each model.
    :param seed: seed of the poisoned images and of the training.
    :param trained: ``{poison_fraction: classifier}`` of models already trained the same way (e.g. 03's Step 4
        model at ``POISON_FRACTION``): used as they are.
    :param progress: draw a progress bar over the fractions.
    """
    import pandas as pd
    from art.attacks.poisoning import PoisoningAttackBackdoor
    from tqdm.auto import tqdm

    from labkit.models import accuracy, train_model
    from labkit.seed import set_seed

    fractions = [check_poison_fraction(f) for f in fractions]
    ready = {check_poison_fraction(f): model for f, model in (trained or {}).items()}
    attack = PoisoningAttackBackdoor(trigger)
    rows = []
    for fraction in tqdm(fractions, desc="poison-fraction sweep", unit="model", disable=not progress):
        poisoned = poison_dataset(data.x_train, data.y_train, attack, target_class=target_class,
                                  poison_fraction=fraction, source_classes=source_classes,
                                  nb_classes=data.nb_classes, seed=seed)
        model = ready.get(fraction)
        if model is None:
            set_seed(seed)
            model = train_model(poisoned.x, poisoned.y, nb_classes=data.nb_classes, epochs=epochs, progress=False)
        rows.append({
            "poison_fraction": fraction,
            "n_poison": poisoned.n_poison,
            "clean_accuracy": accuracy(model, data.x_test, data.y_test),
            "attack_success_rate": attack_success_rate(model, data.x_test, data.y_test, target_class=target_class,
                                                       trigger=trigger),
        })
    return pd.DataFrame(rows)
