"""Fast FGSM adversarial training: ART's ``AdversarialTrainer`` recipe, compiled into one TensorFlow step.

ART's ``AdversarialTrainer`` calls the attack and then ``model.fit`` once per batch, in Python and NumPy:
the attack is cheap, the per-call overhead is not. ``FastAdversarialTrainer`` does the same thing (FGSM
on a random ``ratio`` of each batch, against the current weights, with the true labels, then one optimizer
step on the mixed batch) inside a single ``tf.function``, so one batch costs about two forward and two
backward passes. ``benchmarks/adversarial_training.py`` times both and compares their robustness.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labkit.evasion import check_eps

__all__ = ["FastAdversarialTrainer"]


class FastAdversarialTrainer:
    """FGSM adversarial training (ART's ``AdversarialTrainer`` with FGSM) as one compiled train step.

    The interface mirrors ART's trainer: build it around a classifier, call ``fit``, read the trained model
    from ``get_classifier()`` (the classifier is trained in place).

    :param classifier: an ART ``KerasClassifier`` around a compiled Keras model with a softmax output.
    :param eps: the FGSM step, in pixel units of [0, 1] images.
    :param ratio: share of every batch replaced by its FGSM counterpart, in (0, 1] (ART's ``ratio``).
    """

    def __init__(self, classifier: Any, eps: float, ratio: float = 0.5) -> None:
        self.eps = check_eps(eps)
        if not 0.0 < float(ratio) <= 1.0:
            raise ValueError(f"ratio must be in (0, 1] (the share of each batch made adversarial), got {ratio!r}")
        model = getattr(classifier, "model", None)
        if model is None or getattr(model, "optimizer", None) is None:
            raise ValueError("classifier must be an ART KerasClassifier around a compiled Keras model "
                             "(labkit.train_model / labkit.models.wrap_model(labkit.build_model(...)) give one)")
        self.classifier = classifier
        self.ratio = float(ratio)
        clip = getattr(classifier, "clip_values", None)
        self.clip_values = (0.0, 1.0) if clip is None else (float(clip[0]), float(clip[1]))

    def get_classifier(self) -> Any:
        """Return the classifier being trained (the same object that was passed in)."""
        return self.classifier

    def _fgsm(self, x: Any, y: Any) -> Any:
        """FGSM against the current weights, as ART computes it: inference mode, given labels, sign of the gradient."""
        import keras
        import tensorflow as tf

        model = self.classifier.model
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = keras.losses.categorical_crossentropy(y, model(x, training=False))
        low, high = self.clip_values
        return tf.clip_by_value(x + self.eps * tf.sign(tape.gradient(loss, x)), low, high)

    def perturb(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return the FGSM images the trainer would train on for ``(x, y)`` (same as ART's FastGradientMethod).

        :param x: images of the model's input shape, in [0, 1].
        :param y: integer labels (n,) or one-hot labels (n, nb_classes).
        """
        import tensorflow as tf

        from labkit.data import check_images

        model = self.classifier.model
        x = check_images(x, tuple(model.input_shape[1:]))
        y_onehot = _one_hot(y, len(x), int(model.output_shape[-1]))
        return self._fgsm(tf.constant(x), tf.constant(y_onehot)).numpy()

    def _make_step(self) -> Any:
        import keras
        import tensorflow as tf

        model = self.classifier.model
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        signature = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32),
                     tf.TensorSpec((None, model.output_shape[-1]), tf.float32),
                     tf.TensorSpec((None,), tf.bool)]

        @tf.function(input_signature=signature)
        def step(x: Any, y: Any, adversarial: Any) -> Any:
            # 1. FGSM on the chosen images of the batch; 2. one optimizer step on the mixed batch.
            x_mix = tf.where(adversarial[:, None, None, None], self._fgsm(x, y), x)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(keras.losses.categorical_crossentropy(y, model(x_mix, training=True)))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        return step

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int = 128, nb_epochs: int = 20, *,
            progress: bool = True, desc: str = "fast adversarial training", seed: int | None = None) -> None:
        """Train the classifier on ``(x, y)``, a random ``ratio`` of every batch replaced by FGSM images.

        :param x: training images, float32 NHWC in [0, 1], of the model's input shape.
        :param y: integer labels (n,) or one-hot labels (n, nb_classes).
        :param batch_size: images per optimizer step.
        :param nb_epochs: passes over the training data.
        :param progress: draw a progress bar over epochs, with the training loss.
        :param desc: the progress bar's label.
        :param seed: seed of the batch order and of which images are attacked; None draws it from NumPy's
            global generator, so ``labkit.set_seed`` fixes it.
        """
        import tensorflow as tf
        from tqdm.auto import trange

        from labkit.data import check_images

        model = self.classifier.model
        x = check_images(x, tuple(model.input_shape[1:]))
        y_onehot = _one_hot(y, len(x), int(model.output_shape[-1]))
        if int(batch_size) < 1 or int(nb_epochs) < 1:
            raise ValueError(f"batch_size and nb_epochs must be >= 1, got {batch_size!r} and {nb_epochs!r}")
        rng = np.random.default_rng(np.random.randint(2**31) if seed is None else seed)
        step = self._make_step()
        n, batch_size = len(x), int(batch_size)
        with trange(int(nb_epochs), desc=desc, unit="epoch", disable=not progress) as bar:
            for _ in bar:
                order, losses = rng.permutation(n), []
                for start in range(0, n, batch_size):
                    idx = order[start:start + batch_size]
                    adversarial = np.zeros(len(idx), bool)
                    adversarial[rng.choice(len(idx), math.ceil(self.ratio * len(idx)), replace=False)] = True
                    losses.append(step(tf.constant(x[idx]), tf.constant(y_onehot[idx]), tf.constant(adversarial)))
                bar.set_postfix(loss=f"{float(np.mean(losses)):.3f}")


def _one_hot(y: np.ndarray, n: int, nb_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == nb_classes:
        labels = y.argmax(axis=1)
    elif y.ndim == 1:
        labels = y.astype(np.int64)
    else:
        raise ValueError(f"y must be integer labels (n,) or one-hot labels (n, {nb_classes}); got shape {y.shape}")
    if len(labels) != n:
        raise ValueError(f"x has {n} images but y has {len(labels)} labels")
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= nb_classes:
        raise ValueError(f"labels must be integers in [0, {nb_classes - 1}], "
                         f"got range [{labels.min()}, {labels.max()}]")
    return np.eye(nb_classes, dtype=np.float32)[labels]
