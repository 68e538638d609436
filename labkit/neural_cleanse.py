"""Neural Cleanse through ART's API, fixed for Keras 3.

Students call ART's defence as ART documents it, importing the class from labkit instead::

    from labkit.neural_cleanse import NeuralCleanse      # ART's NeuralCleanse, with labkit's fixes
    defence = NeuralCleanse(classifier)(classifier, steps=120)   # an ART KerasNeuralCleanse estimator
    flagged = defence.outlier_detection(x_val, y_val)             # [(label, mask, pattern), ...]
    defence.mitigate(x_val, y_val, mitigation_types=["unlearning"])

``LabkitNeuralCleanse`` subclasses ART 1.20.1's ``KerasNeuralCleanse`` and keeps its outlier rule (median
absolute deviation x 1.4826, anomaly index > 2, only classes whose mask L1 norm is at most the median)
and its mitigation API. It fixes what is broken under Keras 3: ``reset()`` zeroed every optimiser
variable, the learning rate included, so masks never moved (all classes got the same norm, the anomaly
index was NaN and nothing was flagged); a tensor printed every step; the "penultimate layer" picked by
index; pruning compared probabilities with one-hot labels (so it always pruned 30%); unlearning trained
one epoch at batch size 1 on the flagged class only; mitigations changed the caller's model in place;
``generate_backdoor`` returned (mask, pattern) while documenting (pattern, mask); ``loss_gradient``
called itself forever. The trigger search runs for all classes at once (``labkit._nc_optimize``); its
budget ``steps`` counts passes over the defender's data, as ART's does, so one default fits a few hundred
digits and thousands of MNIST images. Pruning and filtering report whether they removed the backdoor and
warn when they stop without (``labkit._nc_mitigate``).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Sequence

import numpy as np
from art.defences.transformer.poisoning import NeuralCleanse as _ArtNeuralCleanse
from art.estimators.classification.keras import KerasClassifier
from art.estimators.poison_mitigation.neural_cleanse import KerasNeuralCleanse

from labkit._nc_mitigate import OWN_CHECK, filter_inputs, mitigation_row, prune, unlearn
from labkit.models import copy_keras_model
from labkit._nc_optimize import (CONSISTENCY_CONSTANT, THRESHOLD, Backdoor, Detection, FlaggedClass, TriggerSearch,
                                outlier_rule)
from labkit.poisoning import check_class

__all__ = ["NeuralCleanse", "LabkitNeuralCleanse", "Backdoor", "FlaggedClass", "Detection", "outlier_rule",
           "MITIGATIONS", "THRESHOLD", "CONSISTENCY_CONSTANT", "DEFAULT_STEPS", "DEFAULT_DEFENDER_FRACTION",
           "mitigation_row", "OWN_CHECK"]

logger = logging.getLogger(__name__)
MITIGATIONS = ("unlearning", "pruning", "filtering")
DEFAULT_STEPS = 120
"""The trigger search's default budget, in passes over the defender's data (epochs)."""
DEFAULT_DEFENDER_FRACTION = 0.15
"""The share of the clean training images the defender holds (notebook 04's ``DEFENDER_FRACTION``, the benchmarks').

Measured on the digits (20-epoch models, seeds 0-4): with 15% the target's anomaly index was 3.02, 4.44, 4.62,
6.94, 5.24 and seed 0's clean model had nothing flagged (its largest index 1.18). 30% raised seed 0's target
index to 3.81 but flagged two classes of seed 0's clean model (index 2.26), at about 1.7 times the detection's
CPU time, so 15% stays. A longer search did not help either: 120 passes found the norms the 73 early-stopped did.
"""


def _fingerprint(x: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest() + str(x.shape)


class LabkitNeuralCleanse(KerasNeuralCleanse):
    """ART's ``KerasNeuralCleanse`` with labkit's fixes (see the module docstring).

    It holds its own copy of the model: detection and mitigations never change the caller's classifier.
    Parameters are ART's, with the paper's L1 penalty (``norm=1``). ``steps`` is, as in ART, the budget of the
    trigger search in passes over the defender's data (epochs; ``DEFAULT_STEPS`` by default): the same
    ``steps`` is the same work per image on a few hundred digits and on thousands of MNIST images, and early
    stopping, which the paper's cost schedule counts in epochs, ends it sooner. Each pass is
    ``ceil(len(x_val) / batch_size)`` Adam updates of every class's trigger.

    :param model: a compiled Keras model (copied).
    :param seed: seed of the trigger search and of the mitigations' random choices.
    :param progress: draw progress bars.
    """

    estimator_params = KerasNeuralCleanse.estimator_params + ["seed", "progress"]

    def __init__(self, model: Any, use_logits: bool = False, channels_first: bool = False,
                 clip_values: Any = None, preprocessing_defences: Any = None, postprocessing_defences: Any = None,
                 preprocessing: Any = (0.0, 1.0), input_layer: int = 0, output_layer: int = 0,
                 steps: int = DEFAULT_STEPS, init_cost: float = 1e-3, norm: int | float = 1,
                 learning_rate: float = 0.1, attack_success_threshold: float = 0.99, patience: int = 5,
                 early_stop: bool = True,
                 early_stop_threshold: float = 0.99, early_stop_patience: int = 10, cost_multiplier: float = 1.5,
                 batch_size: int = 32, seed: int = 0, progress: bool = True) -> None:
        if norm not in (1, 2):
            raise ValueError(f"norm must be 1 (the paper's L1 penalty) or 2, got {norm!r}")
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be a positive number of passes over the defender's data (epochs), "
                             f"got {steps!r}")
        super().__init__(
            copy_keras_model(model, use_logits=use_logits), use_logits=use_logits, channels_first=channels_first,
            clip_values=clip_values, preprocessing_defences=preprocessing_defences,
            postprocessing_defences=postprocessing_defences, preprocessing=preprocessing, input_layer=input_layer,
            output_layer=output_layer, steps=int(steps), init_cost=init_cost, norm=norm, learning_rate=learning_rate,
            attack_success_threshold=attack_success_threshold, patience=patience, early_stop=early_stop,
            early_stop_threshold=early_stop_threshold, early_stop_patience=early_stop_patience,
            cost_multiplier=cost_multiplier, batch_size=batch_size)
        del self.train  # ART's per-class step printed a tensor every batch; the search is labkit._nc_optimize
        self.seed, self.progress = int(seed), bool(progress)
        self.detection: Detection | None = None
        self._detection_key: str | None = None
        self._features_model: Any = None

    # ----------------------------------------------------------------- trigger search and detection
    def reset(self) -> None:
        """Reset the defence's state: the cost to ``init_cost`` and a fresh optimiser (the learning rate kept).

        ART's ``reset`` zeroed every optimiser variable under Keras 3, the learning rate included.
        """
        from keras.optimizers import Adam

        self.cost = self.init_cost
        self.cost_tensor.assign(self.init_cost)
        self.opt = Adam(learning_rate=self.learning_rate, beta_1=0.5, beta_2=0.9)

    def _search(self, x_val: np.ndarray, classes: Sequence[int], desc: str) -> Detection:
        self.reset()
        search = TriggerSearch(
            self._model, self.input_shape, classes, nb_classes=self.nb_classes, use_logits=self._use_logits,
            learning_rate=self.learning_rate, init_cost=self.init_cost, norm=int(self.norm),
            attack_success_threshold=self.attack_success_threshold, patience=self.patience,
            cost_multiplier=self.cost_multiplier_up, early_stop=self.early_stop,
            early_stop_threshold=self.early_stop_threshold, early_stop_patience=self.early_stop_patience,
            batch_size=self.batch_size, seed=self.seed)
        return search.run(x_val, self.steps, progress=self.progress, desc=desc)

    def _check_xy(self, x_val: np.ndarray, y_val: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        from labkit.data import check_images, check_labels

        x_val = check_images(x_val, self.input_shape, what="x_val")
        if len(x_val) == 0:
            raise ValueError("x_val holds no image: Neural Cleanse needs a few clean images of every class")
        if y_val is None:
            return x_val, None
        return x_val, check_labels(y_val, len(x_val), what="y_val", nb_classes=self.nb_classes, images="x_val")

    def generate_backdoor(self, x_val: np.ndarray, y_val: np.ndarray, y_target: Any) -> Backdoor:
        """Reverse-engineer the smallest trigger that sends ``x_val`` to one class; return ``Backdoor(pattern, mask)``.

        :param x_val: clean validation images, (n, H, W, C) in [0, 1].
        :param y_val: their labels (one-hot or integers); only checked.
        :param y_target: the target class, as an index or a one-hot vector (ART passes one-hot).
        """
        x_val, _ = self._check_xy(x_val, y_val)
        target = np.asarray(y_target)
        if target.ndim == 1 and len(target) == self.nb_classes and np.isin(target, (0, 1)).all() and target.sum() == 1:
            target = int(target.argmax())  # one-hot, as ART's outlier_detection passes it
        target = check_class(target.item() if np.ndim(target) == 0 and isinstance(target, np.ndarray) else target,
                             self.nb_classes, what="y_target")
        result = self._search(x_val, [target], desc=f"Neural Cleanse, class {target}")
        return Backdoor(result.patterns[0], result.masks[0])

    def detect(self, x_val: np.ndarray, y_val: np.ndarray | None = None) -> Detection:
        """Reverse-engineer a trigger for every class at once and apply the outlier rule; keep and return it.

        :param x_val: clean validation images, (n, H, W, C) in [0, 1].
        :param y_val: their labels (one-hot or integers); optional, only checked.
        """
        x_val, _ = self._check_xy(x_val, y_val)
        self.detection = self._search(x_val, range(self.nb_classes), desc="Neural Cleanse, all classes")
        for label in self.detection.flagged_classes:
            logger.info("Detected a potential backdoor in class %d", label)
        self._detection_key = _fingerprint(x_val)
        return self.detection

    def _detected(self, x_val: np.ndarray, y_val: np.ndarray | None) -> Detection:
        """The detection on ``x_val``: reuse the last one when it was computed on the same images."""
        if self.detection is None or self._detection_key != _fingerprint(np.asarray(x_val, dtype=np.float32)):
            return self.detect(x_val, y_val)
        return self.detection

    def outlier_detection(self, x_val: np.ndarray, y_val: np.ndarray) -> list[FlaggedClass]:
        """Return the suspected classes as ``(label, mask, pattern)`` tuples, as ART does (detecting if needed)."""
        found = self._detected(x_val, y_val)
        return [FlaggedClass(c, found.masks[c], found.patterns[c]) for c in found.flagged_classes]

    def _require_detection(self) -> Detection:
        if self.detection is None:
            raise RuntimeError("no detection yet: call outlier_detection(x_val, y_val) or detect(x_val) first")
        return self.detection

    @property
    def l1_norms(self) -> np.ndarray:
        """The L1 norm of each class's reversed mask (after a detection)."""
        return self._require_detection().l1_norms

    @property
    def anomaly_index(self) -> np.ndarray:
        """Each class's anomaly index, |L1 - median| / (1.4826 x MAD) (after a detection)."""
        return self._require_detection().anomaly_index

    @property
    def flagged_classes(self) -> list[int]:
        """The classes flagged as backdoored (after a detection)."""
        return list(self._require_detection().flagged_classes)

    # ----------------------------------------------------------------- the penultimate layer
    def _features_layer(self) -> Any:
        """The Dense layer feeding the output: labkit's ``features`` layer, else the last weighted 2-D layer."""
        from labkit.models import FEATURES_LAYER

        layers = self._model.layers
        named = [layer for layer in layers if layer.name == FEATURES_LAYER]
        if named:
            return named[0]
        for layer in reversed(layers[:-1]):
            if getattr(layer, "kernel", None) is not None and len(layer.output.shape) == 2:
                return layer
        raise ValueError("the model has no Dense layer before its output: pruning and filtering need one")

    def _get_penultimate_layer_activations(self, x: np.ndarray) -> np.ndarray:
        """Return the activations of the Dense layer before the output for ``x`` (batched, no progress bar)."""
        import keras

        if self._features_model is None:
            self._features_model = keras.Model(self._model.inputs[0], self._features_layer().output)
        x = np.asarray(x, dtype=np.float32)
        parts = [keras.ops.convert_to_numpy(self._features_model(x[i:i + 256], training=False))
                 for i in range(0, len(x), 256)]
        return np.concatenate(parts) if parts else np.zeros((0, self._features_layer().units), np.float32)

    def _prune_neuron_at_index(self, index: int) -> None:
        """Zero the incoming weights and the bias of one unit of the Dense layer before the output."""
        layer = self._features_layer()
        weights, biases = layer.get_weights()
        weights[:, index] = 0.0
        biases[index] = 0.0
        layer.set_weights([weights, biases])

    # ----------------------------------------------------------------- mitigations
    def backdoor_examples(self, x_val: np.ndarray, y_val: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (clean images, the same stamped with a flagged class's reversed trigger, their true labels).

        As in the paper, the images are those of the other classes (ART used the flagged class's own images,
        which the model already assigns to that class). Labels are one-hot.
        """
        x_val, labels = self._check_xy(x_val, y_val)
        found = self._detected(x_val, y_val)
        clean, stamped, true = [], [], []
        for c in found.flagged_classes:
            others = labels != c
            mask, pattern = found.masks[c], found.patterns[c]
            clean.append(x_val[others])
            stamped.append((1.0 - mask) * x_val[others] + mask * pattern)
            true.append(labels[others])
        if not clean:
            empty = np.zeros((0, *self.input_shape), np.float32)
            return empty, empty.copy(), np.zeros((0, self.nb_classes), np.float32)
        eye = np.eye(self.nb_classes, dtype=np.float32)
        return np.concatenate(clean), np.concatenate(stamped).astype(np.float32), eye[np.concatenate(true)]

    def check_backdoor_effective(self, backdoor_data: np.ndarray, backdoor_labels: np.ndarray,
                                 threshold: float = 0.05) -> bool:
        """True while more than ``threshold`` of the reversed-trigger images still land in a flagged class.

        ART compared probability rows with one-hot rows (never equal, so the backdoor always looked
        "effective" and pruning always removed 30% of the units); here predicted classes are compared.

        :param backdoor_data: images stamped with a reversed trigger (from ``backdoor_examples``).
        :param backdoor_labels: their true labels (one-hot or integers).
        :param threshold: the largest share of images sent to a flagged class that counts as ineffective.
        """
        return self.hijack_rate(backdoor_data, backdoor_labels) > threshold

    def hijack_rate(self, backdoor_data: np.ndarray, backdoor_labels: np.ndarray) -> float:
        """Return the share of ``backdoor_data`` this estimator sends to a flagged class other than its true one.

        An abstention (after ``filtering``) is not a hijack.

        :param backdoor_data: images stamped with a reversed trigger (from ``backdoor_examples``).
        :param backdoor_labels: their true labels (one-hot or integers).
        """
        if len(backdoor_data) == 0:
            return 0.0
        from labkit.data import check_labels
        from labkit.poisoning import predicted_labels

        labels = check_labels(backdoor_labels, len(backdoor_data), what="backdoor_labels", images="backdoor_data")
        predicted = predicted_labels(self, np.asarray(backdoor_data, np.float32))
        hijacked = np.isin(predicted, self._require_detection().flagged_classes) & (predicted != labels)
        return float(np.mean(hijacked))

    def mitigate(self, x_val: np.ndarray, y_val: np.ndarray, mitigation_types: Sequence[str], *,
                 unlearning_epochs: int = 10, unlearning_fraction: float = 0.2, pruning_threshold: float = 0.05,
                 pruning_max_fraction: float = 0.3, filtering_fraction: float = 0.01,
                 filtering_std: float = 1.0) -> dict[str, Any]:
        """Mitigate the flagged backdoors on this estimator's own model copy; return what each mitigation did.

        ``unlearning`` fine-tunes on the clean validation data of all classes with ``unlearning_fraction`` of it
        stamped with a flagged class's reversed trigger, keeping the true labels (the paper); ``pruning``
        zeroes the units of the Dense layer before the output that react most to the reversed trigger until
        at most ``pruning_threshold`` of reversed-trigger images land in a flagged class (at most
        ``pruning_max_fraction`` of the units); ``filtering`` makes ``predict`` abstain (a row of zeros) when
        any of the top ``filtering_fraction`` of those units (at least one) fires above its clean mean +
        ``filtering_std`` standard deviations (ART's rule: 1% and 1 std). The caller's classifier is
        never touched; use ``copy()`` to try mitigations on separate copies.

        Pruning and filtering say whether they removed the backdoor: their reports hold
        ``reversed_trigger_success`` (the share of the defender's images stamped with the reversed trigger that
        still reach a flagged class) and ``backdoor_removed`` (at most ``pruning_threshold``), and a warning is
        logged when they stop with the backdoor still there. Filtering's report also holds its
        ``clean_refusal_rate``, the share of the defender's clean images it refuses (honest users turned away).

        :param x_val: clean validation images.
        :param y_val: their labels (one-hot or integers).
        :param mitigation_types: a list of ``"unlearning"``, ``"pruning"``, ``"filtering"``.
        :param unlearning_epochs: fine-tuning epochs of unlearning.
        :param unlearning_fraction: share of the images stamped with the reversed trigger during unlearning.
        :param pruning_threshold: pruning stops once at most this share of reversed-trigger images is hijacked
            (also the share up to which pruning and filtering count the backdoor as removed).
        :param pruning_max_fraction: pruning never removes more than this share of the units.
        :param filtering_fraction: share of the units that filtering watches (rounded up).
        :param filtering_std: filtering's threshold, in clean standard deviations above the clean mean.
        """
        if isinstance(mitigation_types, str) or not all(t in MITIGATIONS for t in mitigation_types):
            raise ValueError(f"mitigation_types must be a list drawn from {list(MITIGATIONS)}, "
                             f"got {mitigation_types!r}")
        x_val, labels = self._check_xy(x_val, y_val)
        found = self._detected(x_val, labels)
        if not found.flagged_classes:
            logger.warning("Neural Cleanse flagged no class: nothing to mitigate")
            return {}
        clean, stamped, stamped_labels = self.backdoor_examples(x_val, labels)
        report: dict[str, Any] = {}
        if {"pruning", "filtering"} & set(mitigation_types):
            difference = np.sum(self._get_penultimate_layer_activations(clean)
                                - self._get_penultimate_layer_activations(stamped), axis=0)
            ranked = np.argsort(difference)  # most negative first: units the reversed trigger excites most
        for kind in mitigation_types:
            if kind == "unlearning":
                report[kind] = unlearn(self, x_val, labels, found, unlearning_epochs, unlearning_fraction)
            elif kind == "pruning":
                report[kind] = prune(self, ranked, stamped, stamped_labels, pruning_threshold, pruning_max_fraction)
            else:
                report[kind] = filter_inputs(self, ranked, clean, stamped, stamped_labels, filtering_fraction,
                                             filtering_std, pruning_threshold)
        return report

    # ----------------------------------------------------------------- prediction and copies
    def predict(self, x: np.ndarray, batch_size: int = 128, training_mode: bool = False, **kwargs) -> np.ndarray:
        """Predict class probabilities; after ``filtering``, abstain (a row of zeros) on suspicious inputs."""
        predictions = self._predict_classifier(x, batch_size=batch_size, training_mode=training_mode, **kwargs)
        if len(self.top_indices) == 0:
            return predictions
        activations = self._get_penultimate_layer_activations(x)[:, self.top_indices]
        predictions[np.any(activations > self.activation_threshold, axis=1)] = self.abstain()
        return predictions

    def loss_gradient(self, x: np.ndarray, y: np.ndarray, training_mode: bool = False, **kwargs) -> np.ndarray:
        """The loss gradient of the wrapped model (ART's version called itself forever)."""
        return KerasClassifier.loss_gradient(self, x, y, training_mode=training_mode, **kwargs)

    def class_gradient(self, x: np.ndarray, label: Any = None, training_mode: bool = False, **kwargs) -> np.ndarray:
        """The class gradients of the wrapped model (ART's version called itself forever)."""
        return KerasClassifier.class_gradient(self, x, label=label, training_mode=training_mode, **kwargs)

    def copy(self) -> "LabkitNeuralCleanse":
        """Return an independent copy: the current model's weights, the same settings, the detection kept."""
        names = ("steps", "init_cost", "norm", "learning_rate", "attack_success_threshold", "patience", "early_stop",
                 "early_stop_threshold", "early_stop_patience", "batch_size", "seed", "progress")
        twin = LabkitNeuralCleanse(self._model, use_logits=self._use_logits, clip_values=self.clip_values,
                                   cost_multiplier=self.cost_multiplier_up, **{n: getattr(self, n) for n in names})
        twin.detection, twin._detection_key = self.detection, self._detection_key
        twin.top_indices, twin.activation_threshold = list(self.top_indices), self.activation_threshold
        return twin


class NeuralCleanse(_ArtNeuralCleanse):
    """ART's ``NeuralCleanse`` transformer, returning labkit's fixed ``KerasNeuralCleanse`` estimator.

    Use it exactly like ART's: ``NeuralCleanse(classifier)(classifier, steps=..., ...)``.
    """

    def __call__(self, transformed_classifier: Any, steps: int = DEFAULT_STEPS, init_cost: float = 1e-3,  # type: ignore
                 norm: int | float = 1, learning_rate: float = 0.1, attack_success_threshold: float = 0.99,
                 patience: int = 5, early_stop: bool = True, early_stop_threshold: float = 0.99,
                 early_stop_patience: int = 10, cost_multiplier: float = 1.5, batch_size: int = 32,
                 seed: int = 0, progress: bool = True) -> LabkitNeuralCleanse:
        """Return a ``LabkitNeuralCleanse`` around a copy of ``transformed_classifier``'s model (ART's parameters,
        plus ``seed`` and ``progress``; see ``LabkitNeuralCleanse``)."""
        if not isinstance(transformed_classifier, KerasClassifier):
            raise TypeError("Neural Cleanse needs an ART KerasClassifier (labkit.train_model / load_model give one)")
        return LabkitNeuralCleanse(
            transformed_classifier.model, use_logits=transformed_classifier._use_logits,
            clip_values=transformed_classifier.clip_values, steps=steps, init_cost=init_cost, norm=norm,
            learning_rate=learning_rate, attack_success_threshold=attack_success_threshold, patience=patience,
            early_stop=early_stop, early_stop_threshold=early_stop_threshold,
            early_stop_patience=early_stop_patience, cost_multiplier=cost_multiplier, batch_size=batch_size,
            seed=seed, progress=progress)
