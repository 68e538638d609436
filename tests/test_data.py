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


# --- guarded loading: what the loader cannot use is refused with a message that says what to do ----------------

def _load_arrays(tmp_path, x_train, y_train, x_test=None, y_test=None):
    """Write a Keras-layout .npz from the given arrays (test split defaults to a clean uint8 one) and load it."""
    (_, _), (good_x_test, good_y_test) = _fake_keras_arrays()
    x_test = good_x_test if x_test is None else x_test
    y_test = good_y_test if y_test is None else y_test
    path = _write_npz(tmp_path / "mnist.npz", ((x_train, y_train), (x_test, y_test)))
    return labkit.load_dataset("mnist", path=path)


def test_one_nan_in_0_255_data_is_refused_not_clipped_to_white(tmp_path):
    (x_train, y_train), _ = _fake_keras_arrays()
    x_train = x_train.astype(np.float64)
    x_train[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"x_train has NaN or infinite values in 1 image\(s\) \(first: index 3\)"):
        _load_arrays(tmp_path, x_train, y_train)
    x_train[3, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        _load_arrays(tmp_path, x_train, y_train)


@pytest.mark.parametrize("scale", ["uint8", "whole floats", "unit floats"])
def test_0_255_and_0_1_data_load_on_one_scale(tmp_path, scale):
    (x_train, y_train), (x_test, y_test) = _fake_keras_arrays()
    as_stored = {"uint8": lambda x: x, "whole floats": lambda x: x.astype(np.float32),
                 "unit floats": lambda x: x / 255.0}[scale]
    ds = _load_arrays(tmp_path, as_stored(x_train), y_train, as_stored(x_test), y_test)
    assert np.allclose(ds.x_train[..., 0], x_train / 255.0, atol=1e-6)  # the same images on every scale
    assert np.allclose(ds.x_test[..., 0], x_test / 255.0, atol=1e-6)


@pytest.mark.parametrize("values, says", [
    (lambda x: x / 127.5 - 1.0, r"values in \[-1, 1\]"),                 # [-1, 1]
    (lambda x: x / 127.5, r"floats in \[0, 2\]: neither \[0, 1\] nor whole 0-255"),  # floats in 0-2
    (lambda x: x.astype(np.float32) * 4, r"values in \[0, 1.02e\+03\]"),  # over 255
])
def test_pixel_ranges_that_are_neither_0_1_nor_0_255_are_refused(tmp_path, values, says):
    (x_train, y_train), (x_test, y_test) = _fake_keras_arrays()
    with pytest.raises(ValueError, match=says):
        _load_arrays(tmp_path, values(x_train), y_train, values(x_test), y_test)


def test_splits_on_different_scales_are_refused(tmp_path):
    (x_train, y_train), (x_test, y_test) = _fake_keras_arrays()
    with pytest.raises(ValueError, match=r"x_train holds 0-255 pixels but x_test holds values in \[0, 1\]"):
        _load_arrays(tmp_path, x_train, y_train, x_test / 255.0, y_test)


@pytest.mark.parametrize("bad_labels, says", [
    (lambda y: y + 10, r"labels must be integers in \[0, 9\], got range \[10, 19\] in y_train"),
    (lambda y: y.astype(np.int64) - 1, r"got range \[-1, 8\] in y_train"),
    (lambda y: y.astype(np.float32), "y_train has dtype float32: labels must be integer class indices"),
    (lambda y: np.eye(10, dtype=np.uint8)[y], r"y_train has shape \(60, 10\); expected integer labels of shape"),
    (lambda y: y[:-1], "x_train has 60 images but y_train has 59 labels"),
])
def test_bad_labels_are_refused(tmp_path, bad_labels, says):
    (x_train, y_train), _ = _fake_keras_arrays()
    with pytest.raises(ValueError, match=says):
        _load_arrays(tmp_path, x_train, bad_labels(y_train))


def test_cifar_style_label_columns_still_load(tmp_path):
    (x_train, y_train), (x_test, y_test) = _fake_keras_arrays()
    ds = _load_arrays(tmp_path, x_train, y_train[:, None], x_test, y_test[:, None])
    assert np.array_equal(ds.y_train, y_train) and ds.y_train.shape == (60,)


def test_empty_arrays_are_refused(tmp_path):
    (x_train, y_train), _ = _fake_keras_arrays()
    with pytest.raises(ValueError, match=r"x_train is empty \(shape \(0, 28, 28, 1\)\)"):
        _load_arrays(tmp_path, x_train[:0], y_train[:0])


def _npz_with_member(path, name, payload, compress=False):
    """Write a Keras-layout .npz whose member ``name`` holds the raw bytes ``payload`` (the others are valid)."""
    import io
    import zipfile

    (x_train, y_train), (x_test, y_test) = _fake_keras_arrays()
    members = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method, allowZip64=True) as archive:
        for key, array in members.items():
            if key == name:
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    payload(member)
            else:
                buffer = io.BytesIO()
                np.save(buffer, array)
                archive.writestr(f"{key}.npy", buffer.getvalue())
    return path


def test_an_npz_header_that_lies_about_its_size_is_refused_before_allocation(tmp_path):
    from numpy.lib import format as npy

    def lying(member):  # a header for 292 GiB of float32 images, followed by a few bytes
        header = {"descr": "<f4", "fortran_order": False, "shape": (100_000_000, 28, 28, 1)}
        npy.write_array_header_1_0(member, header)
        member.write(b"\0" * 64)

    path = _npz_with_member(tmp_path / "lies.npz", "x_train", lying)
    with pytest.raises(ValueError, match=r"x_train declares shape \(100000000, 28, 28, 1\) of float32 \(292.\d\d GiB\)"):
        labkit.load_dataset("mnist", path=path)

    def short(member):  # a truthful-looking header for 60 images, but only half their bytes
        npy.write_array_header_1_0(member, {"descr": "|u1", "fortran_order": False, "shape": (60, 28, 28)})
        member.write(b"\0" * (30 * 28 * 28))

    path = _npz_with_member(tmp_path / "short.npz", "x_train", short)
    with pytest.raises(ValueError, match="holds 23520 bytes: the file is truncated or corrupt"):
        labkit.load_dataset("mnist", path=path)


def test_a_zip_bomb_npz_is_refused_without_unpacking_it(tmp_path):
    """A 0.2 MiB .npz whose x_train unpacks to 200 MiB: refused from the zip directory, peak memory stays small."""
    import tracemalloc

    from numpy.lib import format as npy

    n_images = 200 * 2**20 // (28 * 28)

    def bomb(member):
        npy.write_array_header_1_0(member, {"descr": "|u1", "fortran_order": False, "shape": (n_images, 28, 28)})
        zeros = bytes(28 * 28 * 1024)
        for start in range(0, n_images, 1024):
            member.write(zeros[:28 * 28 * min(1024, n_images - start)])

    path = _npz_with_member(tmp_path / "bomb.npz", "x_train", bomb, compress=True)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"x_train expands \d+-fold .* refused as a possible zip bomb"):
            labkit.load_dataset("mnist", path=path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"refusing the bomb allocated {peak / 2**20:.0f} MiB"


def test_check_images_refuses_nan_empty_and_says_divide_by_255():
    good = np.full((2, 16, 16, 1), 0.5, np.float32)
    bad = good.copy()
    bad[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"x has NaN or infinite values in 1 image\(s\) \(first: index 1\)"):
        labkit.data.check_images(bad, (16, 16, 1))
    with pytest.raises(ValueError, match="holds no image"):
        labkit.data.check_images(good[:0], (16, 16, 1))
    with pytest.raises(ValueError, match="divide by 255"):
        labkit.data.check_images((good * 255).astype(np.uint8), (16, 16, 1))
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*rescale them to \[0, 1\]"):
        labkit.data.check_images(good * 2 - 1.5, (16, 16, 1))


def test_check_labels_accepts_integers_and_one_hot_and_refuses_the_rest():
    y = np.array([0, 3, 9])
    assert np.array_equal(labkit.data.check_labels(np.eye(10)[y], 3, nb_classes=10), y)
    assert np.array_equal(labkit.data.check_labels(y[:, None], 3, nb_classes=10), y)
    with pytest.raises(ValueError, match="is not one-hot"):
        labkit.data.check_labels(np.full((3, 10), 0.1), 3, nb_classes=10)
    with pytest.raises(ValueError, match="one column per class"):
        labkit.data.check_labels(np.eye(5)[[0, 1, 2]], 3, nb_classes=10)
    with pytest.raises(ValueError, match="dtype bool"):
        labkit.data.check_labels(np.array([True, False, True]), 3)
    with pytest.raises(ValueError, match="one-hot labels into them"):
        labkit.data.check_labels(np.eye(10)[y], 3, one_hot=False)


def test_members_over_the_size_cap_are_refused_from_the_zip_directory(tmp_path, monkeypatch):
    path = _write_npz(tmp_path / "big.npz", _fake_keras_arrays(n_train=200))   # x_train: 153 KiB
    monkeypatch.setattr(data_module, "MAX_NPZ_BYTES", 2**10)
    with pytest.raises(ValueError, match=r"x_train unpacks to 0.1 MiB, over labkit's cap of 0.0 MiB per array: save "
                                         r"a subset"):
        labkit.load_dataset("mnist", path=path)
