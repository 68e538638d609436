"""Data sets for the lab: one loader, one small dataclass.

``digits`` (scikit-learn's bundled 8x8 handwritten digits, upsampled to 16x16) is embedded and is the
default everywhere: it needs no network. ``mnist``, ``fashion_mnist`` and ``cifar10`` come from a local
``.npz`` in Keras's layout (``path=`` or ``<data dir>/<name>.npz``), else from Keras's loader, which
downloads once and caches under ``~/.keras/datasets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from labkit.paths import data_dir

__all__ = ["Dataset", "DatasetUnavailableError", "DATASETS", "load_dataset", "check_images", "check_labels"]

DIGITS_SIZE = 16
"""Side of the default images: the 8x8 digits are upsampled (bilinear) to 16x16, where a 3x3 trigger is
small against the digit and Neural Cleanse separates a backdoored class from clean ones reliably."""


class DatasetUnavailableError(RuntimeError):
    """A data set could not be loaded: no local file and no download possible."""


@dataclass
class Dataset:
    """A train/test split of images (float32, NHWC, in [0, 1]) with integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one image, (height, width, channels)."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def clip_values(self) -> tuple[float, float]:
        """The valid pixel range, (0.0, 1.0): what ART's estimators take as ``clip_values``."""
        return (0.0, 1.0)

    @property
    def nb_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: {len(self.x_train)} train / {len(self.x_test)} test images of "
            f"{'x'.join(map(str, self.input_shape))}, {self.nb_classes} classes)"
        )


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., None]
    x = tf.image.resize(x, (DIGITS_SIZE, DIGITS_SIZE), method="bilinear").numpy()
    return np.clip(x, 0.0, 1.0).astype(np.float32), bunch.target.astype(np.int64)


def _keras_loader(name: str) -> Callable[[], tuple]:
    def load() -> tuple:
        import keras

        return getattr(keras.datasets, name).load_data()

    return load


_CLASS_NAMES = {
    "digits": [str(i) for i in range(10)],
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
DATASETS: tuple[str, ...] = tuple(_CLASS_NAMES)
_KERAS_LOADERS = {name: _keras_loader(name) for name in DATASETS if name != "digits"}


def _read_npz(path: Path) -> tuple:
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable .npz file: save one with numpy.savez(path, x_train=..., ...)")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
            if missing:
                raise ValueError(
                    f"{path} lacks {sorted(missing)}: a Keras-layout .npz holds x_train, y_train, x_test, y_test"
                )
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable .npz file ({err})") from err


def _to_images(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    x = x.astype(np.float32)
    if x.max(initial=0.0) > 1.0:
        x = x / 255.0
    return np.clip(x, 0.0, 1.0)


def _subsample(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n is None or n >= len(x):
        return x, y
    from sklearn.model_selection import train_test_split

    x_keep, _, y_keep, _ = train_test_split(x, y, train_size=n, stratify=y, random_state=seed)
    return x_keep, y_keep


def _check_size(label: str, n: int | None) -> None:
    if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 10):
        raise ValueError(f"{label} must be an integer >= 10 (one image per class at least), or None for all; got {n!r}")


def load_dataset(
    name: str = "digits",
    *,
    seed: int = 0,
    path: str | Path | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
) -> Dataset:
    """Load a data set as float32 NHWC images in [0, 1] with integer labels.

    The split is stratified and deterministic for a given ``seed``; ``n_train`` / ``n_test`` take a
    stratified subset (the smoke setting uses them).

    :param name: one of ``DATASETS``: ``"digits"`` (embedded, the default), ``"mnist"``, ``"fashion_mnist"``,
        ``"cifar10"``.
    :param seed: seed of the split and the subsets.
    :param path: a local ``.npz`` in Keras's layout (x_train, y_train, x_test, y_test), for offline classrooms.
    :param n_train: keep this many training images (stratified); None keeps all.
    :param n_test: keep this many test images (stratified); None keeps all.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")
    _check_size("n_train", n_train)
    _check_size("n_test", n_test)
    if name == "digits":
        if path is not None:
            raise ValueError("'digits' is embedded in scikit-learn and takes no path=; drop path= or pick another name")
        from sklearn.model_selection import train_test_split

        x, y = _digits()
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, stratify=y, random_state=seed)
    else:
        (x_train, y_train), (x_test, y_test) = _load_external(name, path)
        x_train, x_test = _to_images(x_train), _to_images(x_test)
        y_train, y_test = np.asarray(y_train).reshape(-1), np.asarray(y_test).reshape(-1)
    x_train, y_train = _subsample(x_train, y_train.astype(np.int64), n_train, seed)
    x_test, y_test = _subsample(x_test, y_test.astype(np.int64), n_test, seed)
    return Dataset(name, x_train, y_train, x_test, y_test, list(_CLASS_NAMES[name]))


def _load_external(name: str, path: str | Path | None) -> tuple:
    local = Path(path) if path is not None else data_dir() / f"{name}.npz"
    if path is not None and not local.exists():
        raise FileNotFoundError(f"no file at {local}: pass path= to a Keras-layout .npz of {name!r}")
    if local.exists():
        return _read_npz(local)
    try:
        return _KERAS_LOADERS[name]()
    except Exception as err:  # no network, a proxy, a broken cache: all end here
        raise DatasetUnavailableError(
            f"could not download {name!r} ({type(err).__name__}: {err}). This machine may be offline. "
            f"Place {name}.npz (Keras layout: arrays x_train, y_train, x_test, y_test) at {local}, "
            f"or pass path= to it, or use the embedded 'digits' data set."
        ) from err


def check_images(x: np.ndarray, input_shape: tuple[int, ...], *, what: str = "x") -> np.ndarray:
    """Check that ``x`` is a batch of images of ``input_shape`` in [0, 1]; return it as float32.

    :param x: the batch, shape (n, *input_shape).
    :param input_shape: the model's input shape, (height, width, channels).
    :param what: the name used in the error message.
    """
    x = np.asarray(x)
    if x.ndim != len(input_shape) + 1 or tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"{what} has shape {x.shape}; expected a batch of images of shape (n, {', '.join(map(str, input_shape))}). "
            f"Add a batch axis with x[None] for one image, or a channel axis with x[..., None]."
        )
    if x.size and (np.nanmin(x) < 0.0 or np.nanmax(x) > 1.0):
        raise ValueError(f"{what} has values outside [0, 1] (min {x.min():.3g}, max {x.max():.3g}); divide by 255?")
    return x.astype(np.float32, copy=False)


def check_labels(y: np.ndarray, n: int, *, what: str = "y", nb_classes: int | None = None,
                 images: str = "x") -> np.ndarray:
    """Return ``y`` (integer labels of shape (n,), or one-hot) as int64 class indices of shape (n,).

    :param y: the labels.
    :param n: the number of images they label.
    :param what: the labels' name in error messages.
    :param nb_classes: when given, every label must lie in [0, nb_classes - 1].
    :param images: the images' name in error messages.
    """
    y = np.asarray(y)
    labels = y.argmax(axis=1) if y.ndim == 2 else y.reshape(-1)
    if len(labels) != n:
        raise ValueError(f"{images} has {n} images but {what} has {len(labels)} labels")
    if nb_classes is not None and (labels.min(initial=0) < 0 or labels.max(initial=0) >= nb_classes):
        raise ValueError(f"labels must be integers in [0, {nb_classes - 1}], "
                         f"got range [{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)
