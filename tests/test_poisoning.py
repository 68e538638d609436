"""Backdoor poisoning: the trigger, the poisoned training set, the attack success rate and the sweep."""

from __future__ import annotations

import numpy as np
import pytest
from art.attacks.poisoning import PoisoningAttackBackdoor

import labkit
from labkit.poisoning import Trigger, attack_success_rate, poison_dataset, predicted_labels


class StubClassifier:
    """Answers ``target`` when the bottom-right pixel is lit, else ``fallback`` (or abstains with all zeros)."""

    nb_classes = 10
    input_shape = (16, 16, 1)

    def __init__(self, target: int, fallback: int | None = 3, abstain_on_trigger: bool = False):
        self.target, self.fallback, self.abstain_on_trigger = target, fallback, abstain_on_trigger

    def predict(self, x, batch_size=256):
        out = np.zeros((len(x), 10), np.float32)
        lit = x[:, -1, -1, 0] >= 0.99
        if not self.abstain_on_trigger:
            out[lit, self.target] = 1.0
        if self.fallback is not None:
            out[~lit, self.fallback] = 1.0
        return out


@pytest.fixture(scope="module")
def small():
    return labkit.load_dataset(n_train=200, n_test=100)


def test_square_trigger_stamps_only_its_corner_and_leaves_the_input_alone():
    x = np.full((2, 16, 16, 1), 0.25, np.float32)
    stamped = Trigger(size=3, value=1.0)(x)
    assert np.all(x == 0.25), "the input batch must not change"
    assert np.all(stamped[:, -3:, -3:, :] == 1.0)
    assert np.all(stamped[:, :-3, :, :] == 0.25) and np.all(stamped[:, :, :-3, :] == 0.25)
    top_left = Trigger(size=2, value=0.5, corner="top-left")(x)
    assert np.all(top_left[:, :2, :2] == 0.5) and np.sum(top_left != 0.25) == 2 * 4


def test_trigger_mask_spec_and_art_pattern():
    from art.attacks.poisoning.perturbations import add_pattern_bd

    assert Trigger().mask((16, 16, 1)).sum() == 9
    assert Trigger(size=4).mask((16, 16, 3)).shape == (16, 16, 1)
    trigger = Trigger("square", 2, 0.8, "top-right")
    assert Trigger.from_spec(trigger.spec) == trigger
    x = np.random.default_rng(0).uniform(size=(3, 16, 16, 1)).astype(np.float32)
    np.testing.assert_array_equal(Trigger("pattern")(x), add_pattern_bd(x, distance=2, pixel_value=1.0))


@pytest.mark.parametrize("kwargs", [{"kind": "star"}, {"size": 0}, {"value": 2.0}, {"corner": "middle"}])
def test_bad_trigger_settings_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        Trigger(**kwargs)


def test_poison_dataset_relabels_a_fraction_of_source_images_through_art(small):
    attack = PoisoningAttackBackdoor(Trigger())
    x_before, y_before = small.x_train.copy(), small.y_train.copy()
    poisoned = poison_dataset(small.x_train, small.y_train, attack, target_class=7, poison_fraction=0.1, seed=1)
    np.testing.assert_array_equal(small.x_train, x_before)
    np.testing.assert_array_equal(small.y_train, y_before)
    n_sources = int(np.sum(small.y_train != 7))
    assert poisoned.n_poison == round(0.1 * n_sources)
    assert np.all(poisoned.original_labels != 7)
    assert np.all(poisoned.y[poisoned.poison_indices] == 7)
    changed = np.flatnonzero(np.any(poisoned.x != small.x_train, axis=(1, 2, 3)))
    assert set(changed) <= set(poisoned.poison_indices)
    assert np.all(poisoned.x[poisoned.poison_indices][:, -3:, -3:] == 1.0)
    untouched = np.setdiff1d(np.arange(len(small.y_train)), poisoned.poison_indices)
    np.testing.assert_array_equal(poisoned.y[untouched], small.y_train[untouched])


def test_poison_dataset_respects_source_classes(small):
    attack = PoisoningAttackBackdoor(Trigger())
    poisoned = poison_dataset(small.x_train, small.y_train, attack, target_class=0, poison_fraction=0.5,
                              source_classes=[3, 8])
    assert set(poisoned.original_labels) <= {3, 8}
    assert poisoned.n_poison == round(0.5 * np.isin(small.y_train, [3, 8]).sum())


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, 1.5, "0.1", True])
def test_poison_fraction_outside_zero_one_is_a_value_error(small, fraction):
    with pytest.raises(ValueError, match="poison_fraction"):
        poison_dataset(small.x_train, small.y_train, PoisoningAttackBackdoor(Trigger()), target_class=0,
                       poison_fraction=fraction)


@pytest.mark.parametrize("target", [-1, 10, 2.0, None])
def test_target_class_out_of_range_is_a_value_error(small, target):
    with pytest.raises(ValueError, match="target_class"):
        poison_dataset(small.x_train, small.y_train, PoisoningAttackBackdoor(Trigger()), target_class=target,
                       poison_fraction=0.1)
    with pytest.raises(ValueError, match="target_class"):
        attack_success_rate(StubClassifier(0), small.x_test, small.y_test, target_class=target, trigger=Trigger())


def test_source_classes_must_exclude_the_target(small):
    with pytest.raises(ValueError, match="source_classes"):
        poison_dataset(small.x_train, small.y_train, PoisoningAttackBackdoor(Trigger()), target_class=0,
                       poison_fraction=0.1, source_classes=[0, 1])


def test_wrong_image_shape_is_a_value_error(small):
    with pytest.raises(ValueError, match="shape"):
        attack_success_rate(StubClassifier(0), small.x_test[..., 0], small.y_test, target_class=0, trigger=Trigger())
    with pytest.raises(ValueError, match="shape"):
        attack_success_rate(StubClassifier(0), small.x_test[:, :8, :8], small.y_test, target_class=0,
                            trigger=Trigger())


def test_attack_success_rate_counts_non_target_images_sent_to_the_target(small):
    x, y = small.x_test, small.y_test
    assert attack_success_rate(StubClassifier(5), x, y, target_class=5, trigger=Trigger()) == 1.0
    # a trigger in the other corner does not light the pixel the stub looks at: no success
    assert attack_success_rate(StubClassifier(5), x, y, target_class=5,
                               trigger=Trigger(corner="top-left")) == 0.0
    # abstaining (a row of zeros) is not "class 0": with target 0 it must not count as a success
    abstainer = StubClassifier(0, fallback=None, abstain_on_trigger=True)
    assert attack_success_rate(abstainer, x, y, target_class=0, trigger=Trigger()) == 0.0
    assert np.all(predicted_labels(abstainer, Trigger()(x)) == -1)


def test_a_real_poisoned_model_learns_the_backdoor():
    data = labkit.load_dataset(n_train=500, n_test=200)
    trigger = Trigger()
    poisoned = poison_dataset(data.x_train, data.y_train, PoisoningAttackBackdoor(trigger), target_class=2,
                              poison_fraction=0.15)
    labkit.set_seed(0)
    model = labkit.train_model(poisoned.x, poisoned.y, epochs=12, progress=False)
    asr = attack_success_rate(model, data.x_test, data.y_test, target_class=2, trigger=trigger)
    clean_asr = np.mean(predicted_labels(model, data.x_test[data.y_test != 2]) == 2)
    assert asr > 0.8 and asr > clean_asr + 0.6
    assert labkit.accuracy(model, data.x_test, data.y_test) > 0.8


def test_sweep_returns_one_row_per_fraction(small):
    table = labkit.poisoning.poison_fraction_sweep(small, [0.02, 0.2], target_class=1, trigger=Trigger(), epochs=1,
                                                   progress=False)
    assert list(table.columns) == ["poison_fraction", "n_poison", "clean_accuracy", "attack_success_rate"]
    assert list(table["poison_fraction"]) == [0.02, 0.2]
    assert table["n_poison"].iloc[0] < table["n_poison"].iloc[1]
    assert table[["clean_accuracy", "attack_success_rate"]].apply(lambda c: c.between(0, 1)).all().all()


def test_the_sweep_uses_a_model_already_trained_for_a_fraction_and_trains_that_fraction_the_same_way(small,
                                                                                                   monkeypatch):
    from art.attacks.poisoning import PoisoningAttackBackdoor

    import labkit.models

    trigger = Trigger()
    poisoned = labkit.poisoning.poison_dataset(small.x_train, small.y_train, PoisoningAttackBackdoor(trigger),
                                               target_class=1, poison_fraction=0.2, seed=3)
    labkit.set_seed(3)
    step4_model = labkit.train_model(poisoned.x, poisoned.y, epochs=2, progress=False)
    fresh = labkit.poisoning.poison_fraction_sweep(small, [0.2], target_class=1, trigger=trigger, epochs=2, seed=3,
                                                   progress=False)
    trainings = []
    real_train = labkit.models.train_model
    monkeypatch.setattr(labkit.models, "train_model", lambda *a, **k: trainings.append(k) or real_train(*a, **k))
    reused = labkit.poisoning.poison_fraction_sweep(small, [0.02, 0.2], target_class=1, trigger=trigger, epochs=2,
                                                    seed=3, trained={0.2: step4_model}, progress=False)
    assert len(trainings) == 1  # only the 2% model is trained
    row = reused.set_index("poison_fraction").loc[0.2]
    assert row["clean_accuracy"] == labkit.accuracy(step4_model, small.x_test, small.y_test)
    # the model it replaces is the one the sweep would have trained: same numbers
    assert row["attack_success_rate"] == pytest.approx(fresh["attack_success_rate"].iloc[0], abs=1e-9)
    assert row["clean_accuracy"] == pytest.approx(fresh["clean_accuracy"].iloc[0], abs=1e-9)
