"""ART's ``KerasClassifier`` with the three calls ART's attacks and trainers make thousands of times made fast.

ART 1.20's ``KerasClassifier`` computes every input gradient eagerly (a fresh ``tf.GradientTape`` run op by op:
FGSM once per batch, PGD once per step) and trains ART's adversarial trainers one batch at a time through a whole
``model.fit`` call (a new data adapter, callbacks and epoch loop per batch). On the lab's small CNN that overhead is
most of the time. ``LabClassifier`` changes only how, not what:

- ``loss_gradient`` runs the same loss and the same gradient inside a compiled ``tf.function`` (the model's own loss
  without reduction, as ART builds it), between ART's own preprocessing steps (a preprocessing defence such as
  feature squeezing is applied first and its gradient estimate chained after, as ART does); it falls back to ART's
  code in training mode;
- ``fit`` for one epoch over one batch (what ``AdversarialTrainer`` and ``AdversarialTrainerMadryPGD`` call) is one
  call of the model's own ``train_step`` (the same single optimiser step ``model.fit`` and ``train_on_batch`` take),
  compiled once for every batch size: ``train_on_batch`` traced it three times per trainer (variable creation, the
  first batch size, then the epoch's smaller last batch), about 0.6 s each;
- ``predict`` runs the model's forward pass compiled with a fixed signature: ART's compiled forward pass takes the
  model as an argument, and matching it to its trace costs every call ~4 ms (the Square attack of ``labkit
  tournament`` predicts ~900 times per model).

The compiled functions take any batch size from their first call (a ``None`` batch dimension), so the last,
smaller batch of an epoch or of an attack does not trace them again.

One more piece of ART's work is skipped when nobody can see it: ART's PGD ends every ``generate`` with two
predictions over all its images only to log the attack's success rate at INFO level (``compute_success`` in
``projected_gradient_descent_numpy``, used there for that log line alone). While that logger does not show INFO,
the rate is not computed (a Madry epoch calls ``generate`` once per batch: ~20% of its time); with INFO on, it is.

``labkit.models.wrap_model`` returns this class, so every model of the lab gets it; it is still a
``KerasClassifier`` for ART (``isinstance`` holds, every ART attack and defence takes it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from art.estimators.classification import KerasClassifier

__all__ = ["LabClassifier", "prepare_fit"]


def _skip_unlogged_pgd_success_rate() -> None:
    """Make ART's numpy PGD compute its logged success rate only when its logger shows INFO (called once, below)."""
    import logging

    from art.attacks.evasion.projected_gradient_descent import projected_gradient_descent_numpy as pgd

    original = pgd.compute_success

    def compute_success(*args: Any, **kwargs: Any) -> float:
        if not pgd.logger.isEnabledFor(logging.INFO):
            return float("nan")  # only ever formatted into the INFO line, which is not shown
        return original(*args, **kwargs)

    pgd.compute_success = compute_success


_skip_unlogged_pgd_success_rate()


def prepare_fit(model: Any, x: np.ndarray, y: np.ndarray) -> None:
    """Build a compiled Keras model's optimiser and metric variables before its first ``fit``: one trace, not two.

    Without a distribution strategy Keras creates them inside the first trace of its train function, and TensorFlow
    then traces that function again (a ``tf.function`` that creates variables is traced twice). Building them first,
    as Keras itself does under a strategy (``_symbolic_build``), leaves one trace: a fresh lab CNN's first ``fit``
    ~1.3 s shorter, the trained weights the same. Keras builds only what is not built yet; a model that is not
    compiled is left alone. Used before every ``fit`` of the lab (``train_model``, ``LabClassifier.fit`` and its
    one-step fit, unlearning, shadow models).

    :param model: the compiled Keras model.
    :param x: training images (one is enough: only shapes and dtypes are read).
    :param y: their labels, as the model's loss takes them.
    """
    if getattr(model, "optimizer", None) is None:
        return
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=(np.asarray(x[:1]), np.asarray(y[:1]), None))


def _unreduced_loss(model: Any) -> Any:
    """The model's compiled loss as a Keras loss object returning one value per image (as ART builds it), or None.

    None (ART's own code is used) for a sparse (integer-label) loss or anything that is not a loss.
    """
    import keras

    loss = model.loss
    if "sparse" in str(getattr(loss, "__name__", loss)).lower() or "sparse" in type(loss).__name__.lower():
        return None  # integer-label losses: ART's own code handles their label conversion
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if not hasattr(loss, "get_config"):
        return loss if callable(loss) else None  # Keras's loss functions already return one value per image
    loss = loss.__class__.from_config(loss.get_config())
    loss.reduction = None
    return loss


class LabClassifier(KerasClassifier):
    """``KerasClassifier`` whose ``loss_gradient`` and ``predict`` are compiled and whose one-batch ``fit`` is one step.

    Used by every model of the lab (``labkit.models.wrap_model``): 01-02's attacks and adversarial training, 03-04's
    models, 06-10.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._compiled_gradient = None
        self._compiled_step = None
        self._compiled_forward = None

    def _specs(self) -> list[Any]:
        """Input signatures ``[images, one-hot labels]`` of the compiled functions: any batch size, float32."""
        import tensorflow as tf

        images, labels = (None, *self.input_shape), (None, self.nb_classes)
        return [tf.TensorSpec(images, tf.float32), tf.TensorSpec(labels, tf.float32)]

    def _gradient_function(self) -> Any:
        """Build (once) the compiled function ``(x, y) -> d loss / d x``, or None if the loss is not a Keras loss."""
        if self._compiled_gradient is None:
            import tensorflow as tf

            loss_fn, model = _unreduced_loss(self._model), self._model
            if loss_fn is None:
                return None

            @tf.function(input_signature=self._specs())
            def gradient(x: Any, y: Any) -> Any:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = loss_fn(y, model(x, training=False))
                return tape.gradient(loss, x)

            self._compiled_gradient = gradient
        return self._compiled_gradient

    def _forward_function(self) -> Any:
        """Build (once) the compiled forward pass ``x -> model(x)`` in inference mode, for any batch size."""
        if self._compiled_forward is None:
            import tensorflow as tf

            model = self._model
            self._compiled_forward = tf.function(lambda x: model(x, training=False), input_signature=self._specs()[:1])
        return self._compiled_forward

    def predict(self, x: np.ndarray, batch_size: int = 128, training_mode: bool = False, **kwargs: Any) -> np.ndarray:
        """Class probabilities of ``x``, as ART's (one forward pass over all of ``x``, its pre- and post-processing).

        ART's ``predict`` calls a ``tf.function`` that takes the model itself as an argument: each call pays ~4 ms
        for TensorFlow to match the arguments to the trace, as much as the forward pass of 100 digits (the Square
        attack predicts ~900 times per model: ~half its time). Here the function is traced once with a fixed
        signature. Training mode and inputs of another shape go to ART's code.

        :param x: images, shaped as the model's input.
        :param batch_size: unused, as in ART (the whole of ``x`` is one forward pass).
        :param training_mode: True runs the model in training mode (ART's code does it).
        """
        x_pre, _ = self._apply_preprocessing(x, y=None, fit=False)
        if training_mode or kwargs or tuple(np.shape(x_pre)[1:]) != tuple(self.input_shape):
            return super().predict(x, batch_size=batch_size, training_mode=training_mode, **kwargs)
        import tensorflow as tf

        predictions = self._forward_function()(tf.convert_to_tensor(x_pre, dtype=tf.float32)).numpy()
        return self._apply_postprocessing(preds=predictions, fit=False)

    def loss_gradient(self, x: np.ndarray, y: np.ndarray, training_mode: bool = False, **kwargs: Any) -> np.ndarray:
        """Gradient of the loss with respect to ``x``, as ART's (same loss, same maths), compiled.

        :param x: images, shaped as the model's input.
        :param y: labels, one-hot (as ART's attacks pass them) or integer.
        :param training_mode: True runs the model in training mode (ART's eager code does it).
        """
        gradient = None if training_mode else self._gradient_function()
        if gradient is None:
            return super().loss_gradient(x, y, training_mode=training_mode, **kwargs)
        import tensorflow as tf

        x_pre, y_pre = self._apply_preprocessing(x, y, fit=False)
        y_pre = np.asarray(y_pre)
        if y_pre.ndim == 1:  # integer labels: the lab's loss is categorical cross-entropy on one-hot labels
            y_pre = np.eye(self.nb_classes, dtype=np.float32)[y_pre.astype(int)]
        grads = gradient(tf.convert_to_tensor(x_pre, dtype=tf.float32),
                         tf.convert_to_tensor(y_pre, dtype=tf.float32)).numpy()
        return self._apply_preprocessing_gradient(x, grads)

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int = 128, nb_epochs: int = 20, verbose: bool = False,
            **kwargs: Any) -> None:
        """Train on ``(x, y)``; one epoch over a single batch is one ``train_on_batch`` step (as ART's trainers call).

        :param x: training images.
        :param y: labels, one-hot or integer (ART's own fit fails on integer labels with a categorical loss).
        :param batch_size: images per step.
        :param nb_epochs: passes over ``(x, y)``.
        :param verbose: Keras's progress output (longer fits only).
        """
        from art.utils import check_and_transform_label_format

        if self._gradient_function() is None:  # a sparse loss: ART's code converts the labels for it
            return super().fit(x, y, batch_size=batch_size, nb_epochs=nb_epochs, verbose=verbose, **kwargs)
        # one-hot labels, as the lab's categorical loss needs (ART's fit would turn integer labels back to integers)
        y = check_and_transform_label_format(y, nb_classes=self.nb_classes)
        kwargs = {key: value for key, value in kwargs.items() if value is not None}  # Madry's validation_data=None
        if nb_epochs != 1 or batch_size < len(x) or kwargs or self.preprocessing_defences:
            prepare_fit(self._model, x, y)
            return super().fit(x, y, batch_size=batch_size, nb_epochs=nb_epochs, verbose=verbose, **kwargs)
        x_pre, y_pre = self._apply_preprocessing(x, y, fit=True)
        import tensorflow as tf

        x_pre, y_pre = tf.convert_to_tensor(x_pre, tf.float32), tf.convert_to_tensor(y_pre, tf.float32)
        self._train_step_function(x_pre, y_pre)(x_pre, y_pre)
        return None

    def _train_step_function(self, x: Any, y: Any) -> Any:
        """Build (once) the model's own ``train_step`` compiled for any batch size, its state built from ``(x, y)``.

        What ``train_on_batch`` runs, minus its per-shape retracing: the model, loss, metrics and optimiser state are
        built first (``prepare_fit``, as ``train_on_batch`` does), so the step is traced once.
        """
        model = self._model
        if self._compiled_step is None or self._compiled_step[0] is not model.optimizer:  # recompiled: new optimiser
            import tensorflow as tf

            prepare_fit(model, x, y)
            step = tf.function(lambda xs, ys: model.train_step((xs, ys)), input_signature=self._specs())
            self._compiled_step = (model.optimizer, step)
        model.reset_metrics()  # as train_on_batch: the logs of this step only
        return self._compiled_step[1]
