"""Poison Frogs in TensorFlow: the feature-collision step, the last-layer fine-tuning, the trials and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import labkit
from labkit import clean_label as cl


@pytest.fixture(scope="module")
def small():
    return labkit.load_dataset(n_train=200, n_test=100)


@pytest.fixture(scope="module")
def victim(small):
    labkit.set_seed(0)
    return labkit.train_model(small.x_train, small.y_train, epochs=8, progress=False)


def _target_and_bases(small, victim, n=3):
    targets, base_classes = cl.pick_targets(victim, small.x_test, small.y_test, 1, seed=0)
    base_class = int(base_classes[0])
    bases = small.x_train[small.y_train == base_class][:n]
    return small.x_test[targets], bases, base_class


def test_collision_lowers_the_feature_loss_keeps_pixels_valid_and_the_label(small, victim):
    target, bases, base_class = _target_and_bases(small, victim)
    poisons, labels, losses = cl.craft_poisons(victim, target, bases, np.full(len(bases), base_class),
                                               learning_rate=1e-2, beta=0.0156, eps=None, max_iter=60,
                                               progress=False)
    assert losses.shape == (61, len(bases))
    assert np.all(losses[-1] < 0.5 * losses[0]), "the features must move towards the target's"
    assert np.all(losses[-1] <= losses[:-1].max(axis=0))
    assert poisons.shape == bases.shape and poisons.dtype == np.float32
    assert poisons.min() >= 0.0 and poisons.max() <= 1.0
    assert not np.allclose(poisons, bases)
    assert np.all(labels == base_class), "a clean-label poison keeps its base's label"
    extractor = cl.feature_extractor(victim)
    t = cl.features_of(extractor, target)[0]
    reported = np.sum((cl.features_of(extractor, poisons) - t) ** 2, axis=1)
    np.testing.assert_allclose(losses[-1], reported, rtol=1e-3, atol=1e-3)


def test_eps_bounds_the_perturbation_and_beta_pulls_towards_the_base(small, victim):
    target, bases, base_class = _target_and_bases(small, victim)
    extractor = cl.feature_extractor(victim)
    t = cl.features_of(extractor, target)[0]
    bounded, _ = cl.feature_collision(extractor, bases, t, learning_rate=1e-3, beta=0.0, eps=0.05, max_iter=40)
    assert np.all(cl.perturbation_linf(bounded, bases) <= 0.05 + 1e-6)
    free, _ = cl.feature_collision(extractor, bases, t, learning_rate=1e-3, beta=0.0, max_iter=40)
    pulled, _ = cl.feature_collision(extractor, bases, t, learning_rate=1e-3, beta=200.0, max_iter=40)
    assert np.linalg.norm(pulled - bases) < 0.5 * np.linalg.norm(free - bases)
    stuck, _ = cl.feature_collision(extractor, bases, t, learning_rate=1e-3, beta=1e7, max_iter=5)
    np.testing.assert_allclose(stuck, bases, atol=1e-3)  # a huge beta: the proximal step returns the base


def test_one_iteration_is_a_gradient_step_then_the_papers_proximal_step():
    import keras

    # f(x) = w . x (one linear feature): the gradient of (f(x) - t)^2 is 2 (w . x - t) w, known in closed form
    inputs = keras.Input((4, 4, 1))
    w = np.linspace(-0.05, 0.05, 16, dtype=np.float32)
    dense = keras.layers.Dense(1, use_bias=False)
    extractor = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([w.reshape(16, 1)])
    base = np.random.default_rng(0).uniform(0.2, 0.8, (1, 4, 4, 1)).astype(np.float32)
    lr, beta, t = 0.5, 2.0, 3.0
    out, losses = cl.feature_collision(extractor, base, np.array([t]), learning_rate=lr, beta=beta, max_iter=1)
    x = base.reshape(16)
    x_hat = x - lr * 2 * (w @ x - t) * w
    expected = np.clip((x_hat + lr * beta * x) / (1 + lr * beta), 0, 1)
    np.testing.assert_allclose(out.reshape(16), expected, atol=1e-5)
    np.testing.assert_allclose(losses[0], (w @ x - t) ** 2, rtol=1e-4)


def test_fine_tuning_changes_only_the_last_layer_of_a_copy(small, victim):
    before = [w.copy() for w in victim.model.get_weights()]
    forced = cl.fine_tune_last_layer(victim, small.x_train[:60], np.full(60, 7), steps=100, learning_rate=0.05)
    assert all(np.array_equal(a, b) for a, b in zip(before, victim.model.get_weights())), "original changed"
    assert [layer.trainable for layer in forced.model.layers if layer.weights] == [False, False, False, True]
    for layer in forced.model.layers:
        if layer.weights and layer.name != "predictions":
            for a, b in zip(layer.get_weights(), victim.model.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)
    assert np.mean(forced.predict(small.x_train[:60]).argmax(axis=1) == 7) > 0.9
    same = cl.fine_tune_last_layer(victim, small.x_train, small.y_train, steps=50)
    before_acc = labkit.accuracy(victim, small.x_test, small.y_test)
    assert labkit.accuracy(same, small.x_test, small.y_test) >= before_acc - 0.1


def test_trials_report_one_row_per_target_with_bounded_poisons(small, victim):
    targets, base_classes = cl.pick_targets(victim, small.x_test, small.y_test, 2, seed=1)
    assert np.all(base_classes != small.y_test[targets]), "the runner-up class is never the true class"
    table, poisons, bases = cl.poison_frogs_trials(victim, small.x_train, small.y_train, small.x_test, small.y_test,
                                                   targets, base_classes, n_poisons=3, eps=0.1, max_iter=30,
                                                   steps=30, progress=False)
    assert list(table.target) == list(targets) and list(table.base_class) == list(base_classes)
    assert poisons.shape == bases.shape == (2, 3, 16, 16, 1)
    assert np.all(table.linf <= 0.1 + 1e-6) and np.all(table.feature_loss_ratio < 1.0)
    for row, b in zip(table.itertuples(), bases):
        assert np.all(np.isin(b, small.x_train[small.y_train == row.base_class]).reshape(3, -1).all(axis=1))
    assert set(table.columns) >= {"success", "control_success", "p_base_after", "clean_accuracy_after"}


def test_nearest_bases_are_the_closest_of_the_base_class():
    feats = np.array([[0.0], [5.0], [1.0], [2.0], [0.5]], np.float32)
    labels = np.array([1, 1, 1, 0, 1])
    assert list(cl.nearest_bases(feats, labels, np.array([0.9]), 1, 2, nb_classes=2)) == [2, 4]


def test_watermark_and_paper_beta():
    bases = np.zeros((2, 4, 4, 1), np.float32)
    target = np.ones((4, 4, 1), np.float32)
    np.testing.assert_allclose(cl.watermark(bases, target, 0.3), 0.3)
    assert cl.paper_beta(2048, 299 * 299 * 3) == pytest.approx(0.25 * 2048**2 / (299 * 299 * 3) ** 2)
    assert cl.paper_beta(64, 256) == pytest.approx(0.015625)


@pytest.mark.parametrize("kwargs, match", [
    ({"beta": -1.0}, "beta must be >= 0"),
    ({"beta": float("nan")}, "beta must be >= 0"),
    ({"learning_rate": 0.0}, "learning_rate must be a positive"),
    ({"learning_rate": -1e-3}, "learning_rate must be a positive"),
    ({"eps": 1.5}, "eps must be in"),
    ({"eps": 0.0}, "eps must be in"),
    ({"max_iter": 0}, "max_iter must be a positive integer"),
])
def test_bad_step_parameters_raise_clear_errors(small, victim, kwargs, match):
    extractor = cl.feature_extractor(victim)
    args = {"learning_rate": 1e-3, "beta": 0.1, "max_iter": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        cl.feature_collision(extractor, small.x_train[:2], np.zeros(64), **args)


def test_bad_shapes_classes_and_sizes_raise_clear_errors(small, victim):
    extractor = cl.feature_extractor(victim)
    with pytest.raises(ValueError, match="expected a batch of images"):
        cl.feature_collision(extractor, small.x_train[:2, :8], np.zeros(64), learning_rate=1e-3, beta=0.1)
    with pytest.raises(ValueError, match="target_features has shape"):
        cl.feature_collision(extractor, small.x_train[:2], np.zeros(10), learning_rate=1e-3, beta=0.1)
    with pytest.raises(ValueError, match="one target image"):
        cl.craft_poisons(victim, small.x_test[:2], small.x_train[:2], [1, 1], progress=False)
    with pytest.raises(ValueError, match="class indices"):
        cl.craft_poisons(victim, small.x_test[:1], small.x_train[:2], [1, 10], progress=False)
    with pytest.raises(ValueError, match="one label per base"):
        cl.craft_poisons(victim, small.x_test[:1], small.x_train[:2], [1], progress=False)
    feats = cl.features_of(extractor, small.x_train)
    with pytest.raises(ValueError, match="base_class must be a class index"):
        cl.nearest_bases(feats, small.y_train, feats[0], 10, 2, nb_classes=10)
    with pytest.raises(ValueError, match="base_class must be a class index"):
        cl.nearest_bases(feats, small.y_train, feats[0], -1, 2, nb_classes=10)
    with pytest.raises(ValueError, match="n must be an integer"):
        cl.nearest_bases(feats, small.y_train, feats[0], 3, 10_000, nb_classes=10)
    with pytest.raises(ValueError, match="n_targets must be an integer"):
        cl.pick_targets(victim, small.x_test, small.y_test, 0)
    with pytest.raises(ValueError, match="opacity must be in"):
        cl.watermark(small.x_train[:2], small.x_test[0], 1.0)
    with pytest.raises(ValueError, match="labels must be integers in \\[0, 9\\]"):
        cl.fine_tune_last_layer(victim, small.x_train[:3], [0, 1, 12])
    with pytest.raises(ValueError, match="x has 3 images but y has 2 labels"):
        cl.fine_tune_last_layer(victim, small.x_train[:3], [0, 1])
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        cl.fine_tune_last_layer(victim, small.x_train[:3], [0, 1, 2], steps=0)
    with pytest.raises(ValueError, match="no layer named"):
        cl.feature_extractor(victim, "nope")
