"""One model builder, one training call, and saving / loading in Keras's native format.

The model is a small CNN: conv, pool, conv, flatten, a Dense hidden layer (``features``), dropout and a
Dense softmax (``predictions``). The Dense layer right before the output is what Neural Cleanse prunes
and what feature-collision poisoning aims at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from labkit.paths import models_dir

__all__ = [
    "build_model", "train_model", "wrap_model", "save_model", "load_model", "copy_keras_model", "copy_classifier",
    "accuracy", "FEATURES_LAYER",
]

FEATURES_LAYER = "features"
"""Name of the Dense hidden layer right before the output (the penultimate layer that matters)."""


def build_model(input_shape: tuple[int, ...], nb_classes: int = 10, *, hidden: int = 64, dropout: float = 0.3,
                learning_rate: float = 1e-3) -> Any:
    """Build and compile the lab's small CNN (softmax output, categorical cross-entropy, Adam).

    :param input_shape: shape of one image, (height, width, channels).
    :param nb_classes: number of classes.
    :param hidden: width of the Dense ``features`` layer.
    :param dropout: dropout rate before the output layer.
    :param learning_rate: Adam's learning rate.
    """
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input(shape=tuple(input_shape)),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            layers.Flatten(name="flatten"),
            layers.Dense(hidden, activation="relu", name=FEATURES_LAYER),
            layers.Dropout(dropout, name="dropout"),
            layers.Dense(nb_classes, activation="softmax", name="predictions"),
        ],
        name="labkit_cnn",
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def wrap_model(model: Any, **art_kwargs: Any) -> Any:
    """Wrap a compiled Keras model as ART's ``KerasClassifier`` with ``clip_values=(0, 1)``.

    The classifier is labkit's ``LabClassifier`` (``labkit/_fast_keras.py``): ART's ``KerasClassifier`` with a
    compiled input gradient and a one-step fit for ART's adversarial trainers, same results, several times faster.
    Used in 02 (Steps 3-4, and Step 8 with ``preprocessing_defences``) and wherever a model is loaded or trained.

    :param model: a compiled Keras model with a softmax output.
    :param art_kwargs: more of ``KerasClassifier``'s arguments, e.g. ``preprocessing_defences=[FeatureSqueezing(...)]``.
    """
    from labkit._fast_keras import LabClassifier

    return LabClassifier(model=model, clip_values=(0.0, 1.0), use_logits=False, **art_kwargs)


def _check_count(name: str, value: Any) -> int:
    """Return ``value`` as an int after checking that it is a whole number >= 1 (epochs, batch sizes)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


class _EpochBar:
    """A Keras callback drawing one tqdm bar over epochs, with the loss and accuracy."""

    def __new__(cls, epochs: int, desc: str):
        import keras
        from tqdm.auto import tqdm

        class Bar(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = tqdm(total=epochs, desc=desc, unit="epoch", leave=True)

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                self.bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.3f}",
                                     acc=f"{logs.get('accuracy', float('nan')):.3f}")
                self.bar.update(1)

            def on_train_end(self, logs=None):
                self.bar.close()

        return Bar()


def train_model(x: np.ndarray, y: np.ndarray, *, nb_classes: int = 10, epochs: int = 20, batch_size: int = 128,
                progress: bool = True, desc: str = "training", **build_kwargs: Any) -> Any:
    """Build the lab's CNN, train it on ``(x, y)`` and return it as an ART ``KerasClassifier``.

    Call ``labkit.set_seed`` first for reproducible numbers.

    :param x: training images, float32 NHWC in [0, 1].
    :param y: integer labels in [0, nb_classes - 1], shape (n,), or one-hot labels.
    :param nb_classes: number of classes.
    :param epochs: passes over the training data, a whole number >= 1.
    :param batch_size: images per gradient step, a whole number >= 1.
    :param progress: draw a progress bar over epochs.
    :param desc: the progress bar's label.
    :param build_kwargs: passed on to ``build_model``.
    """
    import keras

    from labkit._fast_keras import prepare_fit
    from labkit.data import check_images, check_labels

    _check_count("epochs", epochs)
    _check_count("batch_size", batch_size)
    x = check_images(x, np.shape(x)[1:])
    y = check_labels(y, len(x), nb_classes=nb_classes)
    model = build_model(x.shape[1:], nb_classes, **build_kwargs)
    callbacks = [_EpochBar(epochs, desc)] if progress else []
    onehot = keras.utils.to_categorical(y, nb_classes)
    prepare_fit(model, x, onehot)
    model.fit(x, onehot, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True, callbacks=callbacks)
    return wrap_model(model)


def _model_path(name: str) -> Path:
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"model name must be a plain word like 'baseline', got {name!r}")
    return models_dir() / f"{name}.keras"


def save_model(classifier: Any, name: str) -> Path:
    """Save a classifier's Keras model as ``<build>/models/<name>.keras`` and return the path.

    :param classifier: an ART ``KerasClassifier`` (or a plain Keras model).
    :param name: a plain word, e.g. ``"baseline"``.
    """
    model = getattr(classifier, "model", classifier)
    path = _model_path(name)
    model.save(path)
    return path


def load_model(name: str, *, notebook: str = "00_setup.ipynb") -> Any:
    """Load ``<build>/models/<name>.keras`` (Keras's safe mode on) and return it as an ART ``KerasClassifier``.

    :param name: the name it was saved under, e.g. ``"baseline"``.
    :param notebook: the notebook that saves this model, named in the error when the file is missing.
    """
    import keras

    path = _model_path(name)
    if not path.exists():
        raise FileNotFoundError(f"no saved model '{name}' at {path}. Run {notebook} first; it trains and saves it.")
    _check_model_file(path, notebook)
    return wrap_model(keras.models.load_model(path, safe_mode=True))


def _check_model_file(path: Path, notebook: str) -> None:
    """Refuse a .keras file that is not a complete zip archive (Keras would call it "File not found")."""
    import zipfile

    reason = None
    if not zipfile.is_zipfile(path):
        reason = f"not a complete .keras (zip) archive ({path.stat().st_size} bytes)"
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                broken = archive.testzip()
            reason = None if broken is None else f"its member {broken} is damaged"
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            reason = str(err)
    if reason is not None:
        raise ValueError(f"truncated or corrupt model file {path}: {reason}. Re-save it: run {notebook} again, "
                         f"which trains and saves this model")


def copy_keras_model(model: Any, *, use_logits: bool = False) -> Any:
    """Return an independent copy of a Keras model: same weights, compiled with a fresh Adam optimizer.

    The copy keeps the original's learning rate (1e-3 when it has none, or ART zeroed it).

    :param model: the Keras model.
    :param use_logits: whether the model outputs logits rather than probabilities.
    """
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    optimizer = getattr(model, "optimizer", None)
    rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate)) if optimizer is not None else 1e-3
    clone.compile(optimizer=keras.optimizers.Adam(rate if rate > 0 else 1e-3),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=use_logits), metrics=["accuracy"])
    return clone


def copy_classifier(classifier: Any) -> Any:
    """Return an independent copy of a classifier: same architecture and weights, fresh optimizer state.

    Mitigations and fine-tuning act on a copy, so the original model is never changed in place.
    """
    return wrap_model(copy_keras_model(classifier.model))


def accuracy(classifier: Any, x: np.ndarray, y: np.ndarray, *, batch_size: int = 256) -> float:
    """Return the share of images in ``x`` that ``classifier`` assigns to their label ``y``.

    :param classifier: an ART classifier.
    :param x: images of the classifier's input shape, float32 in [0, 1].
    :param y: integer labels in [0, nb_classes - 1], shape (n,), or one-hot labels.
    :param batch_size: images per forward pass.
    """
    from labkit.data import check_images, check_labels

    if len(x) == 0:
        raise ValueError("cannot compute an accuracy over zero images")
    x = check_images(x, tuple(getattr(classifier, "input_shape", None) or np.shape(x)[1:]))
    nb_classes = getattr(classifier, "nb_classes", None)
    labels = check_labels(y, len(x), nb_classes=int(nb_classes) if nb_classes else None)
    predictions = classifier.predict(x, batch_size=batch_size).argmax(axis=1)
    return float(np.mean(predictions == labels))
