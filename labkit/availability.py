"""Availability poisoning of a support vector machine: ART's ``PoisoningAttackSVM`` against label flipping.

An *availability* attack does not aim at one input: it adds a few training points that lower the test
accuracy of whatever the victim trains. Biggio et al. (2012) compute where to put such a point for an SVM by
gradient ascent on the validation hinge loss; ART implements it as ``PoisoningAttackSVM``. Steinhardt et al.
(2017) report that adding 3% of poisoned points drives a linear SVM on IMDB reviews from 12% to 23% test
error, while MNIST 1-vs-7 resisted. The naive baseline at the same budget is label flipping: copies of
training points with the other label.

Found by reading ART 1.20.1's source: ``ScikitlearnSVC.predict`` calls ``predict_proba`` whenever
``SVC.probability`` is truthy, and scikit-learn 1.9's default for it is the string ``"deprecated"``, so
``make_svc`` passes ``probability=False``; ``ScikitlearnSVC.q_submatrix`` builds a kernel matrix one pair of
points at a time in Python, which makes the attack take minutes, so ``FastScikitlearnSVC`` computes the same
matrix in one call; and ``PoisoningAttackSVM.attack_gradient`` is not the paper's gradient (it is nearly
orthogonal to it), so ``PaperGradientPoisoningSVM`` provides the paper's, checked by finite differences.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from art.attacks.poisoning import PoisoningAttackSVM
from art.estimators.classification.scikitlearn import ScikitlearnSVC

__all__ = [
    "BinaryTask", "binary_task", "make_svc", "FastScikitlearnSVC", "PaperGradientPoisoningSVM", "wrap_svc",
    "n_poison_points", "poison_starts", "svm_accuracy", "accuracy_curve", "plot_accuracy_curves",
]

# passing probability=False is the way to keep ART's predict working; scikit-learn 1.9 warns about the argument
warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated", category=FutureWarning)


@dataclass
class BinaryTask:
    """A two-class problem on flattened images: labels 0 / 1 stand for ``classes[0]`` / ``classes[1]``.

    ``x_val`` / ``y_val`` are held out of the training split: the attacker's own data, which the victim
    never trains on.
    """

    classes: tuple[int, int]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def __repr__(self) -> str:
        return (f"BinaryTask({self.classes[0]} vs {self.classes[1]}: {len(self.x_train)} train / {len(self.x_val)} "
                f"attacker validation / {len(self.x_test)} test points of {self.x_train.shape[1]} features)")


def binary_task(data: Any, classes: Sequence[int], *, val_fraction: float = 0.25, seed: int = 0) -> BinaryTask:
    """Cut a two-class problem out of a ``labkit.Dataset``: images flattened, labels 0 and 1.

    :param data: a ``labkit.Dataset``.
    :param classes: the two classes, e.g. ``(1, 7)``.
    :param val_fraction: share of the two-class training images held out as the attacker's validation set.
    :param seed: seed of the hold-out split.
    """
    from sklearn.model_selection import train_test_split

    classes = tuple(int(c) for c in classes)
    if len(classes) != 2 or classes[0] == classes[1]:
        raise ValueError(f"classes must be two different class indices, got {classes}")
    if not all(0 <= c < data.nb_classes for c in classes):
        raise ValueError(f"classes must be class indices in [0, {data.nb_classes - 1}], got {classes}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")

    def cut(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = np.isin(y, classes)
        return x[keep].reshape(int(keep.sum()), -1).astype(np.float64), (y[keep] == classes[1]).astype(np.int64)

    x, y = cut(data.x_train, data.y_train)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=val_fraction, stratify=y, random_state=seed)
    return BinaryTask(classes, x_train, y_train, x_val, y_val, *cut(data.x_test, data.y_test))


def make_svc(kernel: str = "linear", C: float = 1.0) -> Any:
    """Return an unfitted scikit-learn ``SVC`` that ART's wrapper can use (``probability=False``, see above).

    :param kernel: ``"linear"`` (ART's attack gradient is exact for it) or ``"rbf"``.
    :param C: the SVM's regularisation constant.
    """
    from sklearn.svm import SVC

    if kernel not in ("linear", "rbf"):
        raise ValueError(f"kernel must be 'linear' or 'rbf', got {kernel!r}")
    if not C > 0:
        raise ValueError(f"C must be > 0, got {C}")
    return SVC(kernel=kernel, C=C, probability=False)


class FastScikitlearnSVC(ScikitlearnSVC):
    """ART's ``ScikitlearnSVC`` with a vectorised ``q_submatrix``: the same numbers, many times quicker.

    ART computes the matrix one pair of points at a time in Python; this class computes it with one kernel call
    (for a linear kernel, with matrix products and no scikit-learn call at all).
    """

    def q_submatrix(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Return Q[i, j] = K(rows[i], cols[j]) * y_i * y_j, y being the model's predictions mapped to {-1, 1}.

        ART's definition (``ScikitlearnSVC.q_submatrix``); for a linear kernel K(a, b) = a . b and the
        prediction is the sign of the decision function, both computed here in NumPy.

        :param rows: the row vectors.
        :param cols: the column vectors.
        """
        model = self.model
        rows, cols = np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64)
        if getattr(model, "kernel", None) == "linear" and len(getattr(model, "classes_", ())) == 2:
            w = model.dual_coef_[0] @ model.support_vectors_  # decision(x) = w . x + b for a linear kernel
            y_row = np.where(rows @ w + model.intercept_[0] > 0, 1, -1)
            y_col = np.where(cols @ w + model.intercept_[0] > 0, 1, -1)
            return (rows @ cols.T) * y_row[:, None] * y_col[None, :]
        y_row = np.where(model.predict(rows) == 0, -1, 1)  # other kernels: ART's formula, one kernel call
        y_col = np.where(model.predict(cols) == 0, -1, 1)
        return self._kernel(rows, cols) * y_row[:, None] * y_col[None, :]


class PaperGradientPoisoningSVM(PoisoningAttackSVM):
    """ART's ``PoisoningAttackSVM`` with the gradient of Biggio et al. (2012, Eq. 10) for a linear kernel.

    ART's loop (``poison``, ``generate_attack_point``: step, clip, refit) is kept; only ``attack_gradient`` is
    replaced. ART 1.20.1's own gradient drops the label signs of the paper's Q terms and sums over every
    validation point; on the lab's digits it is at a right angle to the true gradient of the validation hinge
    loss (cosine near 0, see the notebook and tests), so its steps barely raise that loss.
    """

    def attack_gradient(self, attack_point: np.ndarray, tol: float = 1e-4) -> np.ndarray:
        """Return the gradient of the validation hinge loss sum_k max(0, 1 - y_k f(x_k)) at the attack point.

        The model must be fitted on ``x_train`` plus the attack point as its last row (ART's loop does so).
        With the margin support vectors S kept on the margin as the point moves, the KKT conditions give
        [0, y_S^T; y_S, Q_SS] [db; da_S] = -[0; dQ_Sc/du] alpha_c (solved by least squares), and
        dL/du = -sum_k (Q_kS da_S + dQ_kc/du alpha_c + y_k db) over the validation points with margin < 1.

        :param attack_point: the current attack point, shape (1, features).
        :param tol: alphas within ``tol * C`` of 0 or C do not count as margin support vectors.
        """
        model = self.estimator.model
        if getattr(model, "kernel", None) != "linear":
            raise NotImplementedError("the paper's gradient is implemented for a linear kernel only")
        x = np.vstack([self.x_train, attack_point])
        c = len(x) - 1
        signed = np.zeros(len(x))
        signed[model.support_] = model.dual_coef_[0]  # y_i * alpha_i; y = +1 for label 1
        if signed[c] == 0:  # the point is no support vector: it does not move the SVM
            return np.zeros_like(attack_point, dtype=np.float64)
        alpha, y = np.abs(signed), np.where(np.argmax(self.y_train, axis=1) == 1, 1.0, -1.0)
        y_c = np.sign(signed[c])
        margin = np.flatnonzero((alpha > tol * model.C) & (alpha < (1 - tol) * model.C))
        margin = margin[margin != c]
        y_s, x_s = y[margin], x[margin]
        system = np.zeros((len(margin) + 1, len(margin) + 1))
        system[0, 1:], system[1:, 0], system[1:, 1:] = y_s, y_s, np.outer(y_s, y_s) * (x_s @ x_s.T)
        rhs = np.vstack([np.zeros((1, x.shape[1])), -alpha[c] * (y_s * y_c)[:, None] * x_s])
        solution = np.linalg.lstsq(system, rhs, rcond=None)[0]
        d_b, d_alpha = solution[0], solution[1:]
        y_k = np.where(np.argmax(self.y_val, axis=1) == 1, 1.0, -1.0)
        hurt = y_k * model.decision_function(self.x_val) < 1
        x_k, y_k = self.x_val[hurt], y_k[hurt]
        q_ks = np.outer(y_k, y_s) * (x_k @ x_s.T)
        d_g = q_ks @ d_alpha + alpha[c] * (y_k * y_c)[:, None] * x_k + np.outer(y_k, d_b)
        return -d_g.sum(axis=0, keepdims=True)


def wrap_svc(model: Any) -> FastScikitlearnSVC:
    """Wrap a scikit-learn ``SVC`` as ART's SVM classifier (``FastScikitlearnSVC``, ``clip_values=(0, 1)``)."""
    return FastScikitlearnSVC(model=model, clip_values=(0.0, 1.0))


def n_poison_points(n_train: int, poison_fraction: float) -> int:
    """Return the number of poison points for a budget: ``round(poison_fraction * n_train)``, at least 1.

    :param n_train: size of the clean training set.
    :param poison_fraction: poison points per clean training point, in (0, 1) (Steinhardt et al.'s epsilon).
    """
    if not 0.0 < poison_fraction < 1.0:
        raise ValueError(f"poison_fraction must be in (0, 1), e.g. 0.03 for 3%; got {poison_fraction}")
    if n_train < 1:
        raise ValueError(f"n_train must be positive, got {n_train}")
    return max(1, int(round(poison_fraction * n_train)))


def poison_starts(task: BinaryTask, n_poison: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_poison`` training points and give them the other label: the start of both attacks.

    Added to the training set as they are, they *are* the label-flipping attack; ``PoisoningAttackSVM``
    moves them first.

    :param task: the two-class problem.
    :param n_poison: how many points.
    :param seed: seed of the draw.
    :return: the points (copies) and their flipped labels (0 / 1).
    """
    if not isinstance(n_poison, (int, np.integer)) or not 1 <= n_poison <= len(task.x_train):
        raise ValueError(f"n_poison must be an integer in [1, {len(task.x_train)}], got {n_poison!r}")
    idx = np.random.default_rng(seed).permutation(len(task.x_train))[:n_poison]  # prefixes of a larger draw agree
    return task.x_train[idx].copy(), 1 - task.y_train[idx]


def svm_accuracy(task: BinaryTask, x_poison: np.ndarray | None = None, y_poison: np.ndarray | None = None, *,
                 kernel: str = "linear", C: float = 1.0, on: str = "test") -> float:
    """Train a fresh SVC on the training set plus the poison points; return its accuracy (on the test set).

    :param task: the two-class problem.
    :param x_poison: poison points to add (flattened), or None for the clean model.
    :param y_poison: their labels, 0 / 1 or one-hot.
    :param kernel: the SVC's kernel.
    :param C: the SVC's regularisation constant.
    :param on: the split the accuracy is measured on: "test" (the result), "val" or "train".
    """
    if on not in ("test", "val", "train"):
        raise ValueError(f"on must be 'test', 'val' or 'train', got {on!r}")
    x, y = task.x_train, task.y_train
    if x_poison is not None and len(x_poison):
        from labkit.data import check_labels

        if np.asarray(x_poison).shape[1:] != x.shape[1:]:
            raise ValueError(f"x_poison must have shape (n, {x.shape[1]}), flattened like task.x_train, got "
                             f"{np.asarray(x_poison).shape}")
        y_poison = check_labels(y_poison, len(x_poison), what="y_poison", nb_classes=2, images="x_poison")
        x, y = np.vstack([x, x_poison]), np.concatenate([y, y_poison])
    return float(make_svc(kernel, C).fit(x, y).score(getattr(task, f"x_{on}"), getattr(task, f"y_{on}")))


def accuracy_curve(task: BinaryTask, x_poison: np.ndarray, y_poison: np.ndarray, counts: Sequence[int], *,
                   kernel: str = "linear", C: float = 1.0) -> np.ndarray:
    """Return the test accuracy with the first k poison points added, for each k in ``counts``.

    ``PoisoningAttackSVM`` optimises every point against the clean training set, independently of the
    others, so the first k points of a run are what a run with k points gives.

    :param task: the two-class problem.
    :param x_poison: the poison points, in the order they were made.
    :param y_poison: their labels.
    :param counts: numbers of points (0 is the clean model).
    :param kernel: the SVC's kernel.
    :param C: the SVC's regularisation constant.
    """
    if any(not 0 <= k <= len(x_poison) for k in counts):
        raise ValueError(f"counts must lie in [0, {len(x_poison)}], got {list(counts)}")
    return np.array([svm_accuracy(task, x_poison[:k], y_poison[:k], kernel=kernel, C=C) for k in counts])


def plot_accuracy_curves(counts: Sequence[int], curves: dict[str, np.ndarray], *, n_train: int,
                         budget: int | None = None, title: str | None = None) -> Any:
    """Plot test accuracy against the number of poison points, one line per attack; return the figure.

    :param counts: the numbers of poison points (x axis).
    :param curves: attack name -> accuracies (one per count); an array of shape (draws, counts) is drawn as
        its mean with a band from its minimum to its maximum.
    :param n_train: size of the clean training set (for the top axis, in %).
    :param budget: a number of points to mark with a vertical line (e.g. the 3% budget).
    :param title: the figure title.
    """
    from labkit.plots import REFERENCE, series_style, subplots

    counts = np.asarray(counts)
    fig, ax = subplots(figsize=(6.5, 4.0))
    for i, (name, acc) in enumerate(curves.items()):
        acc = np.atleast_2d(np.asarray(acc, dtype=float))
        look = series_style(i)
        ax.plot(counts, acc.mean(axis=0), label=name, **look)
        if len(acc) > 1:
            ax.fill_between(counts, acc.min(axis=0), acc.max(axis=0), color=look["color"], alpha=0.2)
    if budget is not None:
        ax.axvline(budget, color=REFERENCE, ls=":", lw=1, label=f"{budget} points = {100 * budget / n_train:.0f}%")
    ax.set(xlabel="poison points added", ylabel="test accuracy", title=title)
    top = ax.secondary_xaxis("top", functions=(lambda k: 100 * k / n_train, lambda p: p * n_train / 100))
    top.set_xlabel("% of the clean training set")
    ax.legend()
    fig.tight_layout()
    return fig
