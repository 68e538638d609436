"""labkit's Neural Cleanse: stock ART's bugs are real, labkit's wrapper fixes them, and the defences work."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from art.attacks.poisoning import PoisoningAttackBackdoor
from art.defences.transformer.poisoning import NeuralCleanse as ArtNeuralCleanse
from art.estimators.poison_mitigation.neural_cleanse import KerasNeuralCleanse

import labkit
from labkit.neural_cleanse import (DEFAULT_DEFENDER_FRACTION, DEFAULT_STEPS, Detection, LabkitNeuralCleanse,
                                   NeuralCleanse, outlier_rule)
from labkit.poisoning import Trigger, attack_success_rate, poison_dataset, predicted_labels

TARGET = 0


def tiny_classifier(input_shape=(16, 16, 1)):
    """Flatten -> Dense -> Dense: the shape on which ART's index-based "penultimate layer" goes wrong."""
    import keras

    model = keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(name="flatten"),
                              keras.layers.Dense(16, activation="relu", name="hidden"),
                              keras.layers.Dense(10, activation="softmax", name="out")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    return labkit.models.wrap_model(model)


@pytest.fixture(scope="module")
def lab():
    """A small backdoored model (10% poison, 3x3 trigger, target 0), a validation split and a held-out split."""
    data = labkit.load_dataset(n_train=600, n_test=300)
    trigger = Trigger()
    poisoned = poison_dataset(data.x_train, data.y_train, PoisoningAttackBackdoor(trigger), target_class=TARGET,
                              poison_fraction=0.1)
    labkit.set_seed(0)
    # 64-image batches: the optimiser steps these tests' thresholds were set with (train_model's default is 128)
    model = labkit.train_model(poisoned.x, poisoned.y, epochs=10, batch_size=64, progress=False)
    split = {"x_val": data.x_test[:150], "y_val": data.y_test[:150], "x_eval": data.x_test[150:],
             "y_eval": data.y_test[150:]}
    return {"data": data, "model": model, "trigger": trigger, **split}


@pytest.fixture(scope="module")
def defence(lab):
    nc = NeuralCleanse(lab["model"])(lab["model"], steps=30, progress=False)
    nc.detect(lab["x_val"], lab["y_val"])
    return nc


def asr(clf, lab):
    return attack_success_rate(clf, lab["x_eval"], lab["y_eval"], target_class=TARGET, trigger=lab["trigger"])


def test_stock_art_is_broken_and_labkit_fixes_it():
    """Run ART 1.20.1's own path on a tiny model: the bugs are there; labkit's path on the same model differs."""
    classifier = tiny_classifier()
    x = np.random.default_rng(0).uniform(size=(64, 16, 16, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(64) % 10]
    stock = ArtNeuralCleanse(classifier)(classifier, steps=2, batch_size=32)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        stock_masks = [stock.generate_backdoor(x, y, np.eye(10)[c])[0] for c in (0, 1)]
    assert float(stock.opt.learning_rate) == 0.0, "ART's reset() zeroes the learning rate under Keras 3"
    np.testing.assert_array_equal(stock_masks[0], stock_masks[1])  # so masks never move: all classes alike
    assert "tf.Tensor" in printed.getvalue(), "ART prints a tensor every step"
    assert stock._get_penultimate_layer_activations(x).shape[1] == 256, "ART picks Flatten, not the Dense layer"
    labels = np.eye(10)[classifier.predict(x[:5]).argmax(axis=1)]  # the model gets every image "right"
    assert stock.check_backdoor_effective(x[:5], labels), "ART compares probabilities with one-hot labels"

    fixed = NeuralCleanse(classifier)(classifier, steps=20, batch_size=32, progress=False)
    assert isinstance(fixed, KerasNeuralCleanse) and isinstance(fixed, LabkitNeuralCleanse)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        fixed_masks = [fixed.generate_backdoor(x, y, np.eye(10)[c]).mask for c in (0, 1)]
    assert float(fixed.opt.learning_rate) > 0.0
    assert not np.allclose(fixed_masks[0], fixed_masks[1], atol=1e-3)
    assert printed.getvalue() == ""
    assert fixed._get_penultimate_layer_activations(x).shape[1] == 16
    fixed.detect(x, y)
    assert not fixed.check_backdoor_effective(x[:5], labels), "correct predictions: the backdoor is not effective"


def test_reset_keeps_the_learning_rate(lab):
    nc = NeuralCleanse(lab["model"])(lab["model"], steps=5, progress=False)
    nc.reset()
    assert float(nc.opt.learning_rate) == pytest.approx(0.1)
    nc.generate_backdoor(lab["x_val"], lab["y_val"], 3)
    nc.reset()
    assert float(nc.opt.learning_rate) > 0.0


def test_detection_flags_the_target_with_finite_indices(lab, defence):
    found = defence.detection
    assert found.masks.shape == (10, 16, 16, 1) and found.patterns.shape == (10, 16, 16, 1)
    assert np.all(np.isfinite(defence.anomaly_index)) and np.all(np.isfinite(defence.l1_norms))
    assert len(defence.anomaly_index) == len(defence.l1_norms) == 10
    spread = found.masks.reshape(10, -1)
    assert min(np.abs(spread[i] - spread[j]).max() for i in range(10) for j in range(i)) > 1e-3, "masks differ"
    assert TARGET in defence.flagged_classes
    assert defence.anomaly_index[TARGET] > 2 and np.argmin(defence.l1_norms) == TARGET
    corner = found.masks[TARGET][-4:, -4:].sum() / found.masks[TARGET].sum()
    assert corner > 0.5, "the reversed trigger of the target sits on the real trigger's corner"
    flagged = defence.outlier_detection(lab["x_val"], lab["y_val"])  # ART's API, reusing the detection
    assert [f.label for f in flagged] == defence.flagged_classes
    np.testing.assert_array_equal(flagged[0].mask, found.masks[flagged[0].label])


def test_generate_backdoor_returns_pattern_then_mask(lab):
    nc = NeuralCleanse(lab["model"])(lab["model"], steps=10, progress=False)
    pattern, mask = nc.generate_backdoor(lab["x_val"], lab["y_val"], np.eye(10)[TARGET])
    assert mask.shape == (16, 16, 1) and pattern.shape == (16, 16, 1)
    result = nc.generate_backdoor(lab["x_val"], lab["y_val"], TARGET)
    assert result.mask.shape == (16, 16, 1) and result.pattern is result[0]


@pytest.mark.parametrize("target", [10, -1, np.eye(11)[10], "3"])
def test_target_class_out_of_range_is_a_value_error(lab, target):
    nc = NeuralCleanse(lab["model"])(lab["model"], steps=2, progress=False)
    with pytest.raises(ValueError):
        nc.generate_backdoor(lab["x_val"], lab["y_val"], target)


def test_bad_inputs_are_value_errors(lab, defence):
    with pytest.raises(ValueError, match="shape"):
        defence.detect(lab["x_val"][:, :8, :8])
    with pytest.raises(ValueError, match="shape"):
        defence.outlier_detection(lab["x_val"][..., 0], lab["y_val"])
    with pytest.raises(ValueError, match="labels"):
        defence.mitigate(lab["x_val"], lab["y_val"][:10], ["unlearning"])
    with pytest.raises(ValueError, match="mitigation_types"):
        defence.mitigate(lab["x_val"], lab["y_val"], ["retraining"])
    with pytest.raises(ValueError, match="norm"):
        NeuralCleanse(lab["model"])(lab["model"], norm=3)
    with pytest.raises(ValueError, match="unlearning"):
        defence.copy().mitigate(lab["x_val"], lab["y_val"], ["unlearning"], unlearning_fraction=1.5)


def test_outlier_rule_is_arts():
    norms = [9.0, 30.0, 28.0, 31.0, 27.0, 33.0, 29.0, 30.5, 26.0, 32.0]
    index, flagged = outlier_rule(norms)
    median = np.median(norms)
    mad = 1.4826 * np.median(np.abs(np.array(norms) - median))
    np.testing.assert_allclose(index, np.abs(np.array(norms) - median) / mad)
    assert flagged == [0]
    _, flagged_big = outlier_rule([90.0] + norms[1:])  # a big mask is an outlier, but not a backdoor
    assert flagged_big == []
    flat, none = outlier_rule([5.0] * 10)
    assert np.all(flat == 0) and none == []
    with pytest.raises(ValueError):
        outlier_rule([1.0, float("nan")])


def test_unlearning_drops_the_attack_success_rate_on_a_copy(lab, defence):
    model = lab["model"]
    weights_before = [w.copy() for w in model.model.get_weights()]
    asr_before = asr(model, lab)
    assert asr_before > 0.9
    mitigated = defence.copy()
    report = mitigated.mitigate(lab["x_val"], lab["y_val"], mitigation_types=["unlearning"])
    assert report["unlearning"]["stamped_per_epoch"] == round(0.2 * len(lab["x_val"]))
    assert asr(mitigated, lab) < 0.3 * asr_before
    clean_before = labkit.accuracy(model, lab["x_eval"], lab["y_eval"])
    assert labkit.accuracy(mitigated, lab["x_eval"], lab["y_eval"]) > clean_before - 0.05
    for before, after in zip(weights_before, model.model.get_weights()):  # the caller's model is untouched
        np.testing.assert_array_equal(before, after)
    assert asr(defence, lab) == asr_before  # and so is the defence it was copied from


def test_pruning_and_filtering_change_what_they_claim(lab, defence):
    x_trig = lab["trigger"](lab["x_eval"][lab["y_eval"] != TARGET])
    pruned = defence.copy()
    report = pruned.mitigate(lab["x_val"], lab["y_val"], ["pruning"])["pruning"]
    assert 0 < report["units_pruned"] <= int(0.3 * 64)
    weights = pruned._features_layer().get_weights()[0]
    assert np.all(weights[:, report["units"]] == 0)
    assert asr(pruned, lab) < asr(defence, lab)
    filtering = defence.copy()
    filtering.mitigate(lab["x_val"], lab["y_val"], ["filtering"])
    abstain_triggered = np.mean(predicted_labels(filtering, x_trig) == -1)
    abstain_clean = np.mean(predicted_labels(filtering, lab["x_eval"]) == -1)
    assert abstain_triggered > abstain_clean + 0.15
    assert asr(filtering, lab) < asr(defence, lab) - 0.15
    assert np.mean(predicted_labels(defence, x_trig) == -1) == 0  # the original does not filter


def test_nothing_flagged_means_nothing_mitigated(lab, defence):
    import dataclasses

    twin = defence.copy()
    twin.detection = dataclasses.replace(defence.detection, flagged_classes=[])
    weights_before = [w.copy() for w in twin.model.get_weights()]
    assert twin.mitigate(lab["x_val"], lab["y_val"], ["unlearning", "pruning", "filtering"]) == {}
    for before, after in zip(weights_before, twin.model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert twin.top_indices == []


def test_pruning_says_when_it_stops_at_its_cap_with_the_backdoor_still_there(lab, defence, caplog):
    _, stamped, labels = defence.backdoor_examples(lab["x_val"], lab["y_val"])
    capped = defence.copy()
    with caplog.at_level(logging.WARNING, logger="labkit.neural_cleanse"):
        report = capped.mitigate(lab["x_val"], lab["y_val"], ["pruning"], pruning_max_fraction=1 / 64)["pruning"]
    assert report["units_pruned"] == report["max_units"] == 1
    assert report["backdoor_removed"] is False and "cap" in report["stopped"]
    assert report["reversed_trigger_success"] == pytest.approx(capped.hijack_rate(stamped, labels))
    assert report["reversed_trigger_success"] > 0.05
    assert "pruning stopped at its cap" in caplog.text and "without removing the backdoor" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="labkit.neural_cleanse"):
        full = defence.copy().mitigate(lab["x_val"], lab["y_val"], ["pruning"])["pruning"]
    assert full["backdoor_removed"] is True and full["reversed_trigger_success"] <= 0.05
    assert full["units_pruned"] < full["max_units"] and "pruning stopped" not in caplog.text


def test_filtering_reports_its_refusals_and_when_the_backdoor_gets_through(lab, defence, caplog):
    clean, stamped, labels = defence.backdoor_examples(lab["x_val"], lab["y_val"])
    filtering = defence.copy()
    with caplog.at_level(logging.WARNING, logger="labkit.neural_cleanse"):
        report = filtering.mitigate(lab["x_val"], lab["y_val"], ["filtering"])["filtering"]
    refused_clean = np.mean(predicted_labels(filtering, clean) == -1)
    assert report["clean_refusal_rate"] == pytest.approx(refused_clean) and 0 < refused_clean < 0.5
    assert report["reversed_trigger_refusal_rate"] == pytest.approx(np.mean(predicted_labels(filtering, stamped) == -1))
    assert report["backdoor_removed"] is (report["reversed_trigger_success"] <= 0.05)
    lax = defence.copy()
    with caplog.at_level(logging.WARNING, logger="labkit.neural_cleanse"):
        lax_report = lax.mitigate(lab["x_val"], lab["y_val"], ["filtering"], filtering_std=100.0)["filtering"]
    assert lax_report["clean_refusal_rate"] == 0.0 and lax_report["backdoor_removed"] is False
    assert lax_report["reversed_trigger_success"] == pytest.approx(defence.hijack_rate(stamped, labels))
    assert "filtering did not remove the backdoor" in caplog.text


def test_budget_is_in_passes_and_early_stopping_ends_the_search_on_mnist_sized_data(tmp_path):
    """8,000 28x28 training images, the defender holding 15% (1,200): the default budget is passes over those
    images, and the search stops early, before it. (Before, the budget was 300 batches, 8 passes here, and
    early stopping, which waits for epochs of the cost schedule, could never end it.)"""
    import keras

    with np.load(_benchmark().write_mnist_sized(tmp_path / "digits28.npz")) as archive:
        x, y = (archive["x_train"] / 255.0).astype(np.float32)[..., None], archive["y_train"].astype(int)
    assert x.shape == (8000, 28, 28, 1)
    poison = np.random.default_rng(1).random(len(x)) < 0.1
    x[poison], y = Trigger()(x[poison]), np.where(poison, TARGET, y)
    labkit.set_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu", name="features"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x, np.eye(10)[y], epochs=5, batch_size=64, verbose=0)
    classifier = labkit.models.wrap_model(model)
    x_val, y_val = x[~poison][:1200], y[~poison][:1200]
    found = NeuralCleanse(classifier)(classifier, progress=False).detect(x_val, y_val)
    assert found.stopped_early and found.epochs < DEFAULT_STEPS
    assert found.steps == found.epochs * math.ceil(1200 / 32)
    assert found.flagged_classes == [TARGET]


def test_a_search_returns_one_detection_with_the_outlier_rule_applied(lab, defence):
    """The trigger search's result and the detection are one object (they used to repeat six fields)."""
    from labkit._nc_optimize import TriggerSearch

    found = defence.detection
    assert isinstance(found, Detection)
    index, flagged = outlier_rule(found.l1_norms)
    np.testing.assert_allclose(found.anomaly_index, index)
    assert found.flagged_classes == flagged
    search = TriggerSearch(lab["model"].model, (16, 16, 1), [3, TARGET], nb_classes=10)
    pair = search.run(lab["x_val"], 2, progress=False)
    assert isinstance(pair, Detection) and pair.masks.shape == (2, 16, 16, 1) and pair.epochs == 2
    assert pair.anomaly_index.shape == (2,) and set(pair.flagged_classes) <= {3, TARGET}  # labels, not positions
    one = TriggerSearch(lab["model"].model, (16, 16, 1), [TARGET], nb_classes=10).run(lab["x_val"], 1, progress=False)
    assert one.anomaly_index.tolist() == [0.0] and one.flagged_classes == []


def test_notebook_04_and_the_benchmarks_use_the_default_defender_share():
    """The benchmarks measure what notebook 04 runs: one defender share, labkit's DEFAULT_DEFENDER_FRACTION."""
    import ast

    import nbformat

    root = Path(__file__).resolve().parents[1]
    notebook = nbformat.read(root / "notebooks" / "04_neural_cleanse.ipynb", as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    values = {t.id: n.value.value for n in ast.parse(cell.source).body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
    assert values["DEFENDER_FRACTION"] == DEFAULT_DEFENDER_FRACTION and values["STEPS"] == DEFAULT_STEPS
    assert _benchmark().settings(False)["defender_fraction"] == DEFAULT_DEFENDER_FRACTION
    assert _benchmark().settings(True)["defender_fraction"] == DEFAULT_DEFENDER_FRACTION
    key_claims = (root / "benchmarks" / "key_claims.py").read_text()
    assert "clean_subset(data.x_train, data.y_train, DEFAULT_DEFENDER_FRACTION, seed=seed)" in key_claims


def test_same_budget_is_the_same_passes_on_small_and_large_defender_data(lab):
    nc = NeuralCleanse(lab["model"])(lab["model"], steps=3, early_stop=False, progress=False)
    small, large = nc.detect(lab["x_val"][:64]), nc.detect(np.concatenate([lab["x_val"]] * 2))
    assert small.epochs == large.epochs == 3
    assert (small.steps, large.steps) == (3 * 2, 3 * math.ceil(300 / 32))


def _benchmark():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "neural_cleanse.py"
    spec = importlib.util.spec_from_file_location("nc_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_records_its_data_set_target_and_trigger_as_used():
    bench = _benchmark()
    pattern = bench._setting(bench._parse(["--target", "7", "--trigger", "pattern"]))
    assert pattern["target_class"] == 7 and pattern["trigger"] == "pattern:value=1.0"
    assert "size" not in pattern["trigger"] and "corner" not in pattern["trigger"]
    assert Trigger.from_spec(pattern["trigger"]) == Trigger("pattern")
    square = bench._setting(bench._parse(["--trigger", "square:size=1,corner=top-left", "--dataset", "x.npz"]))
    assert square["trigger"] == "square:size=1,value=1.0,corner=top-left" and square["dataset_name"] == "mnist"
    assert bench._default_out(pattern).name == "neural_cleanse_eval-digits-target7-pattern.json"
    with pytest.raises(ValueError, match="target"):
        bench._setting(bench._parse(["--target", "10"]))


def test_pairs_report_says_when_pruning_failed_and_what_filtering_refuses():
    import matplotlib

    matplotlib.use("Agg")
    from labkit.classroom import report

    nc = "neural_cleanse.mitigations."
    metrics = {"backdoor.clean_accuracy": 0.97, "backdoor.attack_success_rate": 1.0,
               nc + "pruning.clean_accuracy": 0.96, nc + "pruning.attack_success_rate": 0.258,
               nc + "pruning.backdoor_removed": False,
               nc + "filtering.clean_accuracy": 0.77, nc + "filtering.attack_success_rate": 0.08,
               nc + "filtering.clean_abstain_rate": 0.19, nc + "filtering.triggered_abstain_rate": 0.92,
               nc + "filtering.backdoor_removed": True}
    table = report.report_table(metrics)
    pruning = table.loc["Neural Cleanse pruning · trigger"]
    filtering = table.loc["Neural Cleanse filtering · trigger"]
    assert "stopped WITHOUT removing the backdoor" in pruning["notes"]
    assert "refuses honest inputs 19%" in filtering["notes"] and "backdoor removed" in filtering["notes"]
    assert {nc + "pruning.backdoor_removed", nc + "filtering.backdoor_removed"} <= set(report.CORE_KEYS)
    ax = report.tradeoff_plot(table).axes[0]
    key = " ".join(t.get_text() for t in [*ax.texts, *ax.get_legend().get_texts()])
    entries = [" ".join(e.split()) for e in key.replace("\n      ", " ").split("\n")]
    assert any("filtering" in e and "refuses honest inputs 19%" in e for e in entries)
    assert any("pruning" in e and "WITHOUT removing the backdoor" in e for e in entries)
    assert not any("unlearning" in e and "refuses" in e for e in entries)


def test_teachers_page_shows_the_benchmark_per_setting(tmp_path):
    from labkit.classroom import teacher

    result = {"setting": "full", "dataset": "digits", "target_class": 7, "trigger": "pattern:value=1.0",
              "complete": True, "settings": {"steps": 120}, "seeds": [{"seed": 0}, {"seed": 1}],
              "target_anomaly_index_per_seed": [3.41, 2.87], "detection_rate": 1.0, "false_positive_rate": 0.0,
              "search_epochs": [[101, 66], [95, 70]],
              "pruning": {"attack_success_rate": [0.0, 0.258], "backdoor_removed_by_its_own_check": [True, False]},
              "filtering": {"attack_success_rate": [0.05, 0.08], "clean_abstain_rate": [0.19, 0.23]}}
    section = teacher.neural_cleanse_section([result])
    assert "digits · 7 · `pattern:value=1.0`" in section and "3.41, 2.87" in section
    assert "0%-26%, 1/2" in section and "5%-8%, 19%-23%" in section and "budget of 120 passes" in section
    (tmp_path / "timings.json").write_text("{}")
    (tmp_path / "neural_cleanse_eval-digits-target7-pattern.json").write_text(json.dumps(result))
    default = {**result, "target_class": 0, "trigger": "square:size=3,value=1.0,corner=bottom-right",
               "complete": False, "settings": {"steps": 120, "seeds": [0, 1, 2]}}
    (tmp_path / "neural_cleanse_eval.json").write_text(json.dumps(default))
    page = teacher.write_page(tmp_path, tmp_path / "teacher.md").read_text()
    assert "## Neural Cleanse over seeds (benchmark)" in page and "3.41, 2.87" in page
    assert page.index("digits · 0 · `square") < page.index("digits · 7 · `pattern")  # the default setting first
    assert "0, 1 (incomplete run: planned 0, 1, 2)" in page
    assert teacher.neural_cleanse_section([]) == ""


def test_benchmark_merges_runs_of_single_seeds_into_the_settings_json(tmp_path):
    """Seeds run side by side (one process each) merge into the JSON one run of all of them writes."""
    bench = _benchmark()
    setting = bench._setting(bench._parse(["--target", "7", "--trigger", "pattern"]))

    def run(seed, index, **changed):
        row = {"seed": seed, "target_anomaly_index": index, "target_flagged": True, "clean_model_flagged": False,
               "poisoned": {"detection_seconds": 1.0, "epochs": 70}, "clean": {"detection_seconds": 1.0, "epochs": 60}}
        cfg = {**bench.settings(False), "seeds": [seed], **changed}
        return bench._write(tmp_path / f"seed{seed}-{index}.json", False, setting, cfg, [row], {}, 10.0)

    for seed, index in ((2, 3.5), (0, 4.0), (1, 3.2)):
        run(seed, index)
    paths = sorted(tmp_path.glob("seed*.json"))
    merged = bench.merge(paths, tmp_path / "merged.json")
    assert merged == json.loads((tmp_path / "merged.json").read_text())
    assert merged["seeds_done"] == [0, 1, 2] and merged["settings"]["seeds"] == [0, 1, 2] and merged["complete"]
    assert merged["target_anomaly_index_per_seed"] == [4.0, 3.2, 3.5] and merged["goal_index_at_least_3_every_seed"]
    assert merged["trigger"] == "pattern:value=1.0" and merged["total_seconds"] == 30.0
    assert merged["merged_from"] == [str(p) for p in paths]
    with pytest.raises(SystemExit, match="more than one run"):
        bench.merge([*paths, tmp_path / "merged.json"], tmp_path / "twice.json")
    other = run(3, 2.0, defender_fraction=0.5)
    with pytest.raises(SystemExit, match="only runs that differ in their seeds"):
        bench.merge([*paths, tmp_path / "seed3-2.0.json"], tmp_path / "mixed.json")
    assert other["settings"]["defender_fraction"] == 0.5 and not (tmp_path / "mixed.json").exists()


def test_mitigation_row_records_each_mitigations_numbers_for_the_report(monkeypatch, tmp_path):
    """04 Step 7's rows: every mitigation's scores and pruning's and filtering's own verdict land in the store."""
    from labkit.metrics import load_metrics
    from labkit.neural_cleanse import OWN_CHECK, mitigation_row

    monkeypatch.setenv("LABKIT_OUT", str(tmp_path))
    scores = {"clean_accuracy": 0.9, "attack_success_rate": 0.1, "clean_abstain_rate": 0.2,
              "triggered_abstain_rate": 0.8}
    rows = {"unlearning": mitigation_row("unlearning", scores, {"unlearning": {"epochs": 10}}),
            "pruning": mitigation_row("pruning", scores, {"pruning": {"backdoor_removed": False}}),
            "filtering": mitigation_row("filtering", scores, {"filtering": {"backdoor_removed": True}})}
    stored = load_metrics(tmp_path / "metrics.json")
    nc = "neural_cleanse.mitigations."
    assert {k for k in stored if k.startswith(nc)} == {
        *(nc + f"{m}.{c}" for m in rows for c in ("clean_accuracy", "attack_success_rate")),
        nc + "pruning.backdoor_removed", nc + "filtering.backdoor_removed",
        nc + "filtering.clean_abstain_rate", nc + "filtering.triggered_abstain_rate"}
    assert stored[nc + "pruning.backdoor_removed"] is False and stored[nc + "filtering.triggered_abstain_rate"] == 0.8
    assert OWN_CHECK not in rows["unlearning"] and rows["pruning"][OWN_CHECK] is False
    assert rows["filtering"][OWN_CHECK] is True and rows["filtering"]["clean_accuracy"] == 0.9
    # nothing flagged, nothing done: the scores are still recorded, no verdict is invented
    assert OWN_CHECK not in mitigation_row("pruning", scores, {})
