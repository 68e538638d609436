"""Clean-label poisoning by feature collision ("Poison Frogs", Shafahi et al. 2018), in TensorFlow.

ART 1.20.1's ``FeatureCollisionAttack`` accepts only PyTorch classifiers, so labkit implements the paper's
Algorithm 1 here for the lab's Keras model. A poison starts as a *base* image of the base class and is
moved until its penultimate-layer features (the Dense ``features`` layer) collide with those of a *target*
test image, while a proximal step keeps it close to the base image. The poison keeps the base label (a
clean label). A victim that fine-tunes its last layer on data holding the poisons learns "these features
mean the base class", and the target follows.

| Paper: A. Shafahi et al., "Poison Frogs! Targeted Clean-Label Poisoning Attacks on Neural Networks",
  NeurIPS 2018, https://arxiv.org/abs/1804.00792
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labkit.data import check_images, check_labels
from labkit.models import FEATURES_LAYER

__all__ = [
    "feature_extractor", "features_of", "paper_beta", "watermark", "pick_targets", "nearest_bases",
    "feature_collision", "craft_poisons", "perturbation_linf", "last_layer_copy", "fine_tune_last_layer",
    "poison_frogs_trials", "triplet_grid",
]


def _is_int(n: Any) -> bool:
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool)


def feature_extractor(classifier: Any, layer: str = FEATURES_LAYER) -> Any:
    """Return a Keras model from the images to the activations of ``layer``: f(.) in the paper.

    :param classifier: an ART ``KerasClassifier`` (or a plain Keras model) built by ``labkit.build_model``.
    :param layer: the layer whose output is the feature space (default: the penultimate ``features`` layer).
    """
    import keras

    model = getattr(classifier, "model", classifier)
    try:
        output = model.get_layer(layer).output
    except ValueError as err:
        names = ", ".join(lay.name for lay in model.layers)
        raise ValueError(f"the model has no layer named {layer!r}; its layers are: {names}") from err
    return keras.Model(model.inputs[0], output, name=f"{model.name}_{layer}")


def features_of(extractor: Any, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Return the features of the images ``x`` (NHWC in [0, 1]) under ``extractor``, by direct calls in batches."""
    x = check_images(x, tuple(extractor.input_shape[1:]))
    parts = [np.asarray(extractor(x[i:i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, extractor.output_shape[-1]), np.float32)


def paper_beta(feature_dim: int, input_dim: int, beta0: float = 0.25) -> float:
    """Return the paper's weight of the proximal step, ``beta0 * feature_dim**2 / input_dim**2``.

    Shafahi et al. (Sec. 4.1) take beta0 = 0.25 for 2048 Inception-v3 features and scale beta with the
    squared ratio of the feature dimension to the input dimension; ART's ``FeatureCollisionAttack`` scales
    its ``similarity_coeff`` (default 256) the same way. The lab's CNN on 16x16 digits: ``paper_beta(64, 256)``.

    :param feature_dim: width of the feature layer (64 for the lab's CNN).
    :param input_dim: number of input values per image (16*16*1 = 256 for the default digits).
    :param beta0: the dimension-free weight.
    """
    if feature_dim <= 0 or input_dim <= 0:
        raise ValueError(f"feature_dim and input_dim must be positive, got {feature_dim} and {input_dim}")
    if not beta0 > 0:
        raise ValueError(f"beta0 must be > 0, got {beta0}; the paper uses 0.25")
    return float(beta0 * feature_dim**2 / input_dim**2)


def watermark(bases: np.ndarray, target: np.ndarray, opacity: float) -> np.ndarray:
    """Blend the target into the bases: ``(1 - opacity) * base + opacity * target`` (the paper's Sec. 4.2 trick).

    :param bases: base images, NHWC in [0, 1].
    :param target: one target image, HWC (or 1HWC).
    :param opacity: the target's weight in [0, 1); the paper uses 0.2 to 0.3 for end-to-end training.
    """
    if not 0.0 <= opacity < 1.0:
        raise ValueError(f"opacity must be in [0, 1), got {opacity}; the paper uses 0.2 to 0.3, 0 turns it off")
    bases = np.asarray(bases, dtype=np.float32)
    target = np.asarray(target, dtype=np.float32).reshape(bases.shape[1:])
    return ((1.0 - opacity) * bases + opacity * target[None]).astype(np.float32)


def pick_targets(classifier: Any, x: np.ndarray, y: np.ndarray, n_targets: int, *,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n_targets`` images the classifier gets right, at random, and a base class for each.

    The base class of a target is its runner-up, the class the classifier finds second most likely (the
    paper pairs one target class with one base class; the runner-up is the easiest base for each target).

    :param classifier: the victim, an ART classifier.
    :param x: candidate target images (the test set), with integer labels ``y``.
    :param n_targets: how many targets; ``seed``: seed of the random choice.
    :return: the indices of the targets in ``x`` and their base classes.
    """
    y = check_labels(y, len(x), nb_classes=classifier.nb_classes)
    probs = classifier.predict(check_images(x, classifier.input_shape))
    correct = np.flatnonzero(probs.argmax(axis=1) == y)
    if not _is_int(n_targets) or not 1 <= n_targets <= len(correct):
        raise ValueError(f"n_targets must be an integer in [1, {len(correct)}] (the images classified right), "
                         f"got {n_targets!r}")
    targets = np.sort(np.random.default_rng(seed).choice(correct, n_targets, replace=False))
    return targets, np.argsort(-probs[targets], axis=1, kind="stable")[:, 1]


def nearest_bases(train_features: np.ndarray, y_train: np.ndarray, target_features: np.ndarray, base_class: int,
                  n: int, *, nb_classes: int) -> np.ndarray:
    """Return the indices of the ``n`` training images of ``base_class`` nearest the target in feature space.

    The nearest bases have the least way to go (the paper draws bases at random).

    :param train_features: features of the training images, (n_train, features), with labels ``y_train``.
    :param target_features: the target's features, (features,).
    :param base_class: the class whose images become poisons, out of ``nb_classes``.
    :param n: how many bases.
    """
    if not _is_int(base_class) or not 0 <= base_class < nb_classes:
        raise ValueError(f"base_class must be a class index in [0, {nb_classes - 1}], got {base_class!r}")
    pool = np.flatnonzero(np.asarray(y_train).reshape(-1) == base_class)
    if not _is_int(n) or not 1 <= n <= len(pool):
        raise ValueError(f"n must be an integer in [1, {len(pool)}] (training images of class {base_class}), got {n!r}")
    distances = np.sum((train_features[pool] - np.asarray(target_features).reshape(1, -1)) ** 2, axis=1)
    return pool[np.argsort(distances, kind="stable")[:n]]


def perturbation_linf(poisons: np.ndarray, bases: np.ndarray) -> np.ndarray:
    """Return each poison's L-inf distance to its base image, max |poison - base| over its pixels."""
    poisons, bases = np.asarray(poisons), np.asarray(bases)
    if poisons.shape != bases.shape:
        raise ValueError(f"poisons {poisons.shape} and bases {bases.shape} must have the same shape")
    return np.abs(poisons - bases).reshape(len(poisons), -1).max(axis=1)


def _steps_function(extractor: Any) -> Any:
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(x, anchors, target_features, learning_rate, beta, lower, upper, n_steps):
        losses = tf.TensorArray(tf.float32, size=n_steps)
        for i in tf.range(n_steps):
            # forward step: gradient descent on L_p(x) = ||f(x) - f(t)||^2 (Algorithm 1, line 4)
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.square(extractor(x, training=False) - target_features), axis=1)
                total = tf.reduce_sum(loss)  # poisons are independent: the sum's gradient is each one's own
            x_hat = x - learning_rate * tape.gradient(total, x)
            # backward (proximal) step: argmin_x ||x - x_hat||^2 / (2 lr) + beta/2 ||x - b||^2 (Algorithm 1, line 5)
            x = (x_hat + learning_rate * beta * anchors) / (1.0 + beta * learning_rate)
            # valid pixels in [0, 1], and within eps of the anchor when a bound is set (not in the paper)
            x = tf.clip_by_value(x, lower, upper)
            losses = losses.write(i, loss)
        return x, losses.stack()

    return run


def feature_collision(extractor: Any, bases: np.ndarray, target_features: np.ndarray, *, learning_rate: float,
                      beta: float, max_iter: int = 500, eps: float | None = None,
                      progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Run the paper's forward-backward splitting (Algorithm 1) on a batch of poisons at once.

    Each iteration takes a gradient step on ``||f(x) - f(t)||^2``, then the proximal step
    ``x = (x_hat + lr * beta * b) / (1 + beta * lr)`` towards the base ``b``, then clips to [0, 1] (and,
    if ``eps`` is set, to ``[b - eps, b + eps]``: an L-inf bound that Algorithm 1 does not have and later
    benchmarks such as Schwarzschild et al. 2021 add). Poisons are independent, so a batch of them, even
    for different targets, is optimised in one call.

    :param extractor: the feature model f, from ``feature_extractor``.
    :param bases: the base images b (start points and anchors), NHWC in [0, 1].
    :param target_features: f(t), shape (features,) or one row per base (n, features).
    :param learning_rate: the step size lambda of the gradient step, > 0.
    :param beta: weight of the pull towards the base, >= 0 (see ``paper_beta``).
    :param max_iter: number of iterations.
    :param eps: L-inf bound on each poison's distance to its base, in (0, 1], or None.
    :param progress: draw a progress bar.
    :return: the poisons and the feature loss ``||f(x) - f(t)||^2`` before each iteration and at the end,
        shape (max_iter + 1, n).
    """
    import tensorflow as tf
    from tqdm.auto import tqdm

    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate}; try 1e-3")
    if not (np.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be >= 0 (0: no pull towards the base), got {beta}; see paper_beta()")
    if not _is_int(max_iter) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if eps is not None and not 0.0 < eps <= 1.0:
        raise ValueError(f"eps must be in (0, 1] (or None for no bound), got {eps}")
    bases = check_images(bases, tuple(extractor.input_shape[1:]), what="bases")
    width = int(extractor.output_shape[-1])
    target_features = np.asarray(target_features, dtype=np.float32)
    if target_features.shape not in {(width,), (len(bases), width)}:
        raise ValueError(f"target_features has shape {target_features.shape}; expected ({width},) or "
                         f"({len(bases)}, {width})")
    run = _steps_function(extractor)
    x = b = tf.convert_to_tensor(bases)
    t = tf.convert_to_tensor(np.broadcast_to(target_features, (len(bases), width)))
    lower, upper = (0.0, 1.0) if eps is None else (tf.maximum(b - eps, 0.0), tf.minimum(b + eps, 1.0))
    lower, upper = lower + tf.zeros_like(b), upper + tf.zeros_like(b)
    lr, bt = tf.constant(learning_rate, tf.float32), tf.constant(beta, tf.float32)
    losses = []
    with tqdm(total=max_iter, desc="feature collision", unit="step", disable=not progress, leave=False) as bar:
        for done in range(0, max_iter, 50):  # 50 steps per tf.function call, then update the bar
            n = min(50, max_iter - done)
            x, loss = run(x, b, t, lr, bt, lower, upper, tf.constant(n, tf.int32))
            losses.append(loss.numpy())
            bar.update(n)
    final = tf.reduce_sum(tf.square(extractor(x, training=False) - t), axis=1).numpy()
    return x.numpy(), np.vstack(losses + [final[None]])


def craft_poisons(classifier: Any, target: np.ndarray, bases: np.ndarray, base_labels: np.ndarray, *,
                  learning_rate: float = 1e-3, beta: float = 0.0156, eps: float | None = 0.2, max_iter: int = 500,
                  opacity: float = 0.0, progress: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn base images into poisons against one target (Algorithm 1 on the ``features`` layer).

    :param classifier: the victim, an ART ``KerasClassifier`` built by ``labkit.build_model``.
    :param target: the target image, (1, *shape); ``bases``: base images, NHWC in [0, 1].
    :param base_labels: the bases' correct labels; the poisons keep them (a clean label).
    :param learning_rate, beta, max_iter, progress: as in ``feature_collision``.
    :param eps: L-inf bound on the distance to the (watermarked) base, or None.
    :param opacity: watermark opacity, 0 for none (see ``watermark``).
    :return: the poisons, their labels (``base_labels``, unchanged) and the feature loss per iteration.
    """
    bases = check_images(bases, classifier.input_shape, what="bases")
    target = check_images(target, classifier.input_shape, what="target")
    if len(target) != 1:
        raise ValueError(f"give one target image, shape (1, {', '.join(map(str, bases.shape[1:]))}); got {len(target)}")
    labels = np.asarray(base_labels).reshape(-1)
    if len(labels) != len(bases):
        raise ValueError(f"{len(bases)} bases but {len(labels)} base labels; give one label per base")
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= classifier.nb_classes:
        raise ValueError(f"base labels must be class indices in [0, {classifier.nb_classes - 1}], got {labels}")
    extractor = feature_extractor(classifier)
    start = watermark(bases, target[0], opacity) if opacity else bases
    poisons, losses = feature_collision(extractor, start, features_of(extractor, target)[0],
                                        learning_rate=learning_rate, beta=beta, max_iter=max_iter, eps=eps,
                                        progress=progress)
    return poisons, labels.copy(), losses


def _train_head_function() -> Any:
    import tensorflow as tf

    spec = [tf.TensorSpec([None, None], tf.float32)] * 3 + [tf.TensorSpec([None], tf.float32),
                                                            tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)]

    @tf.function(input_signature=spec)
    def train(features, onehot, kernel, bias, steps, learning_rate):
        # full-batch Adam (Keras's defaults) on the softmax layer's kernel and bias
        b1, b2, eps = 0.9, 0.999, 1e-7
        mk, vk, mb, vb = tf.zeros_like(kernel), tf.zeros_like(kernel), tf.zeros_like(bias), tf.zeros_like(bias)
        for i in tf.range(1, steps + 1):
            with tf.GradientTape() as tape:
                tape.watch([kernel, bias])
                logits = tf.matmul(features, kernel) + bias
                loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(onehot, logits))
            gk, gb = tape.gradient(loss, [kernel, bias])
            mk, vk = b1 * mk + (1 - b1) * gk, b2 * vk + (1 - b2) * gk * gk
            mb, vb = b1 * mb + (1 - b1) * gb, b2 * vb + (1 - b2) * gb * gb
            t = tf.cast(i, tf.float32)
            rate = learning_rate * tf.sqrt(1 - b2**t) / (1 - b1**t)
            kernel, bias = kernel - rate * mk / (tf.sqrt(vk) + eps), bias - rate * mb / (tf.sqrt(vb) + eps)
        return kernel, bias

    return train


_TRAIN_HEAD: Any = None


def last_layer_copy(classifier: Any, output_layer: str = "predictions") -> Any:
    """Return an independent copy of ``classifier`` with every layer but ``output_layer`` frozen.

    :param classifier: an ART ``KerasClassifier`` built by ``labkit.build_model``.
    :param output_layer: the one layer left trainable.
    """
    from labkit.models import copy_classifier

    victim = copy_classifier(classifier)
    names = [layer.name for layer in victim.model.layers]
    if output_layer not in names:
        raise ValueError(f"the model has no layer named {output_layer!r}; its layers are: {', '.join(names)}")
    for layer in victim.model.layers:
        layer.trainable = layer.name == output_layer
    victim.model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return victim


def fine_tune_last_layer(classifier: Any, x: np.ndarray, y: np.ndarray, *, steps: int = 300,
                         learning_rate: float = 0.01) -> Any:
    """Fine-tune only the softmax layer (``predictions``) of a copy of ``classifier`` on ``(x, y)``; return the copy.

    The paper's transfer-learning victim (Sec. 4.1): the feature extractor is frozen and the last layer is
    retrained on the (poisoned) training set. Frozen layers give the same features in every epoch, so the
    features are computed once and the softmax layer is trained on them by full-batch Adam in one
    ``tf.function`` (without dropout): the optimisation ``model.fit`` would run with every other layer
    frozen, many times quicker on a CPU. The original classifier is never changed.

    :param classifier: the victim, an ART ``KerasClassifier`` built by ``labkit.build_model``.
    :param x: training images (clean data plus poisons), NHWC in [0, 1].
    :param y: integer labels, shape (n,).
    :param steps: full-batch Adam steps.
    :param learning_rate: Adam's learning rate.
    """
    import tensorflow as tf

    global _TRAIN_HEAD
    if not _is_int(steps) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate}; try 0.01")
    x = check_images(x, classifier.input_shape)
    y = check_labels(y, len(x), nb_classes=classifier.nb_classes)
    victim = last_layer_copy(classifier)
    head = victim.model.get_layer("predictions")
    features = features_of(feature_extractor(victim), x)
    kernel, bias = head.get_weights()
    _TRAIN_HEAD = _TRAIN_HEAD or _train_head_function()
    kernel, bias = _TRAIN_HEAD(tf.constant(features), tf.constant(np.eye(victim.nb_classes, dtype=np.float32)[y]),
                               tf.constant(kernel), tf.constant(bias), tf.constant(steps, tf.int32),
                               tf.constant(learning_rate, tf.float32))
    head.set_weights([kernel.numpy(), bias.numpy()])
    return victim


def poison_frogs_trials(classifier: Any, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                        y_test: np.ndarray, targets: np.ndarray, base_classes: np.ndarray, *, n_poisons: int = 10,
                        learning_rate: float = 1e-3, beta: float = 0.0156, eps: float | None = 0.2,
                        max_iter: int = 500, opacity: float = 0.0, steps: int = 300, fine_tune_lr: float = 0.01,
                        progress: bool = True) -> tuple[Any, np.ndarray, np.ndarray]:
    """Run the attack once per target: craft poisons, fine-tune a copy of the victim, check the target.

    For each target the ``n_poisons`` base-class training images nearest to it in feature space become
    poisons (all targets' poisons in one batch). A copy of the victim is fine-tuned (last layer only) on the
    training set plus that target's poisons, labelled with the base class; as a control, another copy is
    fine-tuned with the unperturbed bases in their place. Arguments as in ``craft_poisons`` and
    ``fine_tune_last_layer`` (``fine_tune_lr`` is the latter's learning rate).

    :return: a table with one row per target, the poisons and the bases, both (n_targets, n_poisons, *shape).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    targets, base_classes = np.asarray(targets).reshape(-1), np.asarray(base_classes).reshape(-1)
    if len(targets) != len(base_classes) or len(targets) == 0:
        raise ValueError(f"give one base class per target: {len(targets)} targets, {len(base_classes)} classes")
    extractor = feature_extractor(classifier)
    train_features, target_features = features_of(extractor, x_train), features_of(extractor, x_test[targets])
    base_idx = np.stack([nearest_bases(train_features, y_train, f, int(c), n_poisons, nb_classes=classifier.nb_classes)
                         for f, c in zip(target_features, base_classes)])
    bases = x_train[base_idx]  # (n_targets, n_poisons, *shape)
    start = np.stack([watermark(b, x_test[t], opacity) for b, t in zip(bases, targets)]) if opacity else bases
    poisons, losses = feature_collision(extractor, start.reshape(-1, *bases.shape[2:]),
                                        np.repeat(target_features, n_poisons, axis=0), learning_rate=learning_rate,
                                        beta=beta, max_iter=max_iter, eps=eps, progress=progress)
    poisons, ratio = poisons.reshape(bases.shape), (losses[-1] / losses[0]).reshape(len(targets), n_poisons)
    rows = []
    for i in tqdm(range(len(targets)), desc="fine-tuning victims", disable=not progress):
        t, c = int(targets[i]), int(base_classes[i])
        labels = np.concatenate([y_train, np.full(n_poisons, c)])
        victim, control = (fine_tune_last_layer(classifier, np.concatenate([x_train, extra]), labels, steps=steps,
                                                learning_rate=fine_tune_lr) for extra in (poisons[i], bases[i]))
        probs = victim.predict(x_test[t:t + 1])[0]
        rows.append({
            "target": t, "target_class": int(y_test[t]), "base_class": c, "feature_loss_ratio": float(ratio[i].mean()),
            "linf": float(perturbation_linf(poisons[i], bases[i]).mean()), "predicted_after": int(probs.argmax()),
            "p_base_after": float(probs[c]), "success": bool(probs.argmax() == c),
            "control_success": bool(control.predict(x_test[t:t + 1])[0].argmax() == c),
            "clean_accuracy_after": float(np.mean(victim.predict(x_test).argmax(axis=1) == y_test)),
        })
    return pd.DataFrame(rows), poisons, bases


def triplet_grid(bases: np.ndarray, poisons: np.ndarray, targets: np.ndarray, base_classes: np.ndarray,
                 target_classes: np.ndarray, *, per_row: int = 2, suptitle: str | None = None) -> Any:
    """Show base / poison / target side by side, one triplet per target, and return the figure.

    :param bases: one base image per target; ``poisons``: the poison made from each; ``targets``: the targets.
    :param base_classes: the base class (the poison's label) of each triplet; ``target_classes``: the targets'.
    :param per_row: triplets per row; ``suptitle``: a title over the grid.
    """
    from labkit.plots import image_grid

    images, titles = [], []
    for b, p, t, cb, ct in zip(bases, poisons, targets, base_classes, target_classes):
        images += [b, p, t]
        titles += [f"base ({cb})", f"poison ({cb}) L-inf {np.abs(p - b).max():.2f}", f"target ({ct})"]
    return image_grid(np.array(images), titles, ncols=3 * per_row, size=1.5, suptitle=suptitle)
