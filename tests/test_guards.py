"""The public API a pair calls refuses inputs it cannot use, with a message that says what to do.

Every case here returned a number (or trained nothing) silently before the guards; an untrained model is
enough to show it, so nothing here trains for long.
"""

from __future__ import annotations

import numpy as np
import pytest

import labkit
from labkit.poisoning import Trigger, attack_success_rate, poison_dataset


@pytest.fixture(scope="module")
def untrained():
    labkit.set_seed(0)
    return labkit.models.wrap_model(labkit.build_model((16, 16, 1)))


@pytest.fixture(scope="module")
def small():
    ds = labkit.load_dataset(n_train=40, n_test=30)
    return ds.x_test, ds.y_test


def test_accuracy_refuses_0_255_images_shifted_labels_and_nan(untrained, small):
    x, y = small
    assert 0.0 <= labkit.accuracy(untrained, x, y) <= 1.0
    with pytest.raises(ValueError, match=r"outside \[0, 1\] \(min 0, max 2\d\d\); divide by 255"):
        labkit.accuracy(untrained, (x * 255).astype(np.uint8), y)
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 9\], got range \[10, 19\]"):
        labkit.accuracy(untrained, x, y + 10)
    x_nan = x.copy()
    x_nan[4, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 image\(s\) \(first: index 4\)"):
        labkit.accuracy(untrained, x_nan, y)


def test_accuracy_under_attack_refuses_nan(untrained, small):
    from art.attacks.evasion import FastGradientMethod

    x, y = small
    x_nan = x.copy()
    x_nan[0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 image\(s\) \(first: index 0\)"):
        labkit.evasion.accuracy_under_attack(untrained, FastGradientMethod(untrained, eps=0.1), x_nan, y)
    with pytest.raises(ValueError, match=r"eps given for 0-255 pixels"):   # the existing eps check stays
        labkit.evasion.accuracy_under_attack(untrained, FastGradientMethod(untrained, eps=8), x, y)


def test_attack_success_rate_refuses_out_of_range_labels(untrained, small):
    x, y = small
    assert 0.0 <= attack_success_rate(untrained, x, y, target_class=0, trigger=Trigger()) <= 1.0
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 9\], got range \[10, 19\]"):
        attack_success_rate(untrained, x, y + 10, target_class=0, trigger=Trigger())
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 9\], got range \[-3, 6\]"):
        attack_success_rate(untrained, x, y - 3, target_class=0, trigger=Trigger())
    with pytest.raises(ValueError, match=r"target_class must be a class index in \[0, 9\]"):  # kept
        attack_success_rate(untrained, x, y, target_class=10, trigger=Trigger())


@pytest.mark.parametrize("epochs", [-1, 0, 2.5, "3", True])
def test_train_model_refuses_epochs_that_train_nothing(small, epochs):
    x, y = small
    with pytest.raises(ValueError, match=f"epochs must be a whole number >= 1, got {epochs!r}"):
        labkit.train_model(x, y, epochs=epochs, progress=False)


def test_trigger_refuses_to_stamp_onto_0_255_images():
    x = np.full((2, 16, 16, 1), 200, np.uint8)
    with pytest.raises(ValueError, match=r"the images to stamp has values outside \[0, 1\].*divide by 255"):
        Trigger()(x)
    stamped = Trigger()(x / 255.0)
    assert stamped[:, -3:, -3:].min() == 1.0 and np.allclose(stamped[:, :-3], 200 / 255.0)
    with pytest.raises(ValueError, match="trigger value must be a pixel value in"):  # kept
        Trigger(value=255)


def test_a_wrong_shaped_trigger_function_names_the_expected_shape(untrained, small):
    x, y = small
    n_sources = int(np.sum(y != 0))
    with pytest.raises(ValueError, match=rf"returned shape \({n_sources}, 8, 16, 1\); it must return the batch it "
                                         rf"was given, shape \({n_sources}, 16, 16, 1\)"):
        attack_success_rate(untrained, x, y, target_class=0, trigger=lambda images: images[:, :8])


def test_poison_dataset_names_the_shape_a_trigger_function_must_return(small):
    from art.attacks.poisoning import PoisoningAttackBackdoor

    x, y = small
    attack = PoisoningAttackBackdoor(lambda images: images[..., 0])
    with pytest.raises(ValueError, match=r"trigger function returned shape \(\d+, 16, 16\); it must return the "
                                         r"batch it was given, shape \(\d+, 16, 16, 1\)"):
        poison_dataset(x, y, attack, target_class=0, poison_fraction=0.2)
    with pytest.raises(ValueError, match="poison_fraction must be a number strictly between 0 and 1"):  # kept
        poison_dataset(x, y, PoisoningAttackBackdoor(Trigger()), target_class=0, poison_fraction=10)
