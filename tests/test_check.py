"""Self-checks: each passes on the solution and fails, with a hint, on plausible wrong answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
from art.attacks.poisoning import PoisoningAttackBackdoor
from art.defences.trainer import AdversarialTrainer, AdversarialTrainerMadryPGD

import labkit
from labkit import _nc_optimize, check
from labkit.models import build_model, wrap_model
from labkit.poisoning import Trigger, poison_dataset

from check_helpers import fails, passes, small_lab

EPS = 0.1
TARGET = 0


@pytest.fixture(scope="module")
def lab():
    return small_lab()


def test_strict_mode_from_the_environment(lab, monkeypatch):
    data, clf = lab
    monkeypatch.setenv(check.STRICT_ENV, "1")
    with pytest.raises(check.CheckFailed):
        check.clean_accuracy(2.0, clf, data.x_test, data.y_test)


def test_clean_accuracy(lab, capsys):
    data, clf = lab
    right = labkit.accuracy(clf, data.x_test, data.y_test)
    train = labkit.accuracy(clf, data.x_train, data.y_train)
    assert abs(right - train) > 0.01  # the wrong answer below is distinguishable
    kw = dict(x_train=data.x_train, y_train=data.y_train)
    passes(capsys, check.clean_accuracy, right, clf, data.x_test, data.y_test, **kw)
    fails(capsys, check.clean_accuracy, train, clf, data.x_test, data.y_test, hint="training images", **kw)
    fails(capsys, check.clean_accuracy, 100 * right, clf, data.x_test, data.y_test, hint="percentage", **kw)
    fails(capsys, check.clean_accuracy, "0.9", clf, data.x_test, data.y_test, hint="one number", **kw)


def test_predictions(lab, capsys):
    data, clf = lab
    x = data.x_test[:50]
    probabilities = clf.predict(x)
    right = probabilities.argmax(axis=1)
    passes(capsys, check.predictions, right, clf, x)
    fails(capsys, check.predictions, probabilities, clf, x, hint="highest one")
    fails(capsys, check.predictions, probabilities.argmax(axis=0), clf, x, hint="not over the images")
    fails(capsys, check.predictions, clf.predict(data.x_test[50:100]).argmax(axis=1), clf, x, hint="same images")
    fails(capsys, check.predictions, probabilities.max(axis=1), clf, x, hint="integers")


def test_fgsm_attack(lab, capsys):
    data, clf = lab
    x = data.x_test[:40]
    attack = FastGradientMethod(clf, eps=EPS)
    x_adv = attack.generate(x, y=data.y_test[:40])
    passes(capsys, check.fgsm_attack, attack, x_adv, x, eps=EPS)
    fails(capsys, check.fgsm_attack, FastGradientMethod(clf, eps=8.0), x_adv, x, eps=EPS, hint="divided by 255")
    fails(capsys, check.fgsm_attack, FastGradientMethod(clf, eps=0.05), x_adv, x, eps=EPS, hint="EPS")
    fails(capsys, check.fgsm_attack, FastGradientMethod(clf, eps=EPS, targeted=True), x_adv, x, eps=EPS,
          hint="untargeted")
    fails(capsys, check.fgsm_attack, attack, x, x, eps=EPS, hint="attack.generate")
    fails(capsys, check.fgsm_attack, attack, np.clip(x + 2 * EPS, 0, 1), x, eps=EPS, hint="more than eps")
    fails(capsys, check.fgsm_attack, ProjectedGradientDescent(clf, eps=EPS), x_adv, x, eps=EPS,
          hint="FastGradientMethod")


def test_pgd_attack(lab, capsys):
    _, clf = lab
    passes(capsys, check.pgd_attack, ProjectedGradientDescent(clf, eps=EPS, eps_step=EPS / 4, max_iter=10), eps=EPS)
    fails(capsys, check.pgd_attack, ProjectedGradientDescent(clf, eps=EPS, eps_step=EPS, max_iter=10), eps=EPS,
          hint="eps_step")
    fails(capsys, check.pgd_attack, ProjectedGradientDescent(clf, eps=EPS, eps_step=EPS / 40, max_iter=10),
          eps=EPS, hint="cannot even reach")
    fails(capsys, check.pgd_attack, ProjectedGradientDescent(clf, eps=25.0, eps_step=5, max_iter=10), eps=EPS,
          hint="255")


def test_accuracy_under_attack(lab, capsys):
    data, clf = lab
    x, y = data.x_test, data.y_test
    x_adv = FastGradientMethod(clf, eps=EPS).generate(x, y=y)
    right = labkit.accuracy(clf, x_adv, y)
    clean = labkit.accuracy(clf, x, y)
    assert clean - right > 0.05 and abs(right - 0.5) > 0.01
    passes(capsys, check.accuracy_under_attack, right, clf, x_adv, y, x_clean=x)
    fails(capsys, check.accuracy_under_attack, clean, clf, x_adv, y, x_clean=x, hint="clean images")
    fails(capsys, check.accuracy_under_attack, 1 - right, clf, x_adv, y, x_clean=x, hint="attacks that succeed")


def test_adversarial_trainer(lab, capsys):
    data, baseline = lab
    robust = wrap_model(build_model(data.input_shape, data.nb_classes))
    right = AdversarialTrainer(robust, attacks=FastGradientMethod(robust, eps=EPS), ratio=0.5)
    passes(capsys, check.adversarial_trainer, right, eps=EPS, ratio=0.5, baseline=baseline)
    fails(capsys, check.adversarial_trainer, AdversarialTrainer(robust, FastGradientMethod(baseline, eps=EPS)),
          eps=EPS, baseline=baseline, hint="another model")
    fails(capsys, check.adversarial_trainer, AdversarialTrainer(baseline, FastGradientMethod(baseline, eps=EPS)),
          eps=EPS, baseline=baseline, hint="baseline itself")
    fails(capsys, check.adversarial_trainer, AdversarialTrainer(robust, FastGradientMethod(robust, eps=25.0)),
          eps=EPS, hint="255")
    fails(capsys, check.adversarial_trainer, right, eps=EPS, ratio=1.0, hint="RATIO")


def test_madry_trainer(lab, capsys):
    data, baseline = lab
    fresh = wrap_model(build_model(data.input_shape, data.nb_classes))
    trained = wrap_model(build_model(data.input_shape, data.nb_classes))
    kw = dict(eps_step=EPS / 4, max_iter=5)
    right = AdversarialTrainerMadryPGD(fresh, nb_epochs=3, eps=EPS, **kw)
    passes(capsys, check.madry_trainer, right, eps=EPS, nb_epochs=3, baseline=baseline, others=[trained])
    fails(capsys, check.madry_trainer, AdversarialTrainerMadryPGD(fresh, nb_epochs=3), eps=EPS, hint="255")
    fails(capsys, check.madry_trainer, AdversarialTrainerMadryPGD(fresh, eps=EPS, **kw), eps=EPS, nb_epochs=3,
          hint="205 epochs")
    fails(capsys, check.madry_trainer, AdversarialTrainerMadryPGD(baseline, nb_epochs=3, eps=EPS, **kw), eps=EPS,
          baseline=baseline, hint="baseline itself")
    fails(capsys, check.madry_trainer, AdversarialTrainerMadryPGD(trained, nb_epochs=3, eps=EPS, **kw), eps=EPS,
          others=[trained], hint="trained already")
    fails(capsys, check.madry_trainer, AdversarialTrainerMadryPGD(fresh, nb_epochs=3, eps=EPS, eps_step=EPS,
                                                                  max_iter=5), eps=EPS, hint="eps_step")
    fails(capsys, check.madry_trainer, AdversarialTrainer(fresh, FastGradientMethod(fresh, eps=EPS)), eps=EPS,
          hint="AdversarialTrainerMadryPGD")


def test_poisoned_data(lab, capsys):
    data, _ = lab
    trigger = Trigger()
    attack = PoisoningAttackBackdoor(trigger)
    kw = dict(target_class=TARGET, trigger=trigger)
    pkw = dict(target_class=TARGET)
    right = poison_dataset(data.x_train, data.y_train, attack, poison_fraction=0.1, **pkw)
    passes(capsys, check.poisoned_data, right, data.x_train, data.y_train, poison_fraction=0.1, **kw)
    fails(capsys, check.poisoned_data, right, data.x_train, data.y_train, poison_fraction=10, hint="between 0 and 1",
          **kw)
    more = poison_dataset(data.x_train, data.y_train, attack, poison_fraction=0.3, **pkw)
    fails(capsys, check.poisoned_data, more, data.x_train, data.y_train, poison_fraction=0.1, hint="number", **kw)
    unlabelled = poison_dataset(data.x_train, data.y_train, attack, poison_fraction=0.1, **pkw)
    unlabelled.y[unlabelled.poison_indices] = unlabelled.original_labels
    fails(capsys, check.poisoned_data, unlabelled, data.x_train, data.y_train, poison_fraction=0.1,
          hint="target label", **kw)
    other = poison_dataset(data.x_train, data.y_train, PoisoningAttackBackdoor(Trigger(corner="top-left")),
                           poison_fraction=0.1, **pkw)
    fails(capsys, check.poisoned_data, other, data.x_train, data.y_train, poison_fraction=0.1, hint="same trigger",
          **kw)


class Stub:
    """A classifier that answers ``target`` on images whose bottom-right pixel is lit, else the true-ish ``other``."""

    nb_classes, input_shape = 10, (16, 16, 1)

    def __init__(self, target=TARGET, other=3, lit_rate=1.0):
        self.target, self.other, self.lit_rate = target, other, lit_rate

    def predict(self, x, batch_size=256):
        out = np.zeros((len(x), 10), np.float32)
        lit = (x[:, -1, -1, 0] >= 0.99) & (np.arange(len(x)) % 100 < 100 * self.lit_rate)
        out[lit, self.target] = 1.0
        out[~lit, self.other] = 1.0
        return out


def test_attack_success_rate(lab, capsys):
    data, clf = lab
    trigger = Trigger()
    x, y = data.x_test, data.y_test
    kw = dict(target_class=TARGET, trigger=trigger)
    # the clean model rarely sends a triggered image to the target, except the target's own images
    said = clf.predict(trigger(x)).argmax(axis=1)
    right = float(np.mean(said[y != TARGET] == TARGET))
    over_all = float(np.mean(said == TARGET))
    assert over_all - right > 0.05
    passes(capsys, check.attack_success_rate, right, clf, x, y, **kw)
    fails(capsys, check.attack_success_rate, over_all, clf, x, y, hint="not the target", **kw)
    model = Stub(lit_rate=0.6)
    said = model.predict(trigger(x)).argmax(axis=1)
    right = float(np.mean(said[y != TARGET] == TARGET))
    passes(capsys, check.attack_success_rate, right, model, x, y, **kw)
    fails(capsys, check.attack_success_rate, 0.0, model, x, y, hint="no trigger", **kw)
    fails(capsys, check.attack_success_rate, 1 - right, model, x, y, hint="fails on", **kw)
    fails(capsys, check.attack_success_rate, 100 * right, model, x, y, hint="percentage", **kw)


class Defence(Stub):
    """A stand-in for a Neural Cleanse defence: a detection, copy(), and a mitigation that removes the backdoor."""

    def __init__(self, l1_norms, **kwargs):
        super().__init__(**kwargs)
        self.detection = object()
        self.l1_norms = np.asarray(l1_norms, float)
        self.flagged_classes = list(_nc_optimize.outlier_rule(self.l1_norms)[1])

    def copy(self):
        twin = Defence(self.l1_norms, target=self.target, other=self.other, lit_rate=self.lit_rate)
        return twin

    def mitigate(self):
        self.lit_rate = 0.0


NORMS = [9, 60, 55, 62, 58, 61, 57, 59, 63, 56]


def test_neural_cleanse(lab, capsys):
    data, _ = lab
    x = Trigger()(data.x_test[:50])
    poisoned = Stub()
    passes(capsys, check.neural_cleanse, Defence(NORMS), poisoned, x)
    fails(capsys, check.neural_cleanse, Defence(NORMS, target=5), poisoned, x, hint="model under suspicion")
    undetected = Defence(NORMS)
    undetected.detection = None
    fails(capsys, check.neural_cleanse, undetected, poisoned, x, hint="outlier_detection")


def test_mitigation(lab, capsys):
    data, _ = lab
    x = Trigger()(data.x_test[:50])
    poisoned, defence = Stub(), Defence(NORMS)
    right = defence.copy()
    right.mitigate()
    passes(capsys, check.mitigation, right, defence, poisoned, x)
    fails(capsys, check.mitigation, defence.copy(), defence, poisoned, x, hint="answers as before")
    defence.mitigate()   # the first mitigation went to the defence itself ...
    fails(capsys, check.mitigation, defence, defence, poisoned, x, hint="defence.copy()")
    again = defence.copy()   # ... so the next copy starts from an already-mitigated model
    again.mitigate()
    fails(capsys, check.mitigation, again, defence, poisoned, x, hint="already mitigated")
    nothing = Defence([58, 60, 55, 62, 58, 61, 57, 59, 63, 56])   # nothing flagged: nothing to mitigate
    assert nothing.flagged_classes == []
    passes(capsys, check.mitigation, nothing.copy(), nothing, poisoned, x)


def test_chosen_mitigation(capsys):
    table = pd.DataFrame({"clean_accuracy": [0.96, 0.95, 0.80, 0.94], "attack_success_rate": [1.0, 0.05, 0.0, 0.3]},
                         index=["none", "unlearning", "pruning", "filtering"])
    passes(capsys, check.chosen_mitigation, "unlearning", table)
    fails(capsys, check.chosen_mitigation, "pruning", table, hint="clean accuracy")
    fails(capsys, check.chosen_mitigation, "filtering", table, hint="lower attack success")
    fails(capsys, check.chosen_mitigation, "none", table, hint="backdoored model itself")
    fails(capsys, check.chosen_mitigation, "retraining", table, hint="rows")
    fails(capsys, check.chosen_mitigation, None, table, hint="at least one")
    costly = table.assign(clean_accuracy=[0.96, 0.5, 0.5, 0.5])
    passes(capsys, check.chosen_mitigation, None, costly)


def test_membership_attack(lab, capsys):
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox

    data, clf = lab
    other = labkit.copy_classifier(clf)
    pred_in, pred_out = clf.predict(data.x_train[:60]), clf.predict(data.x_test[:60])
    onehot = np.eye(10, dtype=np.float32)

    def attack(target, fit=True, **kwargs):
        a = MembershipInferenceBlackBox(target, **{"input_type": "prediction", "attack_model_type": "rf", **kwargs})
        if fit:
            a.fit(y=onehot[data.y_train[:60]], pred=pred_in, test_y=onehot[data.y_test[:60]], test_pred=pred_out)
        return a

    passes(capsys, check.membership_attack, attack(clf), clf)
    fails(capsys, check.membership_attack, attack(other), clf, hint="not on a shadow model")
    fails(capsys, check.membership_attack, attack(clf, fit=False), clf, hint="not trained yet")
    fails(capsys, check.membership_attack, attack(clf, fit=False, input_type="loss"), clf, hint="input_type")


def test_backdoor_attack(lab, capsys):
    data, _ = lab
    trigger, x = Trigger(), data.x_train[:4]
    attack = PoisoningAttackBackdoor(trigger)
    target = np.eye(10)[TARGET]
    x_demo, y_demo = attack.poison(x, y=target, broadcast=True)
    kw = dict(target_class=TARGET, trigger=trigger)
    passes(capsys, check.backdoor_attack, attack, x_demo, y_demo, x, **kw)
    _, own_labels = attack.poison(x, y=np.eye(10)[data.y_train[:4]])   # the images keep their own labels
    assert not np.all(data.y_train[:4] == TARGET)
    fails(capsys, check.backdoor_attack, attack, x_demo, own_labels, x, hint="target class's label", **kw)
    fails(capsys, check.backdoor_attack, attack, x, y_demo, x, hint="trigger stamped on", **kw)
    fails(capsys, check.backdoor_attack, attack, x_demo, y_demo.argmax(axis=1), x, hint="broadcast=True", **kw)
    other = PoisoningAttackBackdoor(Trigger(corner="top-left"))
    fails(capsys, check.backdoor_attack, other, *other.poison(x, y=target, broadcast=True), x, hint="lab's trigger",
          **kw)
