"""Self-checks of notebooks 06 and 07: each passes on the solution and fails, with a hint, on plausible wrong
answers (the exercises' numbering and checks are tested for every notebook in test_student_notebooks)."""

from __future__ import annotations

import numpy as np
import pytest
from art.attacks.evasion import FastGradientMethod
from art.attacks.inference.membership_inference import (MembershipInferenceBlackBox,
                                                         MembershipInferenceBlackBoxRuleBased)

import labkit
from labkit import check
from labkit.extraction import agreement
from labkit.membership import score_attack, train_target

from check_helpers import fails, passes, small_lab

EPS = 0.1


@pytest.fixture(scope="module")
def lab():
    """A victim, and a substitute trained on the victim's labels for the training images (a theft)."""
    data, victim = small_lab()
    labkit.set_seed(1)
    stolen = victim.predict(data.x_train).argmax(axis=1)
    substitute = labkit.train_model(data.x_train, stolen, epochs=8, progress=False)
    return data, victim, substitute


def far(*values):
    """Whether every two of the values differ by more than a check's tolerance (so the wrong ones can be told)."""
    return all(abs(a - b) > 0.01 for i, a in enumerate(values) for b in values[i + 1:])


def test_agreement(lab, capsys):
    data, victim, substitute = lab
    x, y = data.x_test, data.y_test
    victim_labels = victim.predict(x).argmax(axis=1)
    right = float(np.mean(substitute.predict(x).argmax(axis=1) == victim_labels))
    assert right == agreement(substitute, x, victim_labels)
    accuracy, victim_accuracy = labkit.accuracy(substitute, x, y), labkit.accuracy(victim, x, y)
    assert far(right, accuracy, victim_accuracy, 1 - right)
    args = (substitute, victim, x)
    passes(capsys, check.agreement, right, *args, y_true=y)
    passes(capsys, check.agreement, right, *args)
    fails(capsys, check.agreement, accuracy, *args, y_true=y, hint="victim's answers")
    fails(capsys, check.agreement, victim_accuracy, *args, y_true=y, hint="victim's own accuracy")
    fails(capsys, check.agreement, 1 - right, *args, y_true=y, hint="disagree")
    fails(capsys, check.agreement, 100 * right, *args, hint="percentage")
    fails(capsys, check.agreement, 0.01, *args, hint="argmax")


def test_transfer_attack(lab, capsys):
    data, victim, substitute = lab
    x, y = data.x_test, data.y_test
    x_adv = FastGradientMethod(substitute, eps=EPS, batch_size=256).generate(x)
    right = labkit.accuracy(victim, x_adv, y)
    on_substitute, clean = labkit.accuracy(substitute, x_adv, y), labkit.accuracy(victim, x, y)
    unchanged = float(np.mean(victim.predict(x_adv).argmax(axis=1) == victim.predict(x).argmax(axis=1)))
    assert far(right, on_substitute, clean, unchanged, 1 - right)
    args = (victim, substitute, x, y)
    passes(capsys, check.transfer_attack, right, x_adv, *args, eps=EPS)
    with_labels = FastGradientMethod(substitute, eps=EPS).generate(x, y=y)   # the true labels may be given too
    passes(capsys, check.transfer_attack, labkit.accuracy(victim, with_labels, y), with_labels, *args, eps=EPS)
    fails(capsys, check.transfer_attack, on_substitute, x_adv, *args, eps=EPS, hint="fool the victim")
    fails(capsys, check.transfer_attack, clean, x_adv, *args, eps=EPS, hint="clean accuracy")
    fails(capsys, check.transfer_attack, unchanged, x_adv, *args, eps=EPS, hint="true labels")
    fails(capsys, check.transfer_attack, 1 - right, x_adv, *args, eps=EPS, hint="still gets right")
    fails(capsys, check.transfer_attack, 100 * right, x_adv, *args, eps=EPS, hint="percentage")

    white = FastGradientMethod(victim, eps=EPS).generate(x)
    fails(capsys, check.transfer_attack, labkit.accuracy(victim, white, y), white, *args, eps=EPS,
          hint="query access")
    big = FastGradientMethod(substitute, eps=255 * EPS).generate(x)
    fails(capsys, check.transfer_attack, labkit.accuracy(victim, big, y), big, *args, eps=EPS, hint="divided by 255")
    small = FastGradientMethod(substitute, eps=EPS / 2).generate(x)
    fails(capsys, check.transfer_attack, labkit.accuracy(victim, small, y), small, *args, eps=EPS, hint="EPS")
    noise = np.clip(x + EPS * np.sign(np.random.default_rng(0).standard_normal(x.shape)), 0, 1).astype(np.float32)
    fails(capsys, check.transfer_attack, labkit.accuracy(victim, noise, y), noise, *args, eps=EPS,
          hint="crafted on the substitute")
    fails(capsys, check.transfer_attack, clean, x, *args, eps=EPS, hint="equals the clean")
    fails(capsys, check.transfer_attack, right, x_adv[:40], *args, eps=EPS, hint="one adversarial image per")


class StubAttack:
    """A membership attack with fixed scores for the members and the non-members, answering like ART's."""

    def __init__(self, x_members, member_scores, non_member_scores, nb_classes=10):
        self.estimator = type("Target", (), {"nb_classes": nb_classes})()
        self.x_members = x_members
        self.scores = np.asarray(member_scores, float), np.asarray(non_member_scores, float)

    def infer(self, x, y, probabilities=False):
        scores = self.scores[0] if np.array_equal(x, self.x_members) else self.scores[1]
        return (scores if probabilities else np.round(scores)).reshape(-1, 1)


def test_membership_accuracy_hints(lab, capsys):
    data, _, _ = lab
    xm, ym, xn, yn = data.x_train[:10], data.y_train[:10], data.x_train[10:20], data.y_train[10:20]
    attack = StubAttack(xm, [1] * 9 + [0], [1] * 4 + [0] * 6)   # finds 0.9 of the members, 0.6 of the non-members
    args = (attack, xm, ym, xn, yn)
    passes(capsys, check.membership_accuracy, 0.75, *args)
    fails(capsys, check.membership_accuracy, 0.9, *args, hint="every time")
    fails(capsys, check.membership_accuracy, 0.6, *args, hint="only the non-members")
    fails(capsys, check.membership_accuracy, 0.5, *args, hint="advantage")
    fails(capsys, check.membership_accuracy, 0.25, *args, hint="wrong answers")
    fails(capsys, check.membership_accuracy, 75.0, *args, hint="percentage")
    fails(capsys, check.membership_accuracy, 0.1, *args, hint="attack.infer")
    fewer = StubAttack(xm[:5], [1] * 5, [1] * 4 + [0] * 6)   # 5 members, 10 non-members: 1.0 and 0.6
    passes(capsys, check.membership_accuracy, 0.8, fewer, xm[:5], ym[:5], xn, yn)
    fails(capsys, check.membership_accuracy, 11 / 15, fewer, xm[:5], ym[:5], xn, yn, hint="not as many")
    tied = StubAttack(xm, [0.5] * 5 + [1] * 5, [0] * 10)   # ART rounds a score of 0.5 to 0, score_attack to member
    passes(capsys, check.membership_accuracy, 0.75, tied, xm, ym, xn, yn)
    passes(capsys, check.membership_accuracy, 1.0, tied, xm, ym, xn, yn)


def test_membership_accuracy_on_art_attacks(lab, capsys):
    data, _, _ = lab
    x, y = data.x_train, data.y_train
    labkit.set_seed(0)
    target = train_target(x[:40], y[:40], passes=20, progress=False)   # memorises its 40 members
    onehot = np.eye(10, dtype=np.float32)
    attack = MembershipInferenceBlackBox(target, input_type="prediction", attack_model_type="gb")
    attack.fit(y=onehot[y[:20]], pred=target.predict(x[:20]), test_y=onehot[y[40:60]],
               test_pred=target.predict(x[40:60]))
    xm, ym, xn, yn = x[20:40], y[20:40], x[60:80], y[60:80]
    said_members = attack.infer(xm, onehot[ym]).ravel()
    said_non_members = attack.infer(xn, onehot[yn]).ravel()
    right = float((np.mean(said_members == 1) + np.mean(said_non_members == 0)) / 2)
    recall = float(np.mean(said_members == 1))
    assert far(right, recall)
    split = labkit.membership.MembershipSplit(xm, ym, xn, yn, x[80:], y[80:])
    assert abs(right - score_attack(attack, split).attack_accuracy) < 1e-9   # what the notebook records
    passes(capsys, check.membership_accuracy, right, attack, xm, ym, xn, yn)
    fails(capsys, check.membership_accuracy, recall, attack, xm, ym, xn, yn, hint="every time")
    rule_based = MembershipInferenceBlackBoxRuleBased(target)
    passes(capsys, check.membership_accuracy, score_attack(rule_based, split).attack_accuracy, rule_based,
           xm, ym, xn, yn)
