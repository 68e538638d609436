"""Every loader path: embedded digits, a local Keras-layout .npz, the data folder, Keras's loader, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import labkit
from labkit import data as data_module


def _fake_keras_arrays(n_train=60, n_test=30, shape=(28, 28), rgb=False, seed=0):
    rng = np.random.default_rng(seed)
    full = shape + ((3,) if rgb else ())
    x_train = rng.integers(0, 256, size=(n_train, *full), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(n_test, *full), dtype=np.uint8)
    y_train = np.arange(n_train) % 10
    y_test = np.arange(n_test) % 10
    if rgb:  # Keras's cifar10 labels are (n, 1)
        y_train, y_test = y_train[:, None], y_test[:, None]
    return (x_train, y_train.astype(np.uint8)), (x_test, y_test.astype(np.uint8))


def _write_npz(path, arrays):
    (x_train, y_train), (x_test, y_test) = arrays
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def _check(ds, shape):
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and x.ndim == 4 and x.shape[1:] == shape
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert y.ndim == 1 and len(y) == len(x) and np.issubdtype(y.dtype, np.integer)
    assert ds.input_shape == shape and ds.clip_values == (0.0, 1.0) and ds.nb_classes == 10


def test_digits_default_shapes_range_and_stratified_split():
    ds = labkit.load_dataset()
    _check(ds, (16, 16, 1))
    assert len(ds.x_train) + len(ds.x_test) == 1797
    train_share = np.bincount(ds.y_train) / len(ds.y_train)
    test_share = np.bincount(ds.y_test) / len(ds.y_test)
    assert np.abs(train_share - test_share).max() < 0.01  # stratified


def test_digits_split_is_deterministic_per_seed():
    a, b, c = labkit.load_dataset(seed=3), labkit.load_dataset(seed=3), labkit.load_dataset(seed=4)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_train, c.y_train)


def test_subsets_are_stratified_and_sized():
    ds = labkit.load_dataset(n_train=200, n_test=100)
    assert len(ds.x_train) == 200 and len(ds.x_test) == 100
    assert set(np.unique(ds.y_train)) == set(range(10))


def test_local_npz_path_in_keras_layout(tmp_path):
    path = _write_npz(tmp_path / "mnist_small.npz", _fake_keras_arrays())
    ds = labkit.load_dataset("mnist", path=path)
    _check(ds, (28, 28, 1))
    (x_train, _), _ = _fake_keras_arrays()  # values come from the file, scaled to [0, 1]
    assert np.isclose(np.sort(ds.x_train.ravel()).sum(), np.sort(x_train.ravel() / 255.0).sum(), rtol=1e-5)


def test_data_folder_file_is_used_without_path(tmp_path, monkeypatch):
    folder = tmp_path / "teacher_data"
    folder.mkdir()
    monkeypatch.setenv("LABKIT_DATA_DIR", str(folder))
    _write_npz(folder / "cifar10.npz", _fake_keras_arrays(shape=(32, 32), rgb=True))
    ds = labkit.load_dataset("cifar10", n_train=30)
    _check(ds, (32, 32, 3))
    assert len(ds.x_train) == 30 and ds.class_names[0] == "airplane"


def test_keras_loader_path_converts_its_arrays(monkeypatch):
    calls = []

    def fake_loader():
        calls.append(1)
        return _fake_keras_arrays()

    monkeypatch.setitem(data_module._KERAS_LOADERS, "fashion_mnist", fake_loader)
    ds = labkit.load_dataset("fashion_mnist")
    assert calls == [1]
    _check(ds, (28, 28, 1))
    assert ds.class_names[-1] == "Ankle boot"


def test_real_keras_loader_is_the_one_wired_in(monkeypatch):
    import keras

    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: _fake_keras_arrays(seed=5))
    ds = labkit.load_dataset("mnist")
    _check(ds, (28, 28, 1))


def test_offline_error_names_the_file_to_place(monkeypatch, tmp_path):
    def offline():
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setitem(data_module._KERAS_LOADERS, "mnist", offline)
    with pytest.raises(labkit.DatasetUnavailableError) as info:
        labkit.load_dataset("mnist")
    message = str(info.value)
    assert "mnist.npz" in message and str(tmp_path / "data") in message and "path=" in message


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        labkit.load_dataset("imagenet")
    for name in labkit.DATASETS:
        assert name in str(info.value)


def test_missing_explicit_path_and_corrupt_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="path="):
        labkit.load_dataset("mnist", path=tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a readable .npz"):
        labkit.load_dataset("mnist", path=bad)
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=np.zeros((10, 28, 28)))
    with pytest.raises(ValueError, match="lacks"):
        labkit.load_dataset("mnist", path=partial)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="n_train"):
        labkit.load_dataset(n_train=3)
    with pytest.raises(ValueError, match="n_test"):
        labkit.load_dataset(n_test=2.5)


def test_check_images_says_what_is_wrong():
    good = np.zeros((2, 16, 16, 1), np.float32)
    assert labkit.data.check_images(good, (16, 16, 1)) is not None
    with pytest.raises(ValueError, match="batch axis"):
        labkit.data.check_images(good[0], (16, 16, 1))
    with pytest.raises(ValueError, match="outside"):
        labkit.data.check_images(good + 255, (16, 16, 1))
