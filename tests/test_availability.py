"""Availability poisoning of an SVM: ART's attack through labkit's wrapper, label flipping, the helpers, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from art.attacks.poisoning import PoisoningAttackSVM
from art.estimators.classification.scikitlearn import ScikitlearnSVC
from sklearn.svm import SVC

import labkit
from labkit import availability as av

# make_svc passes probability=False, which scikit-learn 1.9 warns about (see labkit.availability)
pytestmark = pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning")


def _onehot(y):
    return np.eye(2)[np.asarray(y)]


@pytest.fixture(scope="module")
def task():
    return av.binary_task(labkit.load_dataset(n_train=400, n_test=200), (1, 8), seed=0)


def test_binary_task_flattens_two_classes_and_holds_out_the_attackers_validation(task):
    assert task.classes == (1, 8)
    assert task.x_train.ndim == 2 and task.x_train.shape[1] == 256
    for y in (task.y_train, task.y_val, task.y_test):
        assert set(np.unique(y)) == {0, 1}
    assert len(task.x_val) == pytest.approx(0.25 * (len(task.x_train) + len(task.x_val)), abs=1)
    rows = {row.tobytes() for row in task.x_train}
    assert not any(row.tobytes() in rows for row in task.x_val), "validation points must not be training points"


def test_fast_q_submatrix_is_arts_matrix(task):
    for kernel in ("linear", "rbf"):
        model = av.make_svc(kernel, C=1.0).fit(task.x_train, task.y_train)
        fast, art = av.wrap_svc(model), ScikitlearnSVC(model=model, clip_values=(0.0, 1.0))
        rows, cols = task.x_val[:7], model.support_vectors_[:9]
        np.testing.assert_allclose(fast.q_submatrix(rows, cols), art.q_submatrix(rows, cols), rtol=1e-9, atol=1e-9)


def test_art_predict_works_through_make_svc(task):
    svc = av.wrap_svc(av.make_svc("linear", C=1.0))
    svc.fit(task.x_train, _onehot(task.y_train))
    probs = svc.predict(task.x_test)
    assert probs.shape == (len(task.x_test), 2)
    assert np.mean(probs.argmax(axis=1) == task.y_test) > 0.8


def test_poison_starts_flip_the_labels_and_larger_draws_extend_smaller_ones(task):
    x, y = av.poison_starts(task, 5, seed=3)
    x_big, y_big = av.poison_starts(task, 9, seed=3)
    np.testing.assert_array_equal(x, x_big[:5])
    np.testing.assert_array_equal(y, y_big[:5])
    for point, label in zip(x, y):
        match = np.flatnonzero(np.all(task.x_train == point, axis=1))
        assert len(match) and np.all(task.y_train[match] == 1 - label)


def test_art_svm_attack_lowers_the_test_accuracy_on_a_small_problem(task):
    clean = av.svm_accuracy(task, C=10.0)
    svc = av.wrap_svc(av.make_svc("linear", C=10.0))
    svc.fit(task.x_train, _onehot(task.y_train))
    x0, y0 = av.poison_starts(task, 8, seed=0)
    np.random.seed(0)  # ART's gradient adds a little random noise to a matrix before inverting it
    attack = PoisoningAttackSVM(svc, step=0.5, eps=1e9, x_train=task.x_train, y_train=_onehot(task.y_train),
                                x_val=task.x_val, y_val=_onehot(task.y_val), max_iter=15, verbose=False)
    x_poison, y_poison = attack.poison(x0.copy(), y=_onehot(y0))
    assert x_poison.shape == x0.shape and x_poison.min() >= 0.0 and x_poison.max() <= 1.0
    assert not np.allclose(x_poison, x0), "the attack must move its points"
    np.testing.assert_array_equal(y_poison.argmax(axis=1), y0)
    poisoned = av.svm_accuracy(task, x_poison, y_poison, C=10.0)
    assert poisoned < clean - 0.02, f"clean {clean:.3f}, poisoned {poisoned:.3f}"
    curve = av.accuracy_curve(task, x_poison, y_poison, [0, 8], C=10.0)
    assert curve[0] == clean and curve[1] == poisoned
    fitted = av.make_svc("linear", C=10.0).fit(np.vstack([task.x_train, x_poison]),
                                               np.r_[task.y_train, y_poison.argmax(axis=1)])
    for on in ("val", "train"):   # the same fresh SVC, scored on another split
        expected = fitted.score(getattr(task, f"x_{on}"), getattr(task, f"y_{on}"))
        assert av.svm_accuracy(task, x_poison, y_poison, C=10.0, on=on) == expected


def _hinge(task, point, label, C):
    model = SVC(kernel="linear", C=C, tol=1e-10, probability=False)
    model.fit(np.vstack([task.x_train, point]), np.append(task.y_train, label))
    y = 2 * task.y_val - 1
    return np.maximum(0.0, 1.0 - y * model.decision_function(task.x_val)).sum(), model


def test_paper_gradient_matches_finite_differences_and_arts_does_not(task):
    C = 10.0
    x0, y0 = av.poison_starts(task, 1, seed=1)
    _, model = _hinge(task, x0, y0[0], C)
    svc = av.wrap_svc(model)
    kwargs = dict(step=0.5, eps=1e9, x_train=task.x_train, y_train=_onehot(task.y_train), x_val=task.x_val,
                  y_val=_onehot(task.y_val), max_iter=5, verbose=False)
    ours = av.PaperGradientPoisoningSVM(svc, **kwargs).attack_gradient(x0)[0]
    np.random.seed(0)
    arts = PoisoningAttackSVM(svc, **kwargs).attack_gradient(x0)[0]
    h, eye = 1e-4, np.eye(x0.shape[1])
    numeric = np.array([(_hinge(task, x0 + h * eye[i], y0[0], C)[0] - _hinge(task, x0 - h * eye[i], y0[0], C)[0])
                        / (2 * h) for i in range(x0.shape[1])])

    def cosine(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    assert np.linalg.norm(numeric) > 0
    assert cosine(ours, numeric) > 0.95
    assert 0.8 < np.linalg.norm(ours) / np.linalg.norm(numeric) < 1.25
    # the notebook and the module docstring say ART 1.20.1's gradient is nearly orthogonal to the true one;
    # if this fails, ART has changed: update them
    assert abs(cosine(arts, numeric)) < 0.5


def test_plot_draws_one_line_per_attack_and_the_budget(task):
    fig = av.plot_accuracy_curves([0, 2, 4], {"a": np.array([0.9, 0.8, 0.7]), "b": np.array([[0.9, 0.9, 0.8],
                                                                                              [0.9, 0.8, 0.8]])},
                                  n_train=100, budget=3)
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # two attacks and the budget line
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.9, 0.85, 0.8])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.03, 1.5])
def test_poison_fraction_outside_the_open_unit_interval_is_refused(fraction):
    with pytest.raises(ValueError, match="poison_fraction must be in \\(0, 1\\)"):
        av.n_poison_points(200, fraction)


def test_poison_points_for_a_budget():
    assert av.n_poison_points(200, 0.03) == 6
    assert av.n_poison_points(10, 0.03) == 1


def test_bad_input_raises_clear_errors(task):
    data = labkit.load_dataset(n_train=100, n_test=50)
    with pytest.raises(ValueError, match="class indices in \\[0, 9\\]"):
        av.binary_task(data, (1, 10))
    with pytest.raises(ValueError, match="two different class indices"):
        av.binary_task(data, (3, 3))
    with pytest.raises(ValueError, match="val_fraction must be in"):
        av.binary_task(data, (1, 7), val_fraction=1.0)
    with pytest.raises(ValueError, match="kernel must be"):
        av.make_svc("sigmoid")
    with pytest.raises(ValueError, match="C must be > 0"):
        av.make_svc("linear", C=0.0)
    with pytest.raises(ValueError, match="n_poison must be an integer"):
        av.poison_starts(task, len(task.x_train) + 1)
    with pytest.raises(ValueError, match="on must be 'test', 'val' or 'train'"):
        av.svm_accuracy(task, on="validation")
    with pytest.raises(ValueError, match="x_poison must have shape"):
        av.svm_accuracy(task, np.zeros((2, 64)), np.array([0, 1]))
    x_two = np.zeros((2, task.x_train.shape[1]))
    with pytest.raises(ValueError, match="x_poison has 2 images but y_poison has 3 labels"):
        av.svm_accuracy(task, x_two, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 1\]"):
        av.svm_accuracy(task, x_two, np.array([0, 2]))
    with pytest.raises(ValueError, match="counts must lie in"):
        av.accuracy_curve(task, task.x_train[:3], task.y_train[:3], [0, 4])
