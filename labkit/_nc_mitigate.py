"""Neural Cleanse's three mitigations on labkit's estimator: the code behind ``LabkitNeuralCleanse.mitigate``.

Each function changes the estimator's own model copy (or its filter) and returns the report ``mitigate``
hands back. Pruning and filtering say whether they removed the backdoor (``backdoor_removed``, judged on the
defender's images stamped with the reversed trigger) and log a warning when they did not.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from labkit._nc_optimize import Detection

logger = logging.getLogger("labkit.neural_cleanse")


def filter_inputs(defence: Any, ranked: np.ndarray, clean: np.ndarray, stamped: np.ndarray,
                  stamped_labels: np.ndarray, fraction: float, std: float, threshold: float) -> dict[str, Any]:
    """Make ``defence`` abstain on inputs that excite the top ``ranked`` units; report what it refuses.

    The report holds the units and their thresholds, the share of ``clean`` images refused
    (``clean_refusal_rate``: honest users turned away, measured on the defender's images that set the
    thresholds), the share of ``stamped`` images refused, the share still sent to a flagged class
    (``reversed_trigger_success``) and ``backdoor_removed`` (that share at most ``threshold``).

    :param defence: labkit's Neural Cleanse estimator, after detection.
    :param ranked: the units of the features layer, those the reversed trigger excites most first.
    :param clean: the defender's clean images of the non-flagged classes.
    :param stamped: the same images stamped with a flagged class's reversed trigger.
    :param stamped_labels: their true labels.
    :param fraction: the share of the units to watch (at least one).
    :param std: the threshold, in clean standard deviations above the clean mean.
    :param threshold: the largest share of stamped images reaching a flagged class that counts as removed.
    """
    from labkit.poisoning import predicted_labels

    defence.top_indices = ranked[: int(np.ceil(len(ranked) * fraction))].tolist()
    chosen = defence._get_penultimate_layer_activations(clean)[:, defence.top_indices]
    defence.activation_threshold = chosen.mean(axis=0) + std * chosen.std(axis=0)
    success = defence.hijack_rate(stamped, stamped_labels)
    report = {"units": list(defence.top_indices), "thresholds": np.round(defence.activation_threshold, 4).tolist(),
              "clean_refusal_rate": float(np.mean(predicted_labels(defence, clean) == -1)),
              "reversed_trigger_refusal_rate": float(np.mean(predicted_labels(defence, stamped) == -1)),
              "reversed_trigger_success": success, "backdoor_removed": bool(success <= threshold)}
    if not report["backdoor_removed"]:
        logger.warning("filtering did not remove the backdoor: %.1f%% of the defender's images stamped with the "
                       "reversed trigger still reach a flagged class (it refuses %.1f%% of them and %.1f%% of "
                       "the clean ones); watch more units (filtering_fraction) or use unlearning",
                       100 * success, 100 * report["reversed_trigger_refusal_rate"],
                       100 * report["clean_refusal_rate"])
    return report


def unlearn(defence: Any, x_val: np.ndarray, labels: np.ndarray, found: Detection, epochs: int,
            fraction: float) -> dict[str, Any]:
    """Fine-tune ``defence``'s model on ``epochs`` copies of the validation data, each with a fresh ``fraction``
    of it stamped with a flagged class's reversed trigger, true labels kept.

    :param defence: labkit's Neural Cleanse estimator, after detection.
    :param x_val: the defender's clean images.
    :param labels: their integer labels.
    :param found: the detection (flagged classes and their reversed triggers).
    :param epochs: the copies of the data to fine-tune on (one Keras epoch over all of them).
    :param fraction: the share of each copy stamped with a reversed trigger.
    """
    import keras

    from labkit._fast_keras import prepare_fit

    if not 0.0 < fraction < 1.0 or int(epochs) < 1:
        raise ValueError(f"unlearning needs a fraction strictly between 0 and 1 and at least 1 epoch, "
                         f"got unlearning_fraction={fraction!r}, unlearning_epochs={epochs!r}")
    rng = np.random.default_rng(defence.seed)
    n_stamp = max(1, int(round(fraction * len(x_val))))
    copies = []
    for _ in range(int(epochs)):
        x_epoch = x_val.copy()
        chosen = rng.choice(len(x_val), size=n_stamp, replace=False)
        which = rng.choice(found.flagged_classes, size=n_stamp)
        masks, patterns = found.masks[which], found.patterns[which]
        x_epoch[chosen] = (1.0 - masks) * x_epoch[chosen] + masks * patterns
        copies.append(x_epoch)
    onehot = keras.utils.to_categorical(np.tile(labels, int(epochs)), defence.nb_classes)
    prepare_fit(defence._model, x_val, onehot)
    defence._model.fit(np.concatenate(copies), onehot, batch_size=32, epochs=1, verbose=0, shuffle=True)
    return {"epochs": int(epochs), "stamped_per_epoch": n_stamp, "images": len(x_val)}


def prune(defence: Any, ranked: np.ndarray, stamped: np.ndarray, stamped_labels: np.ndarray, threshold: float,
          max_fraction: float) -> dict[str, Any]:
    """Zero the ``ranked`` units in order until the reversed trigger stops working or the cap is reached.

    The report says which units were pruned, the cap (``max_units``), the share of ``stamped`` images still
    sent to a flagged class (``reversed_trigger_success``) and whether that is at most ``threshold``
    (``backdoor_removed``); a warning is logged when pruning stops at its cap with the backdoor still there.

    :param defence: labkit's Neural Cleanse estimator, after detection.
    :param ranked: the units of the features layer, those the reversed trigger excites most first.
    :param stamped: the defender's images stamped with a flagged class's reversed trigger.
    :param stamped_labels: their true labels.
    :param threshold: pruning stops once at most this share of ``stamped`` reaches a flagged class.
    :param max_fraction: the largest share of the units pruning may remove.
    """
    pruned, limit = 0, int(max_fraction * len(ranked))
    success = defence.hijack_rate(stamped, stamped_labels)
    while pruned < limit and success > threshold:
        defence._prune_neuron_at_index(int(ranked[pruned]))
        pruned += 1
        success = defence.hijack_rate(stamped, stamped_labels)
    removed = bool(success <= threshold)
    if not removed:
        logger.warning("pruning stopped at its cap of %d%% of the units (%d of %d) without removing the backdoor: "
                       "%.1f%% of the defender's images stamped with the reversed trigger still reach a flagged "
                       "class; raise pruning_max_fraction or use unlearning",
                       round(100 * max_fraction), pruned, len(ranked), 100 * success)
    return {"units_pruned": pruned, "of": len(ranked), "units": [int(i) for i in ranked[:pruned]],
            "max_units": limit, "reversed_trigger_success": success, "backdoor_removed": removed,
            "stopped": "the reversed trigger stopped working" if removed else "at the cap, backdoor still there"}


OWN_CHECK = "backdoor removed (own check)"
"""The column of 04's table holding pruning's and filtering's own verdict on the reversed trigger."""


def mitigation_row(name: str, scores: dict[str, float], report: dict[str, Any]) -> dict[str, Any]:
    """Record one mitigation's numbers for the report and return its row of the mitigation table.

    Used in 04, Step 7. Records ``neural_cleanse.mitigations.<name>.clean_accuracy`` and ``.attack_success_rate``;
    for filtering also ``.clean_abstain_rate`` and ``.triggered_abstain_rate``; for pruning and filtering their own
    check ``.backdoor_removed``, which joins the row as "backdoor removed (own check)".

    :param name: the mitigation ("unlearning", "pruning" or "filtering").
    :param scores: the mitigated model's ``labkit.poisoning.backdoor_scores`` on the test images.
    :param report: what ``mitigate`` returned for it (``{name: {...}}``; empty when nothing was flagged).
    """
    from labkit.metrics import record

    key = f"neural_cleanse.mitigations.{name}."
    row = dict(scores)
    if name in ("pruning", "filtering") and name in report:
        row[OWN_CHECK] = report[name]["backdoor_removed"]
        record(key + "backdoor_removed", row[OWN_CHECK])
    kept = ["clean_accuracy", "attack_success_rate"]
    kept += ["clean_abstain_rate", "triggered_abstain_rate"] if name == "filtering" else []
    for column in kept:
        record(key + column, row[column])
    return row
