"""The metrics store: one JSON file, dotted keys, provenance, locked and atomic updates, clear errors."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import labkit
from labkit.metrics import MissingMetricError, load_store, metrics_path


def test_record_and_read_back(build_dir):
    labkit.record("baseline.clean_accuracy", np.float32(0.5))
    labkit.record("neural_cleanse.anomaly_index", np.array([1.0, 2.5]))
    labkit.record("baseline.clean_accuracy", 0.97)  # a re-run overwrites
    assert metrics_path() == build_dir / "metrics.json"
    expected = {"baseline.clean_accuracy": 0.97, "neural_cleanse.anomaly_index": [1.0, 2.5]}
    stored = json.loads(metrics_path().read_text())
    assert stored["format"] == 2 and stored["metrics"] == expected
    assert labkit.get_metric("neural_cleanse.anomaly_index") == [1.0, 2.5]
    assert labkit.load_metrics() == expected


def test_an_old_flat_store_is_still_read(build_dir):
    build_dir.mkdir(parents=True, exist_ok=True)
    metrics_path().write_text(json.dumps({"baseline.clean_accuracy": 0.9, "evasion.eps": 0.15}))
    assert labkit.load_metrics() == {"baseline.clean_accuracy": 0.9, "evasion.eps": 0.15}
    assert load_store().provenance == {}
    labkit.record("baseline.fgsm_accuracy", 0.2)   # upgraded in place, nothing lost
    assert labkit.load_metrics() == {"baseline.clean_accuracy": 0.9, "evasion.eps": 0.15,
                                     "baseline.fgsm_accuracy": 0.2}
    assert list(load_store().provenance) == ["baseline.fgsm_accuracy"]


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


WRITER = """
import sys
import labkit
prefix, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    labkit.record(f"{prefix}.k{i}", i)
"""


def _writers(build_dir, *args):
    env = {**os.environ, "LABKIT_OUT": str(build_dir)}
    return [subprocess.Popen([sys.executable, "-c", WRITER, *a], env=env) for a in args]


def test_two_processes_recording_at_once_lose_nothing(build_dir):
    build_dir.mkdir(parents=True, exist_ok=True)
    procs = _writers(build_dir, ("a", "300"), ("b", "300"))
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    metrics = labkit.load_metrics()
    assert len(metrics) == 600 and metrics["a.k299"] == 299 and metrics["b.k0"] == 0
    assert set(load_store().provenance) == set(metrics)


def test_a_killed_writer_leaves_a_valid_store_and_no_temporary_file(build_dir):
    build_dir.mkdir(parents=True, exist_ok=True)
    labkit.record("big.list", list(range(100_000)))   # a large store: every write takes a while, kills land in one
    for attempt in range(3):
        proc = _writers(build_dir, (f"run{attempt}", "100000"))[0]
        deadline = time.monotonic() + 120
        while f"run{attempt}.k1" not in labkit.load_metrics():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert labkit.load_metrics()["big.list"][-1] == 99_999   # valid, complete JSON after every kill
    labkit.record("after.kill", 1)
    leftovers = [p.name for p in build_dir.iterdir() if p.name not in {"metrics.json", "metrics.json.lock"}]
    assert leftovers == []
    assert labkit.load_metrics()["after.kill"] == 1


def test_the_store_gets_an_ordinary_file_mode(build_dir):
    old = os.umask(0o022)
    try:
        labkit.record("baseline.clean_accuracy", 0.9)
    finally:
        os.umask(old)
    assert stat.S_IMODE(metrics_path().stat().st_mode) == 0o644
