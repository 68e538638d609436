"""Jacobian augmentation takes one gradient per image, not ART's whole Jacobian: same steps, a fraction of the memory
(06's kernel peaked at 1.2-1.4 GB with the Jacobian, under 1 GB without: measured by benchmarks/kernel_memory.py,
not here, as a peak's rise inside a loaded test session says little: ART's whole Jacobian raised it by 600-618 MB on
a quiet machine but by 48-114 MB in test sessions)."""

from __future__ import annotations

import numpy as np
import pytest

import labkit
from labkit import extraction


@pytest.fixture(scope="module")
def setting():
    data = labkit.load_dataset("digits", seed=0, n_train=200, n_test=100)
    labkit.set_seed(1)
    substitute = extraction.new_substitute(data.input_shape, data.nb_classes)
    substitute.fit(data.x_train[:100], np.eye(10)[data.y_train[:100]], nb_epochs=2, batch_size=32)
    return data, substitute


class _NotKeras:
    """A classifier that is not a Keras model: only ART's interface (class_gradient, shapes)."""

    def __init__(self, inner):
        self.inner, self.input_shape, self.nb_classes = inner, inner.input_shape, inner.nb_classes

    def class_gradient(self, x, label=None, **kwargs):
        return self.inner.class_gradient(x, label=label, **kwargs)


def test_keras_substitutes_never_build_the_whole_jacobian(setting, monkeypatch):
    data, substitute = setting
    labels = np.arange(len(data.x_test)) % 10
    expected = extraction.jacobian_augmentation(_NotKeras(substitute), data.x_test, labels, 0.1)

    def refuse(*args, **kwargs):
        raise AssertionError("class_gradient (ART's whole Jacobian) was called")

    monkeypatch.setattr(type(substitute), "class_gradient", refuse)
    np.testing.assert_array_equal(extraction.jacobian_augmentation(substitute, data.x_test, labels, 0.1), expected)
