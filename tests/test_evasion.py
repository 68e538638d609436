"""Tests of labkit.evasion (attack helpers, sweeps, pictures) and labkit.robust (fast FGSM adversarial training)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent  # noqa: E402

import labkit  # noqa: E402
from labkit import evasion  # noqa: E402
from labkit.models import build_model, wrap_model  # noqa: E402
from labkit.robust import FastAdversarialTrainer  # noqa: E402

ATTACKS = {
    "FGSM": lambda clf, eps: FastGradientMethod(clf, eps=eps, batch_size=256),
    "PGD": lambda clf, eps: ProjectedGradientDescent(clf, eps=eps, eps_step=eps / 4, max_iter=5, batch_size=256,
                                                     verbose=False),
}


@pytest.fixture(scope="module")
def data():
    return labkit.load_dataset(seed=0, n_train=400, n_test=120)


@pytest.fixture(scope="module")
def model(data):
    labkit.set_seed(0)
    return labkit.train_model(data.x_train, data.y_train, epochs=8, progress=False)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_sweep_accuracy_does_not_rise_with_eps(model, data):
    eps_values = [0.0, 0.05, 0.1, 0.2, 0.3]
    sweep = evasion.eps_sweep(model, data.x_test, data.y_test, eps_values, ATTACKS, progress=False)
    assert list(sweep.index) == eps_values and list(sweep.columns) == ["FGSM", "PGD"]
    clean = labkit.accuracy(model, data.x_test, data.y_test)
    assert np.allclose(sweep.loc[0.0], clean)  # eps 0 is the clean accuracy
    for attack in sweep.columns:
        assert np.diff(sweep[attack].to_numpy()).mean() <= 0.0, sweep
        assert sweep[attack].iloc[-1] < clean - 0.3, sweep  # the attacks do bite
    assert (sweep["PGD"] <= sweep["FGSM"] + 0.03).all(), sweep  # the iterative attack is not weaker


def test_worst_case_accuracy_is_never_above_any_single_attack(model, data):
    x, y = data.x_test[:60], data.y_test[:60]
    attacks = [ATTACKS["FGSM"](model, 0.1), ATTACKS["PGD"](model, 0.1),
               ProjectedGradientDescent(model, eps=0.1, eps_step=0.05, max_iter=3, num_random_init=2, verbose=False)]
    singles = [evasion.accuracy_under_attack(model, attack, x, y) for attack in attacks]
    worst = evasion.worst_case_accuracy(model, attacks, x, y)
    assert worst <= min(singles) + 1e-9
    assert evasion.worst_case_accuracy(model, attacks[:1], x, y) == pytest.approx(singles[0])
    with pytest.raises(ValueError, match="eps"):
        evasion.worst_case_accuracy(model, [FastGradientMethod(model, eps=8)], x, y)


def test_sweep_with_another_attack_model_is_a_transfer_attack(model, data):
    labkit.set_seed(3)
    untrained = wrap_model(build_model(data.input_shape, data.nb_classes))
    fgsm = {"FGSM": ATTACKS["FGSM"]}
    white_box = evasion.eps_sweep(model, data.x_test, data.y_test, [0.0, 0.2], fgsm, progress=False)
    transfer = evasion.eps_sweep(model, data.x_test, data.y_test, [0.0, 0.2], fgsm, attack_model=untrained,
                                 progress=False)
    assert transfer.loc[0.0, "FGSM"] == white_box.loc[0.0, "FGSM"]
    assert transfer.loc[0.2, "FGSM"] > white_box.loc[0.2, "FGSM"] + 0.2  # gradients of a random model barely hurt


def test_accuracy_under_attack_matches_a_manual_run(model, data):
    attack = FastGradientMethod(model, eps=0.1)
    manual = labkit.accuracy(model, attack.generate(data.x_test, y=data.y_test), data.y_test)
    assert evasion.accuracy_under_attack(model, attack, data.x_test, data.y_test) == pytest.approx(manual)


@pytest.mark.parametrize("eps", [-0.01, 1.01, 8, 255, float("nan"), "0.1", True, None])
def test_check_eps_rejects_values_outside_the_unit_interval(eps):
    with pytest.raises(ValueError, match="eps"):
        evasion.check_eps(eps)


@pytest.mark.parametrize("eps", [0, 0.0, 0.11, 1, np.float32(0.3)])
def test_check_eps_accepts_the_unit_interval(eps):
    assert evasion.check_eps(eps) == pytest.approx(float(eps))


def test_every_helper_taking_eps_rejects_eps_outside_the_unit_interval(model, data):
    x, y = data.x_test[:10], data.y_test[:10]
    with pytest.raises(ValueError, match="eps"):
        evasion.eps_sweep(model, x, y, [0.0, 0.1, 1.5], ATTACKS, progress=False)
    with pytest.raises(ValueError, match="eps"):
        evasion.robustness_table({"m": model}, x, y, -0.1, ATTACKS, progress=False)
    with pytest.raises(ValueError, match="255"):  # a CIFAR-style eps on [0, 1] images
        evasion.accuracy_under_attack(model, FastGradientMethod(model, eps=8), x, y)
    sweep = evasion.eps_sweep(model, x, y, [0.0, 0.1], {"FGSM": ATTACKS["FGSM"]}, progress=False)
    with pytest.raises(ValueError, match="eps"):
        evasion.tradeoff_plot({"m": sweep}, eps=2.0)
    with pytest.raises(ValueError, match="eps"):
        FastAdversarialTrainer(model, eps=8 / 1.0)


def test_wrong_image_shape_is_a_clear_value_error(model, data):
    x, y = data.x_test[:10], data.y_test[:10]
    flat = x.reshape(len(x), -1)
    with pytest.raises(ValueError, match="shape"):
        evasion.eps_sweep(model, flat, y, [0.0, 0.1], ATTACKS, progress=False)
    with pytest.raises(ValueError, match="shape"):
        evasion.accuracy_under_attack(model, FastGradientMethod(model, eps=0.1), x[:, :8, :8], y)
    with pytest.raises(ValueError, match="shape"):
        evasion.robustness_table({"m": model}, x[0], y, 0.1, ATTACKS, progress=False)
    with pytest.raises(ValueError, match="shape"):
        evasion.adversarial_grid(model, x, x[:5], y)
    with pytest.raises(ValueError, match="shape"):
        FastAdversarialTrainer(model, eps=0.1).fit(flat, y, nb_epochs=1, progress=False)
    with pytest.raises(ValueError, match="labels"):
        evasion.eps_sweep(model, x, y[:5], [0.0, 0.1], ATTACKS, progress=False)


def test_robustness_table_has_one_row_per_model(model, data):
    table = evasion.robustness_table({"a": model, "b": model}, data.x_test[:40], data.y_test[:40], 0.1, ATTACKS,
                                     progress=False)
    assert list(table.index) == ["a", "b"] and list(table.columns) == ["clean", "FGSM", "PGD"]
    assert (table["FGSM"] <= table["clean"]).all()


def test_adversarial_grid_returns_a_figure_with_three_panels_per_row(model, data):
    x = data.x_test[:30]
    x_adv = FastGradientMethod(model, eps=0.2).generate(x)
    fig = evasion.adversarial_grid(model, x, x_adv, data.y_test[:30], class_names=data.class_names, n=4)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 12
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("true") and "%" in titles[0]
    assert titles[1].startswith("perturbation") and titles[2].startswith("adversarial")


def test_tradeoff_plot_returns_a_figure_and_needs_the_clean_point(model, data):
    x, y = data.x_test[:40], data.y_test[:40]
    sweep = evasion.eps_sweep(model, x, y, [0.0, 0.1, 0.2], ATTACKS, progress=False)
    fig = evasion.tradeoff_plot({"baseline": sweep, "copy": sweep}, eps=0.1)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 2 and len(fig.axes[0].get_lines()) >= 4
    with pytest.raises(ValueError, match="eps 0"):
        evasion.tradeoff_plot({"baseline": sweep.drop(index=0.0)})


def test_accuracy_plot_draws_one_line_per_attack(model, data):
    sweep = evasion.eps_sweep(model, data.x_test[:40], data.y_test[:40], [0.0, 0.1], ATTACKS, progress=False)
    fig = evasion.accuracy_plot(sweep, eps=0.1)
    assert isinstance(fig, matplotlib.figure.Figure)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "FGSM" in labels and "PGD" in labels
    with pytest.raises(ValueError, match="eps"):
        evasion.accuracy_plot(sweep, eps=1.5)


def test_fast_trainer_perturbation_equals_arts_fgsm(model, data):
    x, y = data.x_test[:32], data.y_test[:32]
    ours = FastAdversarialTrainer(model, eps=0.1).perturb(x, y)
    arts = FastGradientMethod(model, eps=0.1).generate(x, y=keras.utils.to_categorical(y, 10))
    assert np.abs(ours - arts).max() < 1e-5
    assert np.abs(ours - x).max() == pytest.approx(0.1, abs=1e-5)


def test_fast_adversarial_training_raises_fgsm_accuracy(data):
    eps = 0.15

    def trained(adversarial: bool):
        labkit.set_seed(1)
        clf = wrap_model(build_model(data.input_shape, data.nb_classes, learning_rate=3e-3))
        trainer = FastAdversarialTrainer(clf, eps=eps if adversarial else 0.0)  # eps 0: a plain training run
        trainer.fit(data.x_train, data.y_train, batch_size=64, nb_epochs=10, progress=False, seed=0)
        return trainer.get_classifier()

    plain, robust = trained(False), trained(True)
    attack_acc = [evasion.accuracy_under_attack(m, FastGradientMethod(m, eps=eps), data.x_test, data.y_test)
                  for m in (plain, robust)]
    assert attack_acc[1] >= attack_acc[0] + 0.15, attack_acc
    assert labkit.accuracy(robust, data.x_test, data.y_test) >= 0.8


def test_fast_trainer_rejects_bad_settings(model, data):
    with pytest.raises(ValueError, match="ratio"):
        FastAdversarialTrainer(model, eps=0.1, ratio=0.0)
    with pytest.raises(ValueError, match="KerasClassifier"):
        FastAdversarialTrainer(object(), eps=0.1)
    with pytest.raises(ValueError, match="labels"):
        FastAdversarialTrainer(model, eps=0.1).fit(data.x_train[:20], data.y_train[:10], progress=False)


def test_sweep_takes_what_a_robustness_table_already_measured_and_runs_only_the_rest(model, data):
    x, y = data.x_test[:60], data.y_test[:60]
    table = evasion.robustness_table({"m": model}, x, y, 0.1, ATTACKS, progress=False)
    built = []

    def counting(name):
        return lambda clf, eps: built.append((name, eps)) or ATTACKS[name](clf, eps)

    counted = {name: counting(name) for name in ATTACKS}
    sweep = evasion.eps_sweep(model, x, y, (0.0, 0.1, 0.2), counted, known={0.1: table.loc["m"]}, progress=False)
    assert sorted(built) == [("FGSM", 0.2), ("PGD", 0.2)]  # eps 0 is clean, 0.1 is known
    assert sweep.loc[0.1, "PGD"] == table.loc["m", "PGD"] and sweep.loc[0.1, "FGSM"] == table.loc["m", "FGSM"]
    full = evasion.eps_sweep(model, x, y, (0.0, 0.1, 0.2), ATTACKS, progress=False)
    assert sweep.loc[0.1, "FGSM"] == pytest.approx(full.loc[0.1, "FGSM"])  # the same measurement, not a guess
