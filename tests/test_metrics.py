"""The metrics store: one JSON file, dotted keys, atomic updates, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import labkit
from labkit.metrics import MissingMetricError, metrics_path


def test_record_and_read_back(build_dir):
    labkit.record("baseline.clean_accuracy", np.float32(0.5))
    labkit.record("neural_cleanse.anomaly_index", np.array([1.0, 2.5]))
    labkit.record("baseline.clean_accuracy", 0.97)  # a re-run overwrites
    assert metrics_path() == build_dir / "metrics.json"
    stored = json.loads(metrics_path().read_text())
    assert stored == {"baseline.clean_accuracy": 0.97, "neural_cleanse.anomaly_index": [1.0, 2.5]}
    assert labkit.get_metric("neural_cleanse.anomaly_index") == [1.0, 2.5]
    assert labkit.load_metrics() == stored


def test_missing_metric_names_the_notebook():
    with pytest.raises(MissingMetricError, match="Run 01_evasion_fgsm.ipynb first"):
        labkit.get_metric("evasion.eps", notebook="01_evasion_fgsm.ipynb")


def test_bad_keys_and_values_are_refused():
    for key in ("", "a..b", "has space", ".lead", 3):
        with pytest.raises(ValueError):
            labkit.record(key, 1)
    with pytest.raises(TypeError):
        labkit.record("x.y", object())
    assert labkit.load_metrics() == {}


def test_corrupt_store_says_what_to_do():
    metrics_path().write_text("{not json")
    with pytest.raises(ValueError, match="delete it"):
        labkit.load_metrics()
