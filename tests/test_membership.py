"""Membership-inference helpers: the split, target and shadow training, attack scoring and metrics, plots."""

from __future__ import annotations

import numpy as np
import pytest

import labkit
from labkit import membership
from labkit.membership import attack_metrics, member_split


@pytest.fixture(scope="module")
def digits():
    return labkit.load_dataset("digits", seed=0, n_train=300, n_test=100)


@pytest.fixture(scope="module")
def split(digits):
    return member_split(digits.x_train, digits.y_train, 30, seed=0)


@pytest.fixture(scope="module")
def target(split):
    labkit.set_seed(0)
    return membership.train_target(split.x_members, split.y_members, passes=40, dropout=0.0, progress=False)


def _rows(x):
    return {row.tobytes() for row in x}


def test_split_draws_three_disjoint_groups(digits, split):
    assert len(split.x_members) == len(split.x_non_members) == 30
    assert len(split.x_attacker) == len(digits.x_train) - 60
    groups = [_rows(split.x_members), _rows(split.x_non_members), _rows(split.x_attacker)]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    again = member_split(digits.x_train, digits.y_train, 30, seed=0)
    np.testing.assert_array_equal(again.x_members, split.x_members)
    other = member_split(digits.x_train, digits.y_train, 30, seed=1)
    assert not np.array_equal(other.y_members, split.y_members)
    assert len(member_split(digits.x_train, digits.y_train, 10, n_non_members=40).x_non_members) == 40


def test_split_rejects_bad_requests(digits):
    with pytest.raises(ValueError, match="need 400 images"):
        member_split(digits.x_train, digits.y_train, 200, n_non_members=200)
    with pytest.raises(ValueError, match="n_members"):
        member_split(digits.x_train, digits.y_train, 1)
    with pytest.raises(ValueError, match="expected a batch of images"):
        member_split(digits.x_train[:, :, :, 0], digits.y_train, 10)
    with pytest.raises(ValueError, match="labels"):
        member_split(digits.x_train, digits.y_train[:-1], 10)


def test_overfitted_target_is_surer_of_its_members(split, target):
    assert labkit.accuracy(target, split.x_members, split.y_members) == 1.0
    conf_members = target.predict(split.x_members)[np.arange(30), split.y_members]
    conf_non_members = target.predict(split.x_non_members)[np.arange(30), split.y_non_members]
    assert conf_members.mean() > conf_non_members.mean()


def test_train_target_reuses_a_classifier_and_sees_every_image_passes_times(split, target):
    labkit.set_seed(0)
    model = membership.train_target(split.x_members[:10], split.y_members[:10], passes=6, batch_size=10,
                                    progress=False)
    again = membership.train_target(split.x_members[:10], split.y_members[:10], passes=6, batch_size=10,
                                    classifier=model)
    assert again is model
    assert int(model.model.optimizer.iterations.numpy()) == 6  # reset, then 6 passes of one 10-image batch
    with pytest.raises(ValueError, match="passes"):
        membership.train_target(split.x_members, split.y_members, passes=0)


def test_shadow_predictions_come_from_disjoint_shadow_sets(split):
    labkit.set_seed(0)
    shadow = membership.shadow_predictions(split.x_attacker, split.y_attacker, n_members=20, shadows=2, passes=4,
                                           progress=False)
    assert shadow.pred_members.shape == shadow.pred_non_members.shape == (40, 10)
    np.testing.assert_allclose(shadow.pred_members.sum(axis=1), 1.0, atol=1e-4)
    eye = np.eye(10)
    np.testing.assert_array_equal(shadow.y_members, eye[np.r_[split.y_attacker[:20], split.y_attacker[40:60]]])
    np.testing.assert_array_equal(shadow.y_non_members, eye[np.r_[split.y_attacker[20:40], split.y_attacker[60:80]]])
    halved = shadow.postprocessed(lambda p: p / 2)
    np.testing.assert_allclose(halved.pred_members, shadow.pred_members / 2)
    np.testing.assert_array_equal(halved.y_members, shadow.y_members)
    with pytest.raises(ValueError, match="fewer shadows"):
        membership.shadow_predictions(split.x_attacker, split.y_attacker, n_members=100, shadows=2)


def test_score_attack_matches_the_rule_based_attack_by_hand(split, target):
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBoxRuleBased

    result = membership.score_attack(MembershipInferenceBlackBoxRuleBased(target), split)
    right_on_members = np.mean(target.predict(split.x_members).argmax(1) == split.y_members)
    wrong_on_non_members = np.mean(target.predict(split.x_non_members).argmax(1) != split.y_non_members)
    assert result.attack_accuracy == pytest.approx((right_on_members + wrong_on_non_members) / 2)
    assert len(result.member_scores) == len(result.non_member_scores) == 30


def test_black_box_attack_trains_on_shadows_and_scores_every_image(split, target):
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox

    labkit.set_seed(0)
    shadow = membership.shadow_predictions(split.x_attacker, split.y_attacker, n_members=30, shadows=2, passes=40,
                                           progress=False)
    attack = MembershipInferenceBlackBox(target, attack_model_type="rf")
    attack.fit(y=shadow.y_members, pred=shadow.pred_members, test_y=shadow.y_non_members,
               test_pred=shadow.pred_non_members)
    result = membership.score_attack(attack, split)
    scores = np.r_[result.member_scores, result.non_member_scores]
    assert scores.shape == (60,) and scores.min() >= 0 and scores.max() <= 1
    assert 0 <= result.auc <= 1 and result.attack_accuracy == pytest.approx(0.5 + result.advantage / 2)


def test_attack_metrics_on_known_scores():
    perfect = attack_metrics([0.9, 0.8, 0.7], [0.1, 0.2, 0.3])
    assert (perfect.attack_accuracy, perfect.auc, perfect.advantage) == (1.0, 1.0, 1.0)
    backwards = attack_metrics([0.1, 0.2], [0.9, 0.8])
    assert (backwards.attack_accuracy, backwards.auc, backwards.advantage) == (0.0, 0.0, -1.0)
    coin = attack_metrics([0.6, 0.4], [0.6, 0.4])
    assert (coin.attack_accuracy, coin.auc, coin.advantage) == (0.5, 0.5, 0.0)
    balanced = attack_metrics([1.0], [0.0, 0.0, 0.0, 1.0])  # accuracy is balanced over the two groups
    assert balanced.attack_accuracy == pytest.approx((1.0 + 0.75) / 2)
    assert set(perfect.as_dict()) == {"attack_accuracy", "auc", "advantage"}
    with pytest.raises(ValueError, match="at least one"):
        attack_metrics([], [0.5])


def test_plots(split, target):
    import pandas as pd

    results = {"a": attack_metrics([0.9, 0.2], [0.1, 0.3]), "b": attack_metrics([0.5, 0.5], [0.5, 0.5])}
    assert len(membership.plot_roc(results).axes[0].lines) == 3  # two curves and the guessing diagonal
    table = pd.DataFrame({"attack accuracy": [0.7, 0.6], "model accuracy": [0.8, 0.75]}, index=["a", "b"])
    assert len(membership.plot_attack_bars(table).axes[0].patches) == 4
    with pytest.raises(ValueError, match="lacks the columns"):
        membership.plot_attack_bars(table, columns=("AUC",))
    assert membership.plot_confidence(target, split).axes[0].get_xlabel().startswith("the model's probability")
