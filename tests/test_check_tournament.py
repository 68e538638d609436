"""Self-checks of notebook 10 (the tournament): each passes on the solution and fails, with its hint, on plausible
wrong answers; the attack check never clips or changes the pair's images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from art.attacks.evasion import ProjectedGradientDescent

import labkit
from labkit import check

from check_helpers import fails, passes, small_lab

EPS = 0.1
FLOOR = 0.8


def table(rows):
    return pd.DataFrame.from_dict(rows, orient="index", columns=["clean", "FGSM", "PGD"]).rename_axis("model")


def right_rule(candidates):
    robust = candidates[["FGSM", "PGD"]].min(axis=1)
    ranked = robust[candidates["clean"] >= FLOOR]
    return ranked.idxmax() if len(ranked) else None


# --- Exercise 1 -------------------------------------------------------------------------------------------------

# at these numbers every plausible wrong rule happens to choose "madry" too: only the made-up tables tell them apart
LAB = table({"baseline": (0.95, 0.10, 0.02), "adversarial_training": (0.94, 0.70, 0.40), "madry": (0.90, 0.65, 0.55)})


def test_entry_passes_on_the_rule(capsys):
    assert right_rule(LAB) == "madry"
    passes(capsys, check.tournament_entry, "madry", LAB, clean_floor=FLOOR, rule=right_rule)
    passes(capsys, check.tournament_entry, "madry", LAB, clean_floor=FLOOR)
    nothing = table({"baseline": (0.5, 0.1, 0.0), "madry": (0.6, 0.5, 0.4)})
    passes(capsys, check.tournament_entry, None, nothing, clean_floor=FLOOR, rule=right_rule)


@pytest.mark.parametrize("choice, hint", [
    ("baseline", "another model over the floor has a higher robust accuracy"),
    ("adversarial_training", "smaller of its FGSM and PGD"),
    (0.55, "not its accuracy"),
    (["madry"], "a single string"),
    (None, "at least one model reaches"),
    ("Madry", "choose one of the table's rows"),
])
def test_entry_fails_on_a_wrong_choice(capsys, choice, hint):
    fails(capsys, check.tournament_entry, choice, LAB, clean_floor=FLOOR, hint=hint)


def test_entry_refuses_a_model_under_the_floor(capsys):
    under = table({"baseline": (0.95, 0.1, 0.02), "madry": (0.75, 0.7, 0.6)})
    fails(capsys, check.tournament_entry, "madry", under, clean_floor=FLOOR, hint="under the clean-accuracy floor")


@pytest.mark.parametrize("rule, hint", [
    (lambda c: c[["FGSM", "PGD"]].min(axis=1).idxmax(), "not ranked, however robust"),
    (lambda c: c[c["clean"] >= FLOOR]["PGD"].idxmax(), "not PGD alone"),
    (lambda c: "madry", "not ranked"),   # a constant answer: the first made-up table has madry under the floor
    (lambda c: c[c["clean"] >= FLOOR][["FGSM", "PGD"]].min(axis=1).idxmax(), "raised ValueError"),
    (lambda c: c[c["clean"] >= FLOOR][["FGSM", "PGD"]].min(axis=1).max(), "not its accuracy"),
    (lambda c: c[c["clean"] >= FLOOR][["FGSM", "PGD"]].min(axis=1), "got a Series"),
])
def test_entry_finds_a_wrong_rule_that_chose_right_by_coincidence(capsys, rule, hint):
    assert rule(LAB) is not None and (not isinstance(rule(LAB), str) or rule(LAB) == "madry")
    fails(capsys, check.tournament_entry, "madry", LAB, clean_floor=FLOOR, rule=rule, hint=hint)


def test_entry_finds_a_rule_ranking_by_clean_accuracy(capsys):
    lab = table({"baseline": (0.90, 0.10, 0.02), "madry": (0.95, 0.65, 0.55)})   # here the clean rule is right
    rule = lambda c: c[c["clean"] >= FLOOR]["clean"].idxmax()   # noqa: E731
    fails(capsys, check.tournament_entry, "madry", lab, clean_floor=FLOOR, rule=rule, hint="not its clean accuracy")


# --- Exercises 2 and 3: a real model ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab():
    data, model = small_lab()
    x, y = data.x_test[:80], data.y_test[:80]
    pgd = ProjectedGradientDescent(model, eps=EPS, eps_step=2.5 * EPS / 10, max_iter=10, num_random_init=1,
                                   batch_size=256, verbose=False)
    return model, x, y, pgd.generate(x, y=y)


def test_attack_passes_on_pgd_and_never_changes_the_images(lab, capsys):
    model, x, y, x_adv = lab
    given = x_adv.copy()
    passes(capsys, check.tournament_attack, x_adv, model, x, y, eps=EPS)
    assert np.array_equal(x_adv, given)   # nothing clipped or repaired in place
    passes(capsys, check.tournament_attack, x_adv.astype(np.float64), model, x, y, eps=EPS)


def test_attack_refuses_rather_than_clips(lab, capsys):
    model, x, y, x_adv = lab
    overshoot = np.clip(x + 2 * (x_adv - x), 0, 1)   # twice the step, clipped to [0, 1] only
    assert np.abs(overshoot - x).max() > EPS
    fails(capsys, check.tournament_attack, overshoot, model, x, y, eps=EPS, hint="it is not clipped")
    below = x - EPS   # within the budget, outside [0, 1]: the check must not clip it back
    assert below.min() < 0
    fails(capsys, check.tournament_attack, below, model, x, y, eps=EPS, hint="left [0, 1]")
    # a pixel just past the budget by float rounding is allowed, one past it by more is not
    edge = x.copy()
    edge[0, 0, 0, 0] = min(x[0, 0, 0, 0] + EPS + 1e-7, 1.0) if x[0, 0, 0, 0] < 0.5 else x[0, 0, 0, 0] - EPS - 1e-7
    mixed = x_adv.copy()
    mixed[0] = edge[0]
    passes(capsys, check.tournament_attack, mixed, model, x, y, eps=EPS)
    mixed[0, 0, 0, 0] = x[0, 0, 0, 0] + EPS + 1e-3 if x[0, 0, 0, 0] < 0.5 else x[0, 0, 0, 0] - EPS - 1e-3
    fails(capsys, check.tournament_attack, mixed, model, x, y, eps=EPS, hint="more than the class budget")


def test_attack_fails_on_plausible_mistakes(lab, capsys):
    model, x, y, x_adv = lab
    big = ProjectedGradientDescent(model, eps=EPS * 255, eps_step=2.5 * EPS * 255 / 5, max_iter=5,
                                   verbose=False).generate(x, y=y)
    fails(capsys, check.tournament_attack, big, model, x, y, eps=EPS, hint="divided by 255")
    fails(capsys, check.tournament_attack, x_adv[:40], model, x, y, eps=EPS, hint="one adversarial image per")
    fails(capsys, check.tournament_attack, x.copy(), model, x, y, eps=EPS, hint="equals the challenge images")
    fails(capsys, check.tournament_attack, x + (x_adv - x) / 4, model, x, y, eps=EPS, hint="under half the budget")
    rng = np.random.default_rng(0)
    noise = np.clip(x + EPS * np.sign(rng.standard_normal(x.shape)), 0, 1).astype(np.float32)
    fails(capsys, check.tournament_attack, noise, model, x, y, eps=EPS, hint="more than under a single FGSM step")
    nan = x_adv.copy()
    nan[0, 0, 0, 0] = np.nan
    fails(capsys, check.tournament_attack, nan, model, x, y, eps=EPS, hint="NaN")
    fails(capsys, check.tournament_attack, (x_adv * 255).astype(np.uint8), model, x, y, eps=EPS, hint="float pixels")


def test_success_rate(lab, capsys):
    model, x, y, x_adv = lab
    clean_right = model.predict(x).argmax(axis=1) == y
    adv_wrong = model.predict(x_adv).argmax(axis=1) != y
    right = float(np.mean(adv_wrong[clean_right]))
    every_wrong, adv_accuracy = float(np.mean(adv_wrong)), labkit.accuracy(model, x_adv, y)
    breaks_over_all = float(np.mean(adv_wrong & clean_right))
    values = [right, every_wrong, adv_accuracy, breaks_over_all, 1 - right]
    assert all(abs(a - b) > 0.01 for i, a in enumerate(values) for b in values[i + 1:]), values
    args = (model, x_adv, x, y)
    passes(capsys, check.tournament_success, right, *args)
    fails(capsys, check.tournament_success, every_wrong, *args, hint="already got wrong")
    fails(capsys, check.tournament_success, adv_accuracy, *args, hint="accuracy on x_adv")
    fails(capsys, check.tournament_success, breaks_over_all, *args, hint="the denominator is not")
    fails(capsys, check.tournament_success, 1 - right, *args, hint="the share the attack fails on")
    fails(capsys, check.tournament_success, 100 * right, *args, hint="percentage")


def test_entry_finds_a_rule_that_never_returns_none(capsys):
    def fallback(candidates):   # the most robust over the floor, else the most robust of all
        kept = candidates[candidates["clean"] >= FLOOR]
        return (kept if len(kept) else candidates)[["FGSM", "PGD"]].min(axis=1).idxmax()

    fails(capsys, check.tournament_entry, "madry", LAB, clean_floor=FLOOR, rule=fallback, hint="return None")


def test_success_rate_names_both_mistakes_when_they_give_the_same_number(capsys):
    class Fixed:   # a model whose answers are given: clean 8 of 10 right, on the attack 5 of 10 right
        def __init__(self, labels):
            self.labels = labels

        def predict(self, x, batch_size=256):
            return np.eye(10, dtype=np.float32)[self.labels[np.asarray(x)[:, 0, 0, 0].astype(int)]]

    y = np.arange(10)
    x = np.zeros((10, 16, 16, 1), np.float32)
    x[:, 0, 0, 0] = np.arange(10)
    x_adv = x.copy()
    x_adv[:, 0, 0, 0] += 10
    said = np.concatenate([[0, 1, 2, 3, 4, 5, 6, 7, 0, 0], [0, 1, 2, 3, 4, 0, 0, 0, 0, 0]])
    model = Fixed(said)
    args = (model, x_adv, x, y)
    passes(capsys, check.tournament_success, 3 / 8, *args)
    fails(capsys, check.tournament_success, 0.5, *args, hint="accuracy on x_adv, or the share of all images")
    fails(capsys, check.tournament_success, 0.3, *args, hint="the denominator is not")
