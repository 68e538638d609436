"""Self-checks of notebook 08: the poisons' distance to their bases and the victim's clean-label training set."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from labkit.check._base import Verdict, _verdict

__all__ = ["poison_linf", "clean_label_set"]


def _per_image(a: np.ndarray) -> np.ndarray:
    """Flatten every image of ``a`` to one row."""
    return np.asarray(a, dtype=np.float64).reshape(len(a), -1)


def _matches(value: np.ndarray, expected: np.ndarray) -> bool:
    return value.shape == expected.shape and bool(np.allclose(value, expected, rtol=1e-4, atol=1e-5))


def poison_linf(linf: Any, poisons: np.ndarray, bases: np.ndarray, *, x_target: np.ndarray | None = None,
                strict: bool | None = None) -> Verdict:
    """Check each poison's L-inf distance to its base: the largest change of any one pixel, one number per poison.

    :param linf: the pair's distances, one per poison.
    :param poisons: the poisons, NHWC in [0, 1].
    :param bases: the base image each poison was crafted from, in the same order.
    :param x_target: the target image (1HWC), to recognise a distance measured to it (optional).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from labkit.clean_label import perturbation_linf

    change = _per_image(poisons) - _per_image(bases)
    expected = perturbation_linf(poisons, bases).astype(np.float64)
    value = np.asarray(linf)
    value = value.astype(np.float64) if value.size and value.dtype.kind in "iuf" else None
    hint = None
    if value is None:
        hint = "linf should be a NumPy array of numbers, one per poison"
    elif value.ndim == 0 or value.size == 1 and len(expected) > 1:
        hint = "give one number per poison (reduce over the pixels of each poison only, e.g. axis=1 after reshaping)"
        if np.isclose(float(value.reshape(-1)[0]), expected.max()):
            hint = "this is the largest change over all the poisons together: " + hint
    elif value.shape != expected.shape and value.size == expected.size:
        hint = f"linf should be a flat array of {len(expected)} numbers, shape ({len(expected)},)"
    elif value.shape != expected.shape:
        hint = (f"one number per poison: expected {len(expected)} values, got shape {value.shape}; reduce over the "
                "pixels of each poison, not over the poisons")
    elif not _matches(value, expected):
        hint = "L-inf is the largest absolute change of any single pixel between a poison and its own base image"
        target = None if x_target is None else np.asarray(x_target, dtype=np.float64).reshape(-1)
        target = target if target is not None and target.size == change.shape[1] else None
        if _matches(value, np.linalg.norm(change, axis=1)):
            hint = ("this is the L2 norm, the length of the whole change; L-inf is the largest change of any "
                    "single pixel, the quantity EPS bounds")
        elif target is not None and _matches(value, np.abs(_per_image(poisons) - target).max(axis=1)):
            hint = ("measure the distance to the base image each poison started from, not to the target: the bound "
                    "keeps a poison looking like its base, whose label it carries")
        elif _matches(value, np.abs(change).mean(axis=1)):
            hint = "this is the mean absolute change; L-inf takes the largest one"
        elif _matches(value, change.max(axis=1)) or _matches(value, -change.min(axis=1)):
            hint = "take the absolute change: a pixel made darker counts as much as one made brighter"
    return _verdict("poison L-inf distance", hint, strict)


def _pairs(x: np.ndarray, y: np.ndarray) -> Counter:
    """The multiset of (image bytes, label) pairs: a training set with its order forgotten."""
    return Counter(zip((row.tobytes() for row in x), y.tolist()))


def clean_label_set(x_poisoned: Any, y_poisoned: Any, x_train: np.ndarray, y_train: np.ndarray,
                    poisons: np.ndarray, base_labels: np.ndarray, *, target_class: int | None = None,
                    bases: np.ndarray | None = None, strict: bool | None = None) -> Verdict:
    """Check the victim's poisoned training set: every clean image and every poison once, the poisons under their
    bases' true labels (a clean label), the images in any order but each with its own label.

    :param x_poisoned: the pair's training images (the clean ones and the poisons).
    :param y_poisoned: their integer labels.
    :param x_train: the clean training images, with integer labels ``y_train``.
    :param poisons: the poisons, NHWC in [0, 1].
    :param base_labels: the true label of each poison's base image.
    :param target_class: the target's class, to recognise poisons labelled with it (a dirty label; optional).
    :param bases: the unperturbed base images, to recognise them used in place of the poisons (optional).
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    x_train = np.asarray(x_train, dtype=np.float32)
    y_train, base_labels = np.asarray(y_train).reshape(-1), np.asarray(base_labels).reshape(-1)
    poisons = np.asarray(poisons, dtype=np.float32)
    xp, yp = np.asarray(x_poisoned), np.asarray(y_poisoned)
    n, k = len(x_train), len(poisons)
    hint = None
    if xp.dtype.kind not in "uif" or xp.ndim != x_train.ndim or xp.shape[1:] != x_train.shape[1:]:
        hint = f"x_poisoned should be images shaped like data.x_train, (n, {', '.join(map(str, x_train.shape[1:]))})"
    elif yp.ndim == 2 and yp.shape[1] > 1:
        hint = "y_poisoned holds integer class labels like data.y_train, not one-hot rows"
    elif len(yp.reshape(-1)) != len(xp):
        hint = f"one label per image: x_poisoned has {len(xp)} images, y_poisoned {yp.size} labels"
    if hint is not None:
        return _verdict("clean-label training set", hint, strict)
    xp, yp = xp.astype(np.float32), yp.reshape(-1)
    if yp.dtype.kind == "f" and np.all(yp == np.round(yp)):
        yp = yp.astype(np.int64)
    expected_images = Counter(row.tobytes() for row in np.concatenate([x_train, poisons]))
    images = Counter(row.tobytes() for row in xp)
    poison_keys = [row.tobytes() for row in poisons]
    if images != expected_images:
        found = sum(images[key] > 0 for key in poison_keys)
        clean = Counter(row.tobytes() for row in x_train)
        clean_left = clean - images
        if bases is not None and images == clean + Counter(row.tobytes() for row in np.asarray(bases, np.float32)):
            hint = ("these are the unperturbed base images (the control's data): add the crafted poisons, what "
                    "craft_poisons returned")
        elif found == 0 and len(xp) == n:
            hint = "the poisons are missing: the victim's training set is the clean one plus the poisons"
        elif sum(clean_left.values()) >= n // 2:
            hint = ("the victim fine-tunes on its whole clean training set plus the poisons, not on the poisons "
                    "(or a part of the data) alone")
        elif found < k:
            hint = "every poison must be in the set once, unchanged (add poisons as craft_poisons returned them)"
        else:
            hint = "x_poisoned should hold each clean training image and each poison exactly once"
    elif _pairs(xp, yp) != _pairs(x_train, y_train) + _pairs(poisons, base_labels):
        at = {}
        for row, label in zip(xp, yp.tolist()):
            at.setdefault(row.tobytes(), []).append(label)
        given = np.array([at[key][0] for key in poison_keys])
        if target_class is not None and np.all(given == int(target_class)):
            hint = ("the poisons carry the target's class: that is a dirty label, which anyone checking the labels "
                    "would catch; a clean-label poison keeps the true label of the base image it was made from")
        elif Counter(yp.tolist()) == Counter(np.concatenate([y_train, base_labels]).tolist()):
            hint = "the labels do not line up with the images: put the labels in the same order as the images"
        elif not np.array_equal(given, base_labels):
            hint = "each poison keeps the true label of its base image: that is what makes the label clean"
        else:
            hint = "the clean training images keep their own labels (data.y_train)"
    return _verdict("clean-label training set", hint, strict)
