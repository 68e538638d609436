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
from typing import IO, Any, Callable

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


_KERAS_KEYS = ("x_train", "y_train", "x_test", "y_test")
MAX_NPZ_BYTES = 2**30
"""The largest array (bytes, as its .npy header declares) a data set .npz may hold: 1 GiB; CIFAR-10's training
images take 147 MiB. Checked from the header before anything is allocated."""
MAX_COMPRESSION_RATIO = 100
"""The largest expansion (uncompressed / compressed size) of an .npz member over 16 MiB: real image data
compresses 3-10 fold; a zip bomb over 1000 fold."""
_RATIO_CHECKED_FROM = 16 * 2**20


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def _npy_header(member: IO[bytes], path: Path, key: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Read one .npy member's header without reading its data: (shape, dtype, header length in bytes)."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(member)
        readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f".npy format version {version} is not supported")
        shape, _, dtype = readers[version](member)
    except ValueError as err:
        raise ValueError(f"{path}: {key} is not a readable .npy array ({err}); save the data again with "
                         f"numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)") from err
    return tuple(int(d) for d in shape), dtype, member.tell()


def _check_npz_sizes(path: Path, archive: Any) -> None:
    """Refuse members that would take absurd memory, from the zip directory and the .npy headers alone.

    :param path: the .npz file (for the messages).
    :param archive: the open ``zipfile.ZipFile``.
    """
    for key in _KERAS_KEYS:
        info = archive.getinfo(f"{key}.npy")
        if info.file_size > MAX_NPZ_BYTES + 2**16:
            raise ValueError(f"{path}: {key} unpacks to {_gib(info.file_size)}, over labkit's cap of "
                             f"{_gib(MAX_NPZ_BYTES)} per array: save a subset of the images (x_train[:n]) in the .npz")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_CHECKED_FROM and ratio > MAX_COMPRESSION_RATIO:
            raise ValueError(f"{path}: {key} expands {ratio:.0f}-fold ({_gib(info.compress_size)} to "
                             f"{_gib(info.file_size)}), far more than image data does (at most "
                             f"{MAX_COMPRESSION_RATIO}-fold): refused as a possible zip bomb. Save the real arrays "
                             f"again with numpy.savez_compressed")
        with archive.open(info) as member:
            shape, dtype, header = _npy_header(member, path, key)
        if dtype.hasobject:
            raise ValueError(f"{path}: {key} holds Python objects ({dtype}), which labkit never unpickles; save "
                             f"numeric arrays (uint8 pixels, integer labels)")
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if declared > MAX_NPZ_BYTES:
            raise ValueError(f"{path}: {key} declares shape {shape} of {dtype} ({_gib(declared)}), over labkit's cap "
                             f"of {_gib(MAX_NPZ_BYTES)} per array; the file is corrupt or too big: save a subset")
        if declared != info.file_size - header:
            raise ValueError(f"{path}: {key} declares shape {shape} of {dtype} ({declared} bytes) but holds "
                             f"{info.file_size - header} bytes: the file is truncated or corrupt; save it again")


def _read_npz(path: Path) -> tuple:
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable .npz file: save one with numpy.savez(path, x_train=..., ...)")
    try:
        with zipfile.ZipFile(path) as archive:
            missing = {f"{key}.npy" for key in _KERAS_KEYS} - set(archive.namelist())
            if missing:
                raise ValueError(f"{path} lacks {sorted(m[:-4] for m in missing)}: a Keras-layout .npz holds "
                                 f"x_train, y_train, x_test, y_test")
            _check_npz_sizes(path, archive)
        with np.load(path, allow_pickle=False) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable .npz file ({err})") from err


def _pixel_scale(x: np.ndarray, what: str) -> float:
    """Return 255.0 for 0-255 pixels (integers, or whole numbers up to 255), 1.0 for [0, 1]; refuse the rest."""
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"{what} has dtype {x.dtype}; images are numbers: uint8 pixels in 0-255 or floats in [0, 1]")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(axis=1))
        raise ValueError(f"{what} has NaN or infinite values in {len(bad)} image(s) (first: index {bad[0]}); "
                         f"drop or repair those images before saving the data set")
    low, high = x.min(), x.max()
    if low < 0 or high > 255:
        raise ValueError(f"{what} has values in [{low:.3g}, {high:.3g}]; labkit takes pixels in 0-255 (uint8) or "
                         f"in [0, 1]: rescale the images, e.g. (x - x.min()) / (x.max() - x.min())")
    if np.issubdtype(x.dtype, np.integer):
        return 255.0
    if high <= 1.0:
        return 1.0
    if np.array_equal(x, np.round(x)):
        return 255.0
    raise ValueError(f"{what} holds floats in [{low:.3g}, {high:.3g}]: neither [0, 1] nor whole 0-255 pixel values. "
                     f"Rescale them to [0, 1] (divide by their true maximum) or save uint8 pixels in 0-255")


def _to_images(x: np.ndarray, what: str) -> tuple[np.ndarray, float]:
    """Return ``x`` as float32 NHWC in [0, 1] and the scale it was read on (255.0 or 1.0)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"{what} has shape {x.shape}; a Keras-layout data set holds images of shape "
                         f"(n, height, width) or (n, height, width, channels)")
    if len(x) == 0 or x.size == 0:
        raise ValueError(f"{what} is empty (shape {x.shape}): the data set needs images in both splits")
    scale = _pixel_scale(x, what)
    return x.astype(np.float32) / np.float32(scale), scale


def _external_split(arrays: tuple, name: str) -> tuple[np.ndarray, ...]:
    """Check and convert Keras-layout arrays ((x_train, y_train), (x_test, y_test)) of the data set ``name``."""
    (x_train, y_train), (x_test, y_test) = arrays
    x_train, train_scale = _to_images(x_train, "x_train")
    x_test, test_scale = _to_images(x_test, "x_test")
    if train_scale != test_scale:
        scales = {255.0: "0-255 pixels", 1.0: "values in [0, 1]"}
        raise ValueError(f"x_train holds {scales[train_scale]} but x_test holds {scales[test_scale]}: save both "
                         f"splits on one scale")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"x_train's images are {x_train.shape[1:]} but x_test's are {x_test.shape[1:]}: both "
                         f"splits need one image shape")
    nb_classes = len(_CLASS_NAMES[name])
    y_train = check_labels(y_train, len(x_train), what="y_train", nb_classes=nb_classes, images="x_train",
                           one_hot=False)
    y_test = check_labels(y_test, len(x_test), what="y_test", nb_classes=nb_classes, images="x_test", one_hot=False)
    return x_train, y_train, x_test, y_test


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
        x_train, y_train, x_test, y_test = _external_split(_load_external(name, path), name)
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
    """Check that ``x`` is a non-empty batch of images of ``input_shape`` with finite values in [0, 1]; return it
    as float32.

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
    if len(x) == 0:
        raise ValueError(f"{what} holds no image (shape {x.shape}): pass at least one image")
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"{what} has dtype {x.dtype}; images are float32 pixel values in [0, 1]")
    finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"{what} has NaN or infinite values in {len(bad)} image(s) (first: index {bad[0]}); "
                         f"a model's answer on them means nothing: drop them (x[np.isfinite(x).all(axis=(1, 2, 3))])")
    low, high = x.min(), x.max()
    if low < 0.0 or high > 1.0:
        hint = "divide by 255?" if low >= 0.0 and high <= 255.0 else "rescale them to [0, 1]"
        raise ValueError(f"{what} has values outside [0, 1] (min {low:.3g}, max {high:.3g}); {hint}")
    return x.astype(np.float32, copy=False)


def _one_hot_classes(y: np.ndarray, what: str, nb_classes: int | None) -> np.ndarray:
    """Return the class index of each row of the one-hot labels ``y`` (n, k); refuse anything else."""
    if nb_classes is not None and y.shape[1] != nb_classes:
        raise ValueError(f"{what} has shape {y.shape}: one-hot labels need one column per class ({nb_classes}); "
                         f"integer labels of shape (n,) work too")
    if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
        raise ValueError(f"{what} of shape {y.shape} is not one-hot (each row a single 1, the rest 0): pass integer "
                         f"labels of shape (n,), or probabilities.argmax(axis=1) for a model's answers")
    return y.argmax(axis=1)


def check_labels(y: np.ndarray, n: int, *, what: str = "y", nb_classes: int | None = None,
                 images: str = "x", one_hot: bool = True) -> np.ndarray:
    """Return ``y`` (integer labels of shape (n,) or (n, 1), or one-hot) as int64 class indices of shape (n,).

    Labels must be integers (not floats, not booleans), one per image, and in [0, nb_classes - 1] when
    ``nb_classes`` is given; one-hot rows must hold a single 1.

    :param y: the labels.
    :param n: the number of images they label.
    :param what: the labels' name in error messages.
    :param nb_classes: when given, every label must lie in [0, nb_classes - 1].
    :param images: the images' name in error messages.
    :param one_hot: accept one-hot labels (n, nb_classes); False accepts integer labels only.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # a column of labels, as Keras's cifar10 gives them
    if y.ndim == 2 and one_hot:
        labels = _one_hot_classes(y, what, nb_classes)
    elif y.ndim == 1:
        if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{what} has dtype {y.dtype}: labels must be integer class indices (0, 1, 2 ...); "
                             f"whole-number floats convert with y.astype(int)")
        labels = y
    else:
        kinds = "integer labels of shape (n,) or one-hot labels (n, classes)" if one_hot else \
            "integer labels of shape (n,); y.argmax(axis=1) turns one-hot labels into them"
        raise ValueError(f"{what} has shape {y.shape}; expected {kinds}")
    if len(labels) != n:
        raise ValueError(f"{images} has {n} images but {what} has {len(labels)} labels")
    if nb_classes is not None and len(labels) and (labels.min() < 0 or labels.max() >= nb_classes):
        raise ValueError(f"labels must be integers in [0, {nb_classes - 1}], "
                         f"got range [{labels.min()}, {labels.max()}] in {what}")
    return labels.astype(np.int64)
