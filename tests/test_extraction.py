"""The label-only oracle, Jacobian-based dataset augmentation and the substitute loop, on a tiny victim."""

from __future__ import annotations

import numpy as np
import pytest

import labkit
from labkit import extraction
from labkit.extraction import LabelOracle, QueryBudgetExceeded, jacobian_augmentation


@pytest.fixture(scope="module")
def digits():
    return labkit.load_dataset("digits", seed=0, n_train=200, n_test=100)


@pytest.fixture(scope="module")
def victim(digits):
    labkit.set_seed(0)
    return labkit.train_model(digits.x_train, digits.y_train, epochs=3, progress=False)


@pytest.fixture(scope="module")
def substitute(digits, victim):
    """A substitute trained a little on the victim's labels: its gradients are not all zero."""
    labkit.set_seed(1)
    model = extraction.new_substitute(digits.input_shape, digits.nb_classes)
    model.fit(digits.x_train[:100], np.eye(10)[victim.predict(digits.x_train[:100]).argmax(1)], nb_epochs=2,
              batch_size=32)
    return model


# --- the oracle ---------------------------------------------------------------------------------------------

def test_oracle_returns_the_victims_labels_and_counts_every_image(digits, victim):
    oracle = LabelOracle(victim)
    labels = oracle.query(digits.x_test[:7])
    assert labels.shape == (7,) and np.issubdtype(labels.dtype, np.integer)
    np.testing.assert_array_equal(labels, victim.predict(digits.x_test[:7]).argmax(axis=1))
    oracle.query(digits.x_test[7:10])
    assert oracle.n_queries == 10 and oracle.calls == [7, 3]


def test_oracle_leaks_no_probabilities(digits, victim):
    oracle = LabelOracle(victim)
    assert set(np.unique(oracle.query(digits.x_test[:20]))) <= set(range(10))
    art_view = oracle.as_art_classifier()
    out = art_view.predict(digits.x_test[:20], batch_size=6)  # ART calls the oracle in 4 batches
    assert out.shape == (20, 10)
    assert set(np.unique(out)) <= {0.0, 1.0} and np.all(out.sum(axis=1) == 1)
    np.testing.assert_array_equal(out.argmax(axis=1), victim.predict(digits.x_test[:20]).argmax(axis=1))
    assert oracle.n_queries == 40  # 20 through query(), 20 through the ART view


def test_oracle_enforces_its_budget_without_spending_it(digits, victim):
    oracle = LabelOracle(victim, budget=10)
    oracle.query(digits.x_test[:8])
    with pytest.raises(QueryBudgetExceeded, match="budget of 10"):
        oracle.query(digits.x_test[:3])
    assert oracle.n_queries == 8
    oracle.query(digits.x_test[:2])
    assert oracle.n_queries == 10


@pytest.mark.parametrize("bad", [np.zeros((3, 8, 8, 1)), np.zeros((16, 16, 1)), np.full((2, 16, 16, 1), 255.0)])
def test_oracle_rejects_bad_images(victim, bad):
    with pytest.raises(ValueError, match="shape|outside"):
        LabelOracle(victim).query(bad)


@pytest.mark.parametrize("budget", [0, -5, 2.5, True])
def test_oracle_rejects_a_bad_budget(victim, budget):
    with pytest.raises(ValueError, match="budget"):
        LabelOracle(victim, budget=budget)


# --- Jacobian-based dataset augmentation ----------------------------------------------------------------------

def _true_sign_of_gradient(substitute, x, labels):
    """The sign of d(softmax output for each image's label)/dx, computed with TensorFlow directly (not ART)."""
    import tensorflow as tf

    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = substitute.model(xt, training=False)
        chosen = tf.reduce_sum(out * tf.one_hot(labels, out.shape[-1]))
    return np.sign(tape.gradient(chosen, xt).numpy())


def test_augmentation_steps_by_lambda_along_the_gradient_sign(digits, substitute):
    rng = np.random.default_rng(0)
    x = (0.3 + 0.4 * rng.random((12, *digits.input_shape))).astype(np.float32)  # far from 0 and 1: no clipping
    labels = rng.integers(0, 10, size=12)
    lam = 0.05
    x_new = jacobian_augmentation(substitute, x, labels, lam)
    assert x_new.shape == x.shape and x_new.dtype == np.float32
    expected = _true_sign_of_gradient(substitute, x, labels)
    assert np.count_nonzero(expected) > 0.9 * expected.size
    np.testing.assert_allclose(x_new - x, lam * expected, atol=1e-6)
    np.testing.assert_allclose(jacobian_augmentation(substitute, x, labels, lam, direction=-1) - x,
                               -lam * expected, atol=1e-6)


def test_augmentation_raises_the_substitutes_confidence_in_the_label(digits, substitute):
    x, labels = digits.x_test[:40], substitute.predict(digits.x_test[:40]).argmax(axis=1)
    before = substitute.predict(x)[np.arange(40), labels]
    after = substitute.predict(jacobian_augmentation(substitute, x, labels, 0.01))[np.arange(40), labels]
    assert np.mean(after >= before) > 0.8


def test_augmentation_clips_to_the_valid_range(digits, substitute):
    x = np.concatenate([np.zeros((4, *digits.input_shape)), np.ones((4, *digits.input_shape)),
                        digits.x_test[:4]]).astype(np.float32)
    labels = np.arange(12) % 10
    x_new = jacobian_augmentation(substitute, x, labels, 1.0)
    assert x_new.min() >= 0.0 and x_new.max() <= 1.0
    assert set(np.unique(x_new[:8])) <= {0.0, 1.0}  # a full step from 0 or 1 ends on a bound
    assert not np.array_equal(x_new, x)


@pytest.mark.parametrize("lam", [0, -0.1, 1.5, float("nan"), True, "0.1"])
def test_augmentation_rejects_lambda_outside_its_range(digits, substitute, lam):
    with pytest.raises(ValueError, match="lam must be a number in \\(0, 1\\]"):
        jacobian_augmentation(substitute, digits.x_test[:2], np.array([0, 1]), lam)


def test_augmentation_rejects_bad_shapes_and_labels(digits, substitute):
    x = digits.x_test[:3]
    with pytest.raises(ValueError, match="shape"):
        jacobian_augmentation(substitute, x[:, :8, :8], np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="labels must be 3 integer"):
        jacobian_augmentation(substitute, x, np.array([0, 1]))
    with pytest.raises(ValueError, match="labels must be 3 integer"):
        jacobian_augmentation(substitute, x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="labels must be in \\[0, 9\\]"):
        jacobian_augmentation(substitute, x, np.array([0, 1, 10]))
    with pytest.raises(ValueError, match="direction"):
        jacobian_augmentation(substitute, x, np.array([0, 1, 2]), direction=0)


# --- the substitute loop and the helpers -----------------------------------------------------------------------

def test_substitute_training_doubles_the_set_and_counts_the_queries(digits, victim):
    labkit.set_seed(0)
    oracle = LabelOracle(victim)
    reference = victim.predict(digits.x_test).argmax(axis=1)
    result = extraction.train_jacobian_substitute(oracle, digits.x_train[:10], rounds=3, lam=0.1, epochs=1,
                                                  x_eval=digits.x_test, y_eval=reference, progress=False)
    assert oracle.n_queries == 40 and oracle.calls == [10, 10, 20]
    table = result.table()
    assert list(table["points"]) == [10, 20, 40] and list(table["queries"]) == [10, 20, 40]
    assert table["agreement"].between(0, 1).all()
    assert result.x.shape == (40, *digits.input_shape) and result.x.min() >= 0 and result.x.max() <= 1
    np.testing.assert_array_equal(result.labels, victim.predict(result.x).argmax(axis=1))
    np.testing.assert_array_equal(result.x[:10], digits.x_train[:10])


def test_substitute_training_stops_at_the_oracles_budget(digits, victim):
    with pytest.raises(QueryBudgetExceeded):
        extraction.train_jacobian_substitute(LabelOracle(victim, budget=30), digits.x_train[:10], rounds=3,
                                             epochs=1, progress=False)


@pytest.mark.parametrize("kwargs, match", [({"rounds": 0}, "rounds"), ({"lam": 2.0}, "lam"), ({"tau": 0}, "tau"),
                                           ({"x_eval": np.zeros((2, 16, 16, 1))}, "both x_eval and y_eval")])
def test_substitute_training_rejects_bad_settings(digits, victim, kwargs, match):
    with pytest.raises(ValueError, match=match):
        extraction.train_jacobian_substitute(LabelOracle(victim), digits.x_train[:4], progress=False, **kwargs)


def test_agreement_compares_labels(digits, victim):
    labels = victim.predict(digits.x_test).argmax(axis=1)
    assert extraction.agreement(victim, digits.x_test, labels) == 1.0
    shifted = (labels + 1) % 10
    assert extraction.agreement(victim, digits.x_test, shifted) == 0.0
    assert extraction.agreement(LabelOracle(victim), digits.x_test, np.eye(10)[labels]) == 1.0
    with pytest.raises(ValueError, match="labels"):
        extraction.agreement(victim, digits.x_test, labels[:-1])


def test_reset_substitute_forgets_training_but_keeps_the_learning_rate(digits, victim):
    labkit.set_seed(0)
    model = extraction.new_substitute(digits.input_shape, learning_rate=3e-3)
    model.fit(digits.x_train, np.eye(10)[digits.y_train], nb_epochs=3, batch_size=32)
    trained = [w.copy() for w in model.model.get_weights()]
    extraction.reset_substitute(model)
    optimizer = model.model.optimizer
    assert int(optimizer.iterations.numpy()) == 0
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(3e-3)
    assert all(not np.allclose(a, b) for a, b in zip(trained, model.model.get_weights()) if a.ndim > 1)
    assert labkit.accuracy(model, digits.x_test, digits.y_test) < 0.5


def test_natural_patches_are_images_in_range_and_seeded():
    a = extraction.natural_patches(30, (16, 16, 1), seed=3)
    assert a.shape == (30, 16, 16, 1) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, extraction.natural_patches(30, (16, 16, 1), seed=3))
    assert extraction.natural_patches(4, (8, 8, 3)).shape == (4, 8, 8, 3)
    with pytest.raises(ValueError, match="input_shape"):
        extraction.natural_patches(4, (16, 16))
    with pytest.raises(ValueError, match="n must be"):
        extraction.natural_patches(0, (16, 16, 1))


def test_plot_agreement_draws_one_line_per_method():
    fig = extraction.plot_agreement({"a": ([10, 20], [0.5, 0.7]), "b": ([10, 20], [0.2, 0.3])}, budget=20)
    assert len(fig.axes[0].lines) == 4  # two curves, the target line and the budget line
    with pytest.raises(ValueError, match="query counts"):
        extraction.plot_agreement({"a": ([10, 20], [0.5])})


def test_transfer_sweep_starts_at_clean_accuracy_and_falls_with_eps(digits, victim, substitute):
    table = extraction.transfer_sweep(victim, {"thief": substitute}, digits.x_test, digits.y_test, [0.0, 0.1, 0.3])
    assert list(table.columns) == ["thief", "white-box"] and list(table.index) == [0.0, 0.1, 0.3]
    clean = labkit.accuracy(victim, digits.x_test, digits.y_test)
    assert table.loc[0.0].tolist() == [clean, clean]
    assert table.loc[0.3, "white-box"] < table.loc[0.0, "white-box"]
    assert table.loc[0.3, "thief"] <= table.loc[0.0, "thief"]
    assert len(extraction.plot_transfer(table, eps=0.1).axes[0].lines) == 4  # two models, the eps and goal lines


@pytest.mark.parametrize("eps", [-0.1, 1.5, True, "0.1"])
def test_transfer_sweep_rejects_eps_outside_its_range(digits, victim, eps):
    with pytest.raises(ValueError, match="every eps in eps_values must be (a number )?in \\[0, 1\\]"):
        extraction.transfer_sweep(victim, {}, digits.x_test, digits.y_test, [0.1, eps])
