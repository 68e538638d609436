"""Neural Cleanse's trigger search, compiled: reverse-engineer a trigger for every class at once.

For each candidate target class k, Neural Cleanse (Wang et al., 2019) looks for the smallest mask m_k
(H x W, shared across channels, values in [0, 1]) and a pattern p_k such that stamping
``(1 - m_k) * x + m_k * p_k`` on clean images makes the model answer k. It minimises
``cross-entropy(k) + cost_k * |m_k|_1`` with Adam, and adapts ``cost_k`` as the paper does: up when the
reversed trigger already succeeds (>= ``attack_success_threshold``) for ``patience`` epochs, down when
it fails. A backdoored class needs a much smaller mask than a clean one.

Here all classes are optimised together in one compiled TensorFlow step: every class has its own mask,
pattern, cost and Adam state, stacked along a leading class axis, and one forward pass of the model
covers the validation batch stamped with all classes' triggers. The module also holds the results
(``Detection`` with its two plots, ``Backdoor``, ``FlaggedClass``) and ART's outlier rule (``outlier_rule``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

__all__ = ["TriggerSearch", "Detection", "Backdoor", "FlaggedClass", "outlier_rule", "THRESHOLD",
           "CONSISTENCY_CONSTANT"]

_EPS = 1e-7  # keras.backend.epsilon(), as in the paper's code and ART
THRESHOLD = 2.0
"""A class is flagged when its anomaly index exceeds this (and its mask norm is at most the median)."""
CONSISTENCY_CONSTANT = 1.4826
"""Scales the median absolute deviation to a standard deviation for normally distributed norms."""


class TriggerSearch:
    """Reverse-engineer (mask, pattern) triggers for several target classes of one Keras model, all at once.

    :param model: a Keras model (softmax probabilities, or logits with ``use_logits=True``).
    :param input_shape: the shape of one image, (H, W, C).
    :param classes: the target classes to search.
    :param nb_classes: the number of classes of the model.
    :param use_logits: True when the model outputs logits.
    :param learning_rate: Adam's learning rate (the paper: 0.1, with beta_1 0.5 and beta_2 0.9).
    :param init_cost: the starting weight of the mask-norm penalty.
    :param norm: 1 (the paper's L1 penalty) or 2.
    :param attack_success_threshold: success rate a reversed trigger must reach to count.
    :param patience: epochs before the cost goes up or down.
    :param cost_multiplier: factor by which the cost goes up (it goes down by ``cost_multiplier ** 1.5``).
    :param early_stop: stop when every class's cost went up once and its best mask then stopped shrinking.
    :param early_stop_threshold: a best mask "stopped shrinking" unless its norm falls below this share of the best.
    :param early_stop_patience: epochs without shrinking before a class counts as done.
    :param batch_size: validation images per step.
    :param seed: seed of the initial masks and patterns and of the batches.
    """

    def __init__(self, model: Any, input_shape: Sequence[int], classes: Sequence[int], *, nb_classes: int,
                 use_logits: bool = False, learning_rate: float = 0.1, init_cost: float = 1e-3, norm: int = 1,
                 attack_success_threshold: float = 0.99, patience: int = 5, cost_multiplier: float = 1.5,
                 early_stop: bool = True, early_stop_threshold: float = 0.99, early_stop_patience: int = 10,
                 batch_size: int = 32, seed: int = 0) -> None:
        import tensorflow as tf

        if norm not in (1, 2):
            raise ValueError(f"norm must be 1 (the paper's L1 penalty) or 2, got {norm!r}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.model = model
        self.classes = [int(c) for c in classes]
        self.input_shape = tuple(int(d) for d in input_shape)
        self.nb_classes, self.use_logits, self.norm = int(nb_classes), bool(use_logits), int(norm)
        self.learning_rate, self.init_cost = float(learning_rate), float(init_cost)
        self.attack_success_threshold, self.patience = float(attack_success_threshold), int(patience)
        self.cost_multiplier_up, self.cost_multiplier_down = float(cost_multiplier), float(cost_multiplier) ** 1.5
        self.early_stop, self.early_stop_threshold = bool(early_stop), float(early_stop_threshold)
        self.early_stop_patience, self.batch_size, self.seed = int(early_stop_patience), int(batch_size), int(seed)
        k = len(self.classes)
        height, width, channels = self.input_shape
        zeros = lambda *shape: tf.Variable(tf.zeros(shape, tf.float32), trainable=False)  # noqa: E731
        self._mask_raw, self._pattern_raw = zeros(k, height, width, 1), zeros(k, height, width, channels)
        self._adam = [zeros(k, height, width, 1), zeros(k, height, width, 1),
                      zeros(k, height, width, channels), zeros(k, height, width, channels)]
        self._t = tf.Variable(0.0, trainable=False)
        self._cost = tf.Variable(tf.zeros((k,), tf.float32), trainable=False)
        self._onehot = tf.constant(np.eye(self.nb_classes, dtype=np.float32)[self.classes])
        spec = tf.TensorSpec((self.batch_size, height, width, channels), tf.float32)
        self._step = tf.function(self._train_step, input_signature=[spec], reduce_retracing=True)
        self.reset()

    def reset(self) -> None:
        """Re-draw the masks and patterns, zero the Adam moments and step count, and set every cost to init_cost.

        The learning rate is a constant of the search and is left alone.
        """
        rng = np.random.default_rng(self.seed)
        to_raw = lambda u: np.arctanh((u - 0.5) * (2.0 - _EPS)).astype(np.float32)  # noqa: E731
        self._mask_raw.assign(to_raw(rng.uniform(size=self._mask_raw.shape)))
        self._pattern_raw.assign(to_raw(rng.uniform(size=self._pattern_raw.shape)))
        for slot in self._adam:
            slot.assign(np.zeros(slot.shape, np.float32))
        self._t.assign(0.0)
        self._cost.assign(np.full(len(self.classes), self.init_cost, np.float32))

    def masks(self) -> np.ndarray:
        """Return the current masks, (K, H, W, 1), values in [0, 1]."""
        return self._squash(self._mask_raw).numpy()

    def patterns(self) -> np.ndarray:
        """Return the current patterns, (K, H, W, C), values in [0, 1]."""
        return self._squash(self._pattern_raw).numpy()

    @staticmethod
    def _squash(raw: Any) -> Any:
        import tensorflow as tf

        return tf.tanh(raw) / (2.0 - _EPS) + 0.5

    def _train_step(self, x: Any) -> tuple[Any, Any]:
        """One Adam step for every class on a batch ``x``; return each class's success rate and mask L1 norm."""
        import tensorflow as tf

        k, b = len(self.classes), self.batch_size
        with tf.GradientTape() as tape:
            tape.watch([self._mask_raw, self._pattern_raw])
            mask, pattern = self._squash(self._mask_raw), self._squash(self._pattern_raw)
            stamped = (1.0 - mask)[:, None] * x[None] + (mask * pattern)[:, None]  # (K, B, H, W, C)
            out = self.model(tf.reshape(stamped, (k * b, *self.input_shape)), training=False)
            out = tf.reshape(out, (k, b, self.nb_classes))
            target = self._onehot[:, None, :]
            if self.use_logits:
                cross_entropy = tf.reduce_logsumexp(out, axis=-1) - tf.reduce_sum(out * target, axis=-1)
            else:
                cross_entropy = -tf.math.log(tf.clip_by_value(tf.reduce_sum(out * target, axis=-1), _EPS, 1.0))
            l1 = tf.reduce_sum(tf.abs(mask), axis=[1, 2, 3])
            penalty = l1 if self.norm == 1 else tf.sqrt(tf.reduce_sum(tf.square(mask), axis=[1, 2, 3]))
            loss = tf.reduce_sum(tf.reduce_mean(cross_entropy, axis=1) + self._cost * penalty)
        grads = tape.gradient(loss, [self._mask_raw, self._pattern_raw])
        self._t.assign_add(1.0)
        beta_1, beta_2 = 0.5, 0.9
        rate = self.learning_rate * tf.sqrt(1.0 - beta_2 ** self._t) / (1.0 - beta_1 ** self._t)
        pairs = ((self._mask_raw, grads[0], *self._adam[:2]), (self._pattern_raw, grads[1], *self._adam[2:]))
        for var, grad, m, v in pairs:
            m.assign(beta_1 * m + (1.0 - beta_1) * grad)
            v.assign(beta_2 * v + (1.0 - beta_2) * tf.square(grad))
            var.assign_sub(rate * m / (tf.sqrt(v) + _EPS))
        hits = tf.cast(tf.equal(tf.argmax(out, axis=-1, output_type=tf.int32),
                                tf.argmax(self._onehot, axis=-1, output_type=tf.int32)[:, None]), tf.float32)
        return tf.reduce_mean(hits, axis=1), l1

    def _batches(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Index batches for one epoch: a permutation, wrapped around so every batch is full."""
        steps = self.steps_per_epoch(n)
        order = np.concatenate([rng.permutation(n) for _ in range(math.ceil(steps * self.batch_size / n))])
        return order[: steps * self.batch_size].reshape(steps, self.batch_size)

    def steps_per_epoch(self, n: int) -> int:
        """Return the optimisation steps of one pass over ``n`` images: ``ceil(n / batch_size)``."""
        return max(1, math.ceil(int(n) / self.batch_size))

    def run(self, x: np.ndarray, epochs: int, *, progress: bool = True, desc: str = "Neural Cleanse") -> "Detection":
        """Search for at most ``epochs`` passes over ``x`` (fewer with early stopping); return the best triggers.

        The budget is counted in passes over the defender's data, as ART counts its ``steps``, so the same
        budget is the same work per image on a small and on a large defender's set. One pass is
        ``ceil(n / batch_size)`` optimisation steps, each one Adam update of every class on ``batch_size``
        images; the cost schedule and the early stop look at epoch averages.

        :param x: clean validation images, (n, H, W, C) in [0, 1].
        :param epochs: the maximum number of passes over ``x``.
        :param progress: draw a progress bar.
        :param desc: the progress bar's label.
        """
        import tensorflow as tf
        from tqdm.auto import tqdm

        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ValueError(f"epochs must be a positive number of passes over the defender's data, got {epochs!r}")
        start = time.perf_counter()
        self.reset()
        x = tf.constant(np.asarray(x, dtype=np.float32))
        rng = np.random.default_rng(self.seed)
        k = len(self.classes)
        state = _Schedule(k, self)
        best_mask, best_pattern = self.masks(), self.patterns()
        done_steps = done_epochs = 0
        with tqdm(total=int(epochs), desc=desc, unit="epoch", disable=not progress, leave=False) as bar:
            while done_epochs < epochs:
                batches = self._batches(int(x.shape[0]), rng)
                acc, l1 = np.zeros(k), np.zeros(k)
                for index in batches:
                    batch_acc, batch_l1 = self._step(tf.gather(x, index))
                    acc += batch_acc.numpy()
                    l1 += batch_l1.numpy()
                done_steps += len(batches)
                done_epochs += 1
                bar.update(1)
                improved = state.record(acc / len(batches), l1 / len(batches))
                if improved.any():
                    best_mask[improved], best_pattern[improved] = self.masks()[improved], self.patterns()[improved]
                self._cost.assign(state.cost.astype(np.float32))
                bar.set_postfix(found=f"{int(np.isfinite(state.best_l1).sum())}/{k}", cost=f"{state.cost.mean():.2g}")
                if self.early_stop and state.all_done():
                    break
        missing = ~np.isfinite(state.best_l1)
        if missing.any():  # never reached the threshold: keep the last mask, as ART does
            best_mask[missing], best_pattern[missing] = self.masks()[missing], self.patterns()[missing]
            state.best_acc[missing] = state.last_acc[missing]
        l1_norms = best_mask.reshape(k, -1).sum(axis=1)
        index, flagged = outlier_rule(l1_norms) if k >= 2 else (np.zeros(k), [])
        return Detection(l1_norms, index, [self.classes[i] for i in flagged], best_mask, best_pattern,
                         state.best_acc.copy(), time.perf_counter() - start, done_steps, done_epochs,
                         bool(done_epochs < epochs))


class _Schedule:
    """The paper's per-class cost schedule and early stop, vectorised over classes (numpy, once per epoch)."""

    def __init__(self, k: int, search: TriggerSearch) -> None:
        self.s = search
        self.cost = np.full(k, search.init_cost)
        self.up_counter, self.down_counter = np.zeros(k, int), np.zeros(k, int)
        self.up_flag, self.down_flag = np.zeros(k, bool), np.zeros(k, bool)
        self.best_l1, self.best_acc = np.full(k, np.inf), np.zeros(k)
        self.early_best, self.early_counter = np.full(k, np.inf), np.zeros(k, int)
        self.last_acc = np.zeros(k)

    def record(self, acc: np.ndarray, l1: np.ndarray) -> np.ndarray:
        """Take one epoch's average success and L1 norm; update costs; return which classes improved their best."""
        s = self.s
        self.last_acc = acc
        success = acc >= s.attack_success_threshold
        improved = success & (l1 < self.best_l1)
        self.best_l1 = np.where(improved, l1, self.best_l1)
        self.best_acc = np.where(improved, acc, self.best_acc)
        found = np.isfinite(self.best_l1)
        stalled = self.best_l1 >= s.early_stop_threshold * self.early_best
        self.early_counter = np.where(found, np.where(stalled, self.early_counter + 1, 0), self.early_counter)
        self.early_best = np.minimum(self.early_best, self.best_l1)
        self.up_counter = np.where(success, self.up_counter + 1, 0)
        self.down_counter = np.where(success, 0, self.down_counter + 1)
        go_up, go_down = self.up_counter >= s.patience, self.down_counter >= s.patience
        self.cost = np.where(go_up, self.cost * s.cost_multiplier_up, self.cost)
        self.cost = np.where(go_down, self.cost / s.cost_multiplier_down, self.cost)
        self.up_flag |= go_up
        self.down_flag |= go_down
        self.up_counter[go_up] = 0
        self.down_counter[go_down] = 0
        return improved

    def all_done(self) -> bool:
        """True when every class's cost went up at least once and its best mask has stopped shrinking since.

        The paper (and ART) also wait for each cost to come down once. A class whose reversed trigger keeps
        working as its cost climbs may not come down within the budget: on MNIST-sized data (labkit's scratch
        runs) the backdoored class had not after 60 passes, its best mask unchanged for the last 28, and on
        digits the search of a clean model did not stop within 120 passes; so that rule seldom ended a search.
        """
        return bool(np.all(self.up_flag & (self.early_counter >= self.s.early_stop_patience)))


class Backdoor(NamedTuple):
    """A reversed trigger: ``pattern`` (H, W, C) and ``mask`` (H, W, 1), both in [0, 1]."""

    pattern: np.ndarray
    mask: np.ndarray


class FlaggedClass(NamedTuple):
    """A class Neural Cleanse suspects, with its reversed trigger (ART's ``outlier_detection`` order)."""

    label: int
    mask: np.ndarray
    pattern: np.ndarray


@dataclass
class Detection:
    """The result of a trigger search with the outlier rule applied: Neural Cleanse's detection, with its pictures.

    ``masks`` (K, H, W, 1) and ``patterns`` (K, H, W, C), values in [0, 1], are the best reversed triggers of
    the K searched classes; ``l1_norms`` the sum of each mask; ``anomaly_index`` = |L1 - median| / (1.4826 x
    MAD) over the searched classes (zeros when only one was searched); ``flagged_classes`` the classes with
    anomaly index > 2 and L1 <= median; ``attack_success`` the share of the defender's images each reversed
    trigger sends to its class (averaged over the pass in which that mask was recorded); ``seconds`` the
    search's wall time; ``steps`` and ``epochs`` the optimisation steps and passes over the defender's data it
    ran; ``stopped_early`` whether early stopping ended it before its budget. A detection searches every class,
    so index c of each array is class c.
    """

    l1_norms: np.ndarray
    anomaly_index: np.ndarray
    flagged_classes: list[int]
    masks: np.ndarray
    patterns: np.ndarray
    attack_success: np.ndarray
    seconds: float
    steps: int
    epochs: int = 0
    stopped_early: bool = False

    def plot_triggers(self, class_names: Sequence[str] | None = None, *, title: str = "") -> Any:
        """Show each class's reversed mask (top row) and what it paints, mask x pattern (bottom row).

        :param class_names: a name per class for the titles.
        :param title: a title over the figure.
        """
        from labkit.poisoning import two_row_grid

        names = list(class_names) if class_names is not None else [str(c) for c in range(len(self.l1_norms))]
        titles = [f"{names[c]}{' (flagged)' if c in self.flagged_classes else ''}\nL1 {self.l1_norms[c]:.1f}"
                  for c in range(len(names))]
        return two_row_grid(self.masks, self.masks * self.patterns, titles, ("mask", "mask x pattern"),
                            suptitle=title or "Reversed trigger of each class")

    def plot_anomaly_index(self, class_names: Sequence[str] | None = None, *, title: str = "",
                           threshold: float = THRESHOLD) -> Any:
        """Bar chart of the anomaly index per class with the threshold line; flagged bars vermillion, cross-hatched.

        Bars of classes whose L1 norm is above the median (never flagged, whatever the index) are pale and
        hatched with slashes.

        :param class_names: a name per class for the x axis.
        :param title: the chart's title.
        :param threshold: where to draw the threshold line.
        """
        from labkit.plots import ALERT, NEUTRAL, subplots

        k = len(self.l1_norms)
        names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
        above = self.l1_norms > np.median(self.l1_norms)
        fig, ax = subplots(figsize=(6.5, 3.4))
        bars = ax.bar(range(k), self.anomaly_index, color=NEUTRAL, edgecolor="#333333", linewidth=0.6)
        for c, (bar, hatched) in enumerate(zip(bars, above)):
            if c in self.flagged_classes:   # colour and hatch: flagged bars stand out without colour too
                bar.set(facecolor=ALERT, edgecolor="#333333", hatch="xx",
                        label="flagged" if c == self.flagged_classes[0] else None)
            elif hatched:
                bar.set(hatch="//", alpha=0.5)
        ax.axhline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:g}")
        ax.set_ylim(0, max(1.25 * threshold, 1.1 * float(np.max(self.anomaly_index))))
        ax.set_xticks(range(k), names)
        ax.set_xlabel("class (hatched: mask larger than the median, never flagged)")
        ax.set_ylabel("anomaly index")
        ax.set_title(title or f"Neural Cleanse: flagged {self.flagged_classes or 'nothing'}")
        ax.legend(loc="upper right")
        fig.tight_layout()
        return fig


def outlier_rule(l1_norms: Sequence[float], threshold: float = THRESHOLD) -> tuple[np.ndarray, list[int]]:
    """Apply ART's outlier rule to per-class mask norms; return (anomaly index per class, flagged classes).

    The anomaly index of a class is |L1 - median| / (1.4826 x median absolute deviation); a class is flagged
    when its index exceeds ``threshold`` and its L1 norm is at most the median (a backdoor needs a small
    trigger). When every norm equals the median the deviation is 0 and every index is 0 (nothing stands out).

    :param l1_norms: the L1 norm of each class's reversed mask.
    :param threshold: the anomaly-index threshold (2 in the paper and ART).
    """
    norms = np.asarray(l1_norms, dtype=np.float64)
    if norms.ndim != 1 or len(norms) < 2 or not np.all(np.isfinite(norms)):
        raise ValueError(f"l1_norms must be a list of at least 2 finite numbers, got {l1_norms!r}")
    median = np.median(norms)
    mad = CONSISTENCY_CONSTANT * np.median(np.abs(norms - median))
    deviation = np.abs(norms - median)
    index = np.where(deviation == 0, 0.0, deviation / max(mad, 1e-12))
    flagged = [c for c in range(len(norms)) if norms[c] <= median and index[c] > threshold]
    return index, flagged
