"""Self-checks of notebooks 08 and 09: each passes on the solution and fails, with a hint, on plausible mistakes."""

from __future__ import annotations

import numpy as np
import pytest
from art.attacks.poisoning import PoisoningAttackSVM

import labkit
from labkit import availability as av
from labkit import check
from labkit.clean_label import perturbation_linf

from check_helpers import fails, passes

# make_svc passes probability=False, which scikit-learn 1.9 warns about (see labkit.availability)
pytestmark = pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning")

EPS, TARGET, BASE, K = 0.2, 3, 8, 4


@pytest.fixture(scope="module")
def frogs():
    """Training data, a target of class TARGET, K bases of class BASE and poisons within EPS of them."""
    data = labkit.load_dataset(n_train=200, n_test=50)
    x_target = data.x_test[data.y_test == TARGET][:1]
    bases = data.x_train[data.y_train == BASE][:K]
    noise = np.random.default_rng(0).uniform(-EPS, EPS, bases.shape).astype(np.float32)
    poisons = np.clip(bases + noise, 0.0, 1.0)
    return data, x_target, bases, poisons


def test_poison_linf(frogs, capsys):
    _, x_target, bases, poisons = frogs
    change = (poisons - bases).reshape(K, -1)
    right = perturbation_linf(poisons, bases)
    assert not np.allclose(right, change.max(axis=1), atol=1e-5)   # the signed answer is distinguishable
    kw = dict(x_target=x_target)
    passes(capsys, check.poison_linf, right, poisons, bases, **kw)
    passes(capsys, check.poison_linf, list(right), poisons, bases)
    fails(capsys, check.poison_linf, np.linalg.norm(change, axis=1), poisons, bases, hint="L2 norm", **kw)
    fails(capsys, check.poison_linf, np.abs(poisons - x_target).reshape(K, -1).max(axis=1), poisons, bases,
          hint="not to the target", **kw)
    fails(capsys, check.poison_linf, np.abs(poisons - bases).max(), poisons, bases, hint="over all the poisons", **kw)
    fails(capsys, check.poison_linf, np.abs(change).mean(axis=1), poisons, bases, hint="mean absolute", **kw)
    fails(capsys, check.poison_linf, change.max(axis=1), poisons, bases, hint="absolute change", **kw)
    fails(capsys, check.poison_linf, right[:, None], poisons, bases, hint="flat array", **kw)
    fails(capsys, check.poison_linf, "0.2", poisons, bases, hint="NumPy array", **kw)


def test_clean_label_set(frogs, capsys):
    data, _, bases, poisons = frogs
    x, y, labels = data.x_train, data.y_train, np.full(K, BASE)
    kw = dict(target_class=TARGET, bases=bases)

    def run(x_poisoned, y_poisoned, fn=passes, **more):
        fn(capsys, check.clean_label_set, x_poisoned, y_poisoned, x, y, poisons, labels, **kw, **more)

    run(np.concatenate([x, poisons]), np.concatenate([y, labels]))
    run(np.concatenate([poisons, x]), np.concatenate([labels, y]))   # any order, each image with its label
    run(np.concatenate([x, poisons]), np.concatenate([y, np.full(K, TARGET)]), fails, hint="dirty label")
    run(np.concatenate([x, poisons]), np.concatenate([y, np.full(K, 5)]), fails, hint="true label of its base")
    run(np.concatenate([x, poisons]), np.concatenate([labels, y]), fails, hint="line up")
    run(x, y, fails, hint="poisons are missing")
    run(np.concatenate([x, bases]), np.concatenate([y, labels]), fails, hint="unperturbed base images")
    run(poisons, labels, fails, hint="not on the poisons")
    run(np.concatenate([x, poisons]), np.eye(10)[np.concatenate([y, labels])], fails, hint="not one-hot")
    wrong = np.concatenate([y, labels])
    wrong[0] = (wrong[0] + 1) % 10
    run(np.concatenate([x, poisons]), wrong, fails, hint="clean training images keep their own labels")


def _onehot(y):
    return np.eye(2)[np.asarray(y)]


@pytest.fixture(scope="module")
def svm():
    """A two-class task, the fitted victim, and ART's attack run on a few flipped start points."""
    task = av.binary_task(labkit.load_dataset(), (1, 8), seed=0)   # all the digits: about 200 training points
    victim = av.wrap_svc(av.make_svc("linear", C=10.0))
    victim.fit(task.x_train, _onehot(task.y_train))
    x0, y0 = av.poison_starts(task, 20, seed=0)
    np.random.seed(0)
    attack = PoisoningAttackSVM(victim, step=0.5, eps=1e9, x_train=task.x_train, y_train=_onehot(task.y_train),
                                x_val=task.x_val, y_val=_onehot(task.y_val), max_iter=3, verbose=False)
    x_poison, y_poison = attack.poison(x0.copy(), y=_onehot(y0))
    return task, victim, attack, x_poison, y_poison


def test_svm_poisoning_attack(svm, capsys):
    task, victim, right, _, _ = svm
    kw = dict(step=0.5, eps=1e9, max_iter=3)

    def attack(estimator=victim, **changes):
        args = dict(step=0.5, eps=1e9, x_train=task.x_train, y_train=_onehot(task.y_train), x_val=task.x_val,
                    y_val=_onehot(task.y_val), max_iter=3, verbose=False)
        return PoisoningAttackSVM(estimator, **{**args, **changes})

    passes(capsys, check.svm_poisoning_attack, right, victim, task, **kw)
    passes(capsys, check.svm_poisoning_attack, av.PaperGradientPoisoningSVM(victim, **{
        k: getattr(right, k) for k in ("step", "eps", "x_train", "y_train", "x_val", "y_val", "max_iter")}),
           victim, task, **kw)
    fails(capsys, check.svm_poisoning_attack, attack(x_val=task.x_test, y_val=_onehot(task.y_test)), victim, task,
          hint="must not use it", **kw)
    fails(capsys, check.svm_poisoning_attack, attack(x_val=task.x_train, y_val=_onehot(task.y_train)), victim, task,
          hint="training set measures nothing", **kw)
    fails(capsys, check.svm_poisoning_attack, attack(x_train=task.x_val, y_train=_onehot(task.y_val),
                                                     x_val=task.x_train, y_val=_onehot(task.y_train)),
          victim, task, hint="swapped", **kw)
    fails(capsys, check.svm_poisoning_attack, attack(y_val=task.y_val), victim, task, hint="one-hot", **kw)
    fails(capsys, check.svm_poisoning_attack, attack(y_train=task.y_train), victim, task, hint="one-hot", **kw)
    fails(capsys, check.svm_poisoning_attack, attack(y_val=_onehot(1 - task.y_val)), victim, task,
          hint="labels of the validation points", **kw)
    other = av.wrap_svc(av.make_svc("linear", C=10.0))
    other.fit(task.x_train, _onehot(task.y_train))
    fails(capsys, check.svm_poisoning_attack, attack(other), victim, task, hint="on the victim", **kw)
    fails(capsys, check.svm_poisoning_attack, attack(step=0.1), victim, task, hint="STEP", **kw)
    fails(capsys, check.svm_poisoning_attack, object(), victim, task, hint="PoisoningAttackSVM", **kw)


def test_poisoned_accuracy(svm, capsys):
    task, victim, _, x_poison, y_poison = svm
    fit = dict(kernel="linear", C=10.0)
    right = av.svm_accuracy(task, x_poison, y_poison, **fit)
    clean = av.svm_accuracy(task, **fit)
    as_is = float(np.mean(victim.predict(task.x_test).argmax(axis=1) == task.y_test))
    svc = av.make_svc(**fit).fit(np.vstack([task.x_train, x_poison]),
                                 np.concatenate([task.y_train, y_poison.argmax(axis=1)]))
    on_val = float(svc.score(task.x_val, task.y_val))
    default_c = av.svm_accuracy(task, x_poison, y_poison, kernel="linear", C=1.0)
    wrongs = [clean, on_val, 1 - right, default_c]
    assert min(abs(right - w) for w in wrongs) > 0.005, (right, wrongs)   # every wrong answer is distinguishable
    assert abs(clean - as_is) > 0.005, (clean, as_is)
    kw = dict(victim=victim, **fit)
    passes(capsys, check.poisoned_accuracy, right, task, x_poison, y_poison, **kw)
    passes(capsys, check.poisoned_accuracy, np.float32(right), task, x_poison, y_poison.argmax(axis=1), **fit)
    fails(capsys, check.poisoned_accuracy, clean, task, x_poison, y_poison, hint="without the poison points", **kw)
    fails(capsys, check.poisoned_accuracy, on_val, task, x_poison, y_poison, hint="validation data", **kw)
    fails(capsys, check.poisoned_accuracy, 1 - right, task, x_poison, y_poison, hint="error rate", **kw)
    fails(capsys, check.poisoned_accuracy, default_c, task, x_poison, y_poison, hint="default C", **kw)
    fails(capsys, check.poisoned_accuracy, 100 * right, task, x_poison, y_poison, hint="percentage", **kw)
    # the check recomputes from fresh SVMs: refitting the victim in place, as ART's attack does, changes nothing
    victim.model.fit(task.x_train[:40], task.y_train[:40])
    try:
        passes(capsys, check.poisoned_accuracy, right, task, x_poison, y_poison, **kw)
        refitted = float(np.mean(victim.predict(task.x_test).argmax(axis=1) == task.y_test))
        assert abs(refitted - right) > 0.005
        fails(capsys, check.poisoned_accuracy, refitted, task, x_poison, y_poison, hint="victim as it stands", **kw)
    finally:
        victim.fit(task.x_train, _onehot(task.y_train))


def test_the_victim_as_it_stands_is_caught_even_when_its_accuracy_is_right_by_coincidence(svm, capsys):
    task, victim, _, x_poison, y_poison = svm
    fit = dict(kernel="linear", C=10.0)
    right = av.svm_accuracy(task, x_poison, y_poison, **fit)

    def fresh_svm(xp, yp):
        svc = av.make_svc(**fit).fit(np.vstack([task.x_train, xp]), np.concatenate([task.y_train, yp.argmax(axis=1)]))
        return float(svc.score(task.x_test, task.y_test))

    def read_off_the_victim(xp, yp):
        return right   # what the victim as it stands scored here (0.9326, as the poisoned SVM, on this machine)

    def forgets_the_poison(xp, yp):
        return fresh_svm(xp[:0], yp[:0])

    kw = dict(victim=victim, **fit)
    passes(capsys, check.poisoned_accuracy, right, task, x_poison, y_poison, rule=fresh_svm, **kw)
    fails(capsys, check.poisoned_accuracy, right, task, x_poison, y_poison, rule=read_off_the_victim,
          hint="your function", **kw)
    as_is = float(np.mean(victim.predict(task.x_test).argmax(axis=1) == task.y_test))
    fails(capsys, check.poisoned_accuracy, right, task, x_poison, y_poison, rule=lambda xp, yp: as_is,
          hint="victim", **kw)
    fails(capsys, check.poisoned_accuracy, right, task, x_poison, y_poison, rule=forgets_the_poison,
          hint="first 10 poison points", **kw)
