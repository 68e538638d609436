"""Model extraction: a label-only oracle that counts queries, and Papernot et al.'s substitute training.

The victim sits behind a :class:`LabelOracle`: the thief sends images and gets back labels only (no
probabilities), and every image sent is one query. ART's ``CopycatCNN`` and ``KnockoffNets`` query it
through :meth:`LabelOracle.as_art_classifier`. ART has no Jacobian-based dataset augmentation
(Papernot et al., 2017, "Practical Black-Box Attacks against Machine Learning"), so it lives here,
built on the substitute's Keras model (one gradient per image, not ART's all-class ``class_gradient``).
The two figures (``plot_agreement``, ``plot_transfer``) live in ``labkit._extraction_plots`` and are served from
here, where notebook 06 calls them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from labkit._extraction_plots import plot_agreement, plot_transfer
from labkit.data import check_images, check_labels
from labkit.evasion import check_eps

__all__ = [
    "LabelOracle", "QueryBudgetExceeded", "new_substitute", "reset_substitute", "natural_patches",
    "jacobian_augmentation", "train_jacobian_substitute", "SubstituteResult", "agreement", "transfer_sweep",
    "plot_agreement", "plot_transfer",
]


class QueryBudgetExceeded(RuntimeError):
    """The thief asked the oracle for more labels than its query budget allows."""


class LabelOracle:
    """A black-box view of a victim classifier: labels only, and a count of every image queried.

    ``query(x)`` returns integer labels, never probabilities. ``as_art_classifier()`` gives the same
    oracle as an ART ``BlackBoxClassifier`` whose ``predict`` returns one-hot labels, so ART's extraction
    attacks can query it; their queries are counted too.

    :param victim: the model to hide: an ART classifier (anything with ``predict``, ``input_shape``, ``nb_classes``).
    :param budget: the most images the oracle answers in total; None for no limit.
    """

    def __init__(self, victim: Any, *, budget: int | None = None) -> None:
        if not hasattr(victim, "predict"):
            raise ValueError(f"the victim must be a classifier with a predict method, got {type(victim).__name__}")
        if budget is not None and (not isinstance(budget, (int, np.integer)) or isinstance(budget, bool)
                                   or budget < 1):
            raise ValueError(f"budget must be a positive integer number of queries, or None; got {budget!r}")
        self._victim = victim
        self.input_shape: tuple[int, ...] = tuple(victim.input_shape)
        self.nb_classes: int = int(victim.nb_classes)
        self.budget = None if budget is None else int(budget)
        self.n_queries = 0
        self.calls: list[int] = []

    def __repr__(self) -> str:
        limit = "no budget" if self.budget is None else f"budget {self.budget}"
        return f"LabelOracle({self.n_queries} queries so far, {limit}, labels only)"

    def query(self, x: np.ndarray) -> np.ndarray:
        """Return the victim's label for each image in ``x`` (int64, shape (n,)) and count n queries.

        :param x: a batch of images, shape (n, *input_shape), values in [0, 1].
        """
        x = check_images(x, self.input_shape)
        n = len(x)
        if self.budget is not None and self.n_queries + n > self.budget:
            raise QueryBudgetExceeded(
                f"{n} more queries would exceed the budget of {self.budget} ({self.n_queries} used); "
                f"query fewer images or raise the budget"
            )
        self.n_queries += n
        self.calls.append(n)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self._victim.predict(x), dtype=np.float64).argmax(axis=1).astype(np.int64)

    def query_one_hot(self, x: np.ndarray) -> np.ndarray:
        """Return ``query(x)`` one-hot encoded (float32, shape (n, nb_classes)): what ART's attacks receive."""
        return np.eye(self.nb_classes, dtype=np.float32)[self.query(x)]

    def as_art_classifier(self) -> Any:
        """Return this oracle as an ART ``BlackBoxClassifier`` whose ``predict`` gives one-hot labels (and counts)."""
        from art.estimators.classification import BlackBoxClassifier

        return BlackBoxClassifier(self.query_one_hot, input_shape=self.input_shape, nb_classes=self.nb_classes,
                                  clip_values=(0.0, 1.0))


def new_substitute(input_shape: tuple[int, ...], nb_classes: int = 10, **build_kwargs: Any) -> Any:
    """Return a fresh, untrained lab CNN wrapped as an ART ``KerasClassifier``: the thief's model.

    :param input_shape: shape of one image, (height, width, channels).
    :param nb_classes: number of classes.
    :param build_kwargs: passed on to ``labkit.models.build_model`` (hidden, dropout, learning_rate).
    """
    from labkit.models import build_model, wrap_model

    return wrap_model(build_model(tuple(input_shape), nb_classes, **build_kwargs))


def reset_substitute(classifier: Any) -> Any:
    """Re-initialise a lab CNN's weights and its optimizer's state in place, and return the classifier.

    The result trains like a fresh ``new_substitute``, but Keras keeps its compiled training step, which
    saves seconds of tracing per budget when one thief is retrained at several query budgets.

    :param classifier: an ART ``KerasClassifier`` around a compiled Keras model (e.g. from ``new_substitute``).
    """
    import keras

    model = getattr(classifier, "model", None)
    if model is None or not hasattr(model, "layers"):
        raise ValueError(f"expected an ART KerasClassifier around a Keras model, got {type(classifier).__name__}")
    for layer in model.layers:
        for name in ("kernel", "bias"):
            variable, initializer = getattr(layer, name, None), getattr(layer, f"{name}_initializer", None)
            if variable is not None and initializer is not None:
                variable.assign(initializer(tuple(variable.shape), dtype=variable.dtype))
    optimizer = getattr(model, "optimizer", None)
    for variable in getattr(optimizer, "variables", []):
        if variable.name != "learning_rate":  # moments and the step counter; the learning rate stays
            variable.assign(keras.ops.zeros(tuple(variable.shape), dtype=variable.dtype))
    return classifier


def natural_patches(n: int, input_shape: tuple[int, ...], *, seed: int = 0,
                    sizes: Sequence[int] = (16, 24, 32, 48, 64, 96)) -> np.ndarray:
    """Return ``n`` crops of natural photos resized to ``input_shape``: a thief's out-of-domain query pool.

    The crops come from the two photos that ship with scikit-learn (``load_sample_images``), so they need no
    download. They are the kind of "transfer set" from a different distribution that Knockoff Nets and
    Copycat CNN query with: no digits at all.

    :param n: how many images.
    :param input_shape: shape of one image, (height, width, channels) with 1 or 3 channels.
    :param seed: seed of the crop positions and sizes.
    :param sizes: side lengths (in photo pixels) of the square crops, before resizing.
    """
    import tensorflow as tf
    from sklearn.datasets import load_sample_images

    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ValueError(f"input_shape must be (height, width, 1 or 3 channels), got {tuple(input_shape)}")
    photos = [np.asarray(image, dtype=np.float32) / 255.0 for image in load_sample_images().images]
    if input_shape[-1] == 1:
        photos = [photo @ np.array([0.299, 0.587, 0.114], dtype=np.float32) for photo in photos]
        photos = [photo[..., None] for photo in photos]
    rng = np.random.default_rng(seed)
    size_of = rng.choice(np.asarray(sizes), size=n)
    out = np.empty((n, *input_shape), dtype=np.float32)
    for size in np.unique(size_of):
        where = np.flatnonzero(size_of == size)
        crops = []
        for _ in where:
            photo = photos[rng.integers(len(photos))]
            row = rng.integers(photo.shape[0] - size + 1)
            col = rng.integers(photo.shape[1] - size + 1)
            crops.append(photo[row:row + size, col:col + size])
        out[where] = tf.image.resize(np.stack(crops), input_shape[:2], method="area").numpy()
    return np.clip(out, 0.0, 1.0)


def _check_step(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1] (a step in pixel units of [0, 1] images), got {value!r}")
    return float(value)


def jacobian_augmentation(substitute: Any, x: np.ndarray, labels: np.ndarray, lam: float = 0.1, *,
                          direction: int = 1, batch_size: int = 256) -> np.ndarray:
    """Return Papernot et al.'s new points: ``clip(x + direction * lam * sign(dF_label(x)/dx), 0, 1)``.

    ``F_label`` is the substitute's output (softmax probability) for the oracle's label of each image:
    stepping along the sign of its gradient moves the point towards where the substitute's decision
    changes, which is where the oracle's next labels teach the most.

    :param substitute: an ART classifier with ``class_gradient`` (the thief's current model).
    :param x: the current substitute training images, shape (n, *input_shape), in [0, 1].
    :param labels: the oracle's labels for ``x``, integers, shape (n,).
    :param lam: the step size lambda, in (0, 1].
    :param direction: +1 or -1 (Papernot's periodic step size flips the sign every tau rounds).
    :param batch_size: images per gradient computation.
    """
    lam = _check_step("lam", lam)
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    x = check_images(x, tuple(substitute.input_shape))
    labels = np.asarray(labels)
    if labels.shape != (len(x),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {len(x)} integer class indices, shape ({len(x)},); got {labels.dtype} "
                         f"array of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= substitute.nb_classes):
        raise ValueError(f"labels must be in [0, {substitute.nb_classes - 1}], got range "
                         f"[{labels.min()}, {labels.max()}]")
    signs = np.empty_like(x)
    for start in range(0, len(x), batch_size):
        part = slice(start, start + batch_size)
        signs[part] = np.sign(_label_gradient(substitute, x[part], labels[part]))
    return np.clip(x + direction * lam * signs, 0.0, 1.0).astype(np.float32)


def _label_gradient(substitute: Any, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Return ``dF_label(x)/dx`` per image in one backward pass: ART's ``class_gradient`` builds every class's
    gradient side by side (``batch_jacobian``), about 0.5 GB more at 06's rounds. In inference mode an image's
    output depends on that image only, so the gradient of the summed chosen outputs is each image's own."""
    if not hasattr(getattr(substitute, "model", None), "layers"):  # not a Keras model: ART's own code
        return substitute.class_gradient(x, label=labels)[:, 0]
    import tensorflow as tf

    x_pre, _ = substitute._apply_preprocessing(x, y=None, fit=False)
    xt = tf.convert_to_tensor(x_pre, dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        chosen = tf.reduce_sum(substitute.model(xt, training=False) * tf.one_hot(labels, substitute.nb_classes))
    return substitute._apply_preprocessing_gradient(x, tape.gradient(chosen, xt).numpy())


@dataclass
class SubstituteResult:
    """What Jacobian-based substitute training returns: the model, its data, and one row per round."""

    classifier: Any
    x: np.ndarray
    labels: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)

    def table(self) -> Any:
        """Return the history as a pandas DataFrame (one row per round)."""
        import pandas as pd

        return pd.DataFrame(self.history).set_index("round")


def train_jacobian_substitute(oracle: LabelOracle, x_seed: np.ndarray, *, rounds: int = 5, lam: float = 0.1,
                              tau: int | None = None, epochs: int = 10, batch_size: int = 64,
                              substitute: Any = None, x_eval: np.ndarray | None = None,
                              y_eval: np.ndarray | None = None, progress: bool = True) -> SubstituteResult:
    """Train a substitute by Papernot et al.'s Jacobian-based dataset augmentation, querying only ``oracle``.

    Round 0 asks the oracle to label the seed images and trains the substitute on them; every later
    round adds one new point per point (``jacobian_augmentation`` of the current substitute), asks the
    oracle to label the new ones and trains on the doubled set. The substitute keeps its weights
    between rounds. ``history`` holds one row per round: points, queries so far, agreement.

    :param oracle: the label-only oracle; its counter tells the queries.
    :param x_seed: the thief's few unlabelled seed images.
    :param rounds: training rounds; the last one trains on ``len(x_seed) * 2 ** (rounds - 1)`` points, all queried.
    :param lam: the augmentation step size lambda, in (0, 1].
    :param tau: flip the step's sign every ``tau`` rounds (Papernot's periodic step); None never flips.
    :param epochs: training epochs per round.
    :param batch_size: images per gradient step.
    :param substitute: the untrained thief's model (default: ``new_substitute`` of the oracle's shape).
    :param x_eval: images on which to measure agreement with ``y_eval`` after every round (optional).
    :param y_eval: the victim's labels for ``x_eval`` (the grader's view; not queries).
    :param progress: draw a progress bar over rounds.
    """
    from tqdm.auto import tqdm

    lam = _check_step("lam", lam)
    if not isinstance(rounds, (int, np.integer)) or isinstance(rounds, bool) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if tau is not None and (not isinstance(tau, (int, np.integer)) or tau < 1):
        raise ValueError(f"tau must be a positive integer or None, got {tau!r}")
    if (x_eval is None) != (y_eval is None):
        raise ValueError("pass both x_eval and y_eval (the victim's labels for x_eval), or neither")
    x = check_images(x_seed, oracle.input_shape, what="x_seed").copy()
    if len(x) == 0:
        raise ValueError("x_seed is empty: the thief needs at least one seed image")
    if substitute is None:
        substitute = new_substitute(oracle.input_shape, oracle.nb_classes)
    start = oracle.n_queries
    labels = oracle.query(x)
    history: list[dict[str, float]] = []
    eye = np.eye(oracle.nb_classes, dtype=np.float32)
    bar = tqdm(range(rounds), desc="Jacobian augmentation", unit="round", disable=not progress)
    for rho in bar:
        substitute.fit(x, eye[labels], nb_epochs=epochs, batch_size=batch_size)
        if rho == rounds - 1:
            break
        direction = -1 if tau is not None and (rho // tau) % 2 == 1 else 1
        x_new = jacobian_augmentation(substitute, x, labels, lam, direction=direction)
        row = _round_row(rho, x, oracle.n_queries - start, substitute, x_eval, y_eval)
        history.append(row)
        bar.set_postfix(queries=row["queries"], agreement=f"{row.get('agreement', float('nan')):.2f}")
        labels = np.concatenate([labels, oracle.query(x_new)])
        x = np.concatenate([x, x_new])
    history.append(_round_row(rounds - 1, x, oracle.n_queries - start, substitute, x_eval, y_eval))
    bar.close()
    return SubstituteResult(substitute, x, labels, history)


def _round_row(rho: int, x: np.ndarray, queries: int, substitute: Any, x_eval: np.ndarray | None,
               y_eval: np.ndarray | None) -> dict[str, float]:
    row: dict[str, float] = {"round": rho, "points": len(x), "queries": queries}
    if x_eval is not None:
        row["agreement"] = agreement(substitute, x_eval, y_eval)
    return row


def agreement(substitute: Any, x: np.ndarray, reference_labels: np.ndarray, *, batch_size: int = 256) -> float:
    """Return the share of images on which ``substitute`` predicts the same label as the reference.

    :param substitute: an ART classifier (or a :class:`LabelOracle`).
    :param x: images.
    :param reference_labels: the victim's labels for ``x``, integers shape (n,) or one-hot.
    :param batch_size: images per forward pass.
    """
    reference = check_labels(reference_labels, len(x), what="reference_labels")
    if len(x) == 0:
        raise ValueError("cannot measure agreement over zero images")
    if isinstance(substitute, LabelOracle):
        predicted = substitute.query(x)
    else:
        predicted = np.asarray(substitute.predict(np.asarray(x, dtype=np.float32), batch_size=batch_size)).argmax(1)
    return float(np.mean(predicted == reference))


def transfer_sweep(victim: Any, substitutes: dict[str, Any], x: np.ndarray, y: np.ndarray,
                   eps_values: Sequence[float]) -> Any:
    """Return the victim's accuracy on FGSM images crafted on each substitute, for each eps (a DataFrame).

    One column per substitute plus ``"white-box"`` (FGSM on the victim itself, the attacker's best
    case); one row per eps. eps = 0 is the victim's clean accuracy.

    :param victim: the victim classifier (used for the accuracy, and for the white-box column).
    :param substitutes: ``{name: ART classifier}``, the thieves' models.
    :param x: clean test images.
    :param y: their true labels.
    :param eps_values: FGSM strengths, each in [0, 1].
    """
    import pandas as pd
    from art.attacks.evasion import FastGradientMethod

    from labkit.models import accuracy

    eps_values = [check_eps(eps, what="every eps in eps_values") for eps in eps_values]
    if not eps_values:
        raise ValueError("eps_values is empty: pass a few strengths, e.g. [0, 0.05, 0.1, 0.15, 0.2]")
    x = check_images(x, tuple(victim.input_shape))
    models = {**substitutes, "white-box": victim}
    table = {}
    for name, model in models.items():
        table[name] = [accuracy(victim, x, y) if eps == 0 else
                       accuracy(victim, FastGradientMethod(model, eps=eps, batch_size=256).generate(x), y)
                       for eps in eps_values]
    return pd.DataFrame(table, index=pd.Index(eps_values, name="eps"))
