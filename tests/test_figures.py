"""Every labkit figure reads at a 1,400 px window: no wider than the notebook column, no overlapping text,
no text under 8 pt, and no two series told apart by colour alone (issue 17, points 3 and 4).

Each plotting function is called on small data shaped like the notebooks' (the same numbers of images,
columns and titles as the notebook cells pass), and the figure is measured with matplotlib's own
renderer and IPython's own ``print_figure`` (what the inline backend saves).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from labkit import plots  # noqa: E402
from labkit._figcheck import colour_only_series, figure_problems  # noqa: E402

RNG = np.random.default_rng(0)


def images(n: int, side: int = 8) -> np.ndarray:
    return RNG.random((n, side, side, 1)).astype(np.float32)


class TinyClassifier:
    """Enough of an ART classifier for the plots that ask it for probabilities (a fixed random linear map)."""

    input_shape = (8, 8, 1)
    nb_classes = 10

    def __init__(self) -> None:
        self.weights = np.random.default_rng(1).normal(size=(64, 10))

    def predict(self, x: np.ndarray) -> np.ndarray:
        logits = np.asarray(x).reshape(len(x), -1) @ self.weights
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)


def sweep(models: int = 1) -> dict[str, pd.DataFrame]:
    eps = [0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3]
    decay = np.exp(-np.array(eps) * 12)
    names = ["baseline", "FGSM-trained", "PGD-trained"][:models]
    return {name: pd.DataFrame({"FGSM": 0.97 * decay ** (1 - 0.3 * k), "PGD": 0.96 * decay ** (1.2 - 0.3 * k)},
                               index=pd.Index(eps, name="eps")) for k, name in enumerate(names)}


def _figures() -> dict[str, object]:
    """Return {name: a zero-argument function drawing one figure}, one per plotting call of the notebooks."""
    from labkit import availability, clean_label, evasion, extraction, membership, poisoning
    from labkit._nc_optimize import Detection
    from labkit.classroom import report

    from test_report import FULL

    digits = [str(d) for d in range(10)]
    clf = TinyClassifier()
    x = images(40)
    y = clf.predict(x).argmax(1)
    x_adv = np.clip(x + RNG.choice([-0.11, 0.11], size=x.shape), 0, 1).astype(np.float32)
    l1 = np.array([9.0, 21, 25, 19, 30, 22, 18, 27, 24, 20])
    detection = Detection(l1_norms=l1, anomaly_index=np.abs(l1 - np.median(l1)) / 4, flagged_classes=[0],
                          masks=images(10), patterns=images(10), attack_success=np.ones(10), seconds=1.0, steps=10)
    split = membership.MembershipSplit(x[:20], y[:20], x[20:], y[20:], x[:0], y[:0])
    result = membership.AttackResult(RNG.random(50) + 0.2, RNG.random(50), 0.6, 0.65, 0.2)
    members = pd.DataFrame({"attack accuracy": [0.71, 0.55], "rule-based attack accuracy": [0.74, 0.52],
                            "model accuracy": [0.93, 0.95]}, index=["overfitted", "dropout + reverse sigmoid"])
    full = {**FULL, "extraction.jacobian.agreement": 0.84, "extraction.jacobian.queries": 1800,
            "extraction.jacobian.transfer_attack_accuracy": 0.31, "extraction.victim_accuracy": 0.97,
            "membership.overfitted.attack_accuracy": 0.7, "membership.overfitted.auc": 0.74,
            "membership.overfitted.target_test_accuracy": 0.9}
    honest = pd.DataFrame({"FGSM": [0.2, 0.7, 0.75, 0.6], "PGD": [0.1, 0.6, 0.67, 0.5],
                           "adaptive PGD": [0.1, 0.58, 0.66, 0.2]},
                          index=["baseline", "FGSM training", "Madry PGD training", "feature squeezing"])
    mitigations = pd.DataFrame({"clean accuracy": [0.96, 0.955, 0.94, 0.92, 0.95],
                                "attack success rate": [0.99, 0.02, 0.3, 0.04, 0.97],
                                "honest inputs refused": [np.nan, np.nan, np.nan, 0.19, np.nan]},
                               index=["none (backdoored model)", "unlearning", "pruning", "filtering",
                                      "control: fine-tuning, no trigger"])
    return {
        "00 training images": lambda: plots.image_grid(x[:24], [f"label {v}" for v in y[:24]], ncols=12,
                                                       suptitle="Training images and their labels"),
        "00 wrong answers": lambda: plots.image_grid(x[:12], [f"true {a}, said {b}" for a, b in zip(y[:12], y[::-1])],
                                                     ncols=6, suptitle="Test images the baseline gets wrong"),
        "01 adversarial grid": lambda: evasion.adversarial_grid(clf, x[:5], x_adv[:5], y[:5], class_names=digits,
                                                                n=5),
        "01 accuracy plot": lambda: evasion.accuracy_plot(sweep(1)["baseline"], eps=0.11,
                                                          title="Baseline: accuracy under attack"),
        "02 trade-off": lambda: evasion.tradeoff_plot(sweep(3), eps=0.11, robust_attack="PGD"),
        "02 honest evaluation": lambda: plots.bar_chart(honest.T, horizontal=True, figsize=(8, 4.8),
                                                        xlabel="test accuracy at eps 0.11",
                                                        title="The same defences, evaluated three ways"),
        "03 trigger": lambda: poisoning.two_row_grid(x[:8], x_adv[:8], [f"label {v}" for v in y[:8]],
                                                     ("clean", "with trigger"),
                                                     suptitle="Test images without and with the trigger"),
        "03 poisoned samples": lambda: poisoning.plot_poisoned_samples(x[:8], x_adv[:8], y[:8], [0] * 8),
        "03 triggered": lambda: plots.image_grid(x[:8], [f"model says {v}" for v in y[:8]], ncols=8,
                                                 suptitle="Triggered test images (none is a 0) and the poisoned "
                                                          "model's answer"),
        "03 sweep": lambda: poisoning.plot_sweep(pd.DataFrame({"poison_fraction": [0.01, 0.02, 0.05, 0.1, 0.2],
                                                               "attack_success_rate": [0.1, 0.4, 0.9, 0.98, 1.0],
                                                               "clean_accuracy": [0.97, 0.97, 0.96, 0.96, 0.95]}),
                                                 baseline_accuracy=0.97),
        "04 triggers": lambda: detection.plot_triggers(digits),
        "04 real vs reversed": lambda: plots.image_grid(x[:2], ["real trigger (L1 9)", "reversed, class 0 (L1 9.4)"],
                                                        ncols=2, size=2.2, suptitle="The attacker's trigger and "
                                                                                    "what Neural Cleanse found"),
        "04 anomaly index": lambda: detection.plot_anomaly_index(digits, title="Backdoored model"),
        "04 mitigations": lambda: plots.bar_chart(mitigations, horizontal=True, figsize=(8.5, 3.8),
                                                  xlabel="rate on the test images",
                                                  title="Each mitigation: clean accuracy kept,\nattack success left, "
                                                        "honest inputs refused"),
        "05 trade-off": lambda: report.tradeoff_plot(report.report_table(full)),
        "06 jacobian siblings": lambda: plots.image_grid(x[:30], [f"oracle: {v}" for v in y[:30]], ncols=6,
                                                         suptitle="A seed image (top) and its Jacobian siblings, "
                                                                  "round by round"),
        "06 knockoff pool": lambda: plots.image_grid(x[:12], [f"oracle: {v}" for v in y[:12]], ncols=12,
                                                     suptitle="Knockoff's transfer set: crops of photos, labelled "
                                                              "by the victim"),
        "06 agreement": lambda: extraction.plot_agreement(
            {"Jacobian augmentation (labkit)": ([150, 300, 600, 1200, 2400], [0.4, 0.55, 0.7, 0.8, 0.86]),
             "CopycatCNN, digit pool (ART)": ([150, 600, 2400], [0.5, 0.75, 0.9]),
             "KnockoffNets, photo pool (ART)": ([150, 600, 2400], [0.2, 0.3, 0.4])}, target=0.8, budget=2000),
        "06 transfer": lambda: extraction.plot_transfer(
            pd.DataFrame({"jacobian": [0.97, 0.8, 0.6, 0.45, 0.3, 0.2], "copycat": [0.97, 0.7, 0.5, 0.35, 0.2, 0.1],
                          "white-box": [0.97, 0.4, 0.2, 0.1, 0.05, 0.02]},
                         index=pd.Index([0.0, 0.05, 0.1, 0.15, 0.2, 0.3], name="eps")), eps=0.15, target=0.5),
        "07 confidence": lambda: membership.plot_confidence(clf, split, title="Overfitted target: confidence on "
                                                                              "members vs non-members"),
        "07 roc": lambda: membership.plot_roc({"overfitted target": result, "dropout target": result},
                                              title="ART black-box membership attack: ROC curves"),
        "07 bars": lambda: membership.plot_attack_bars(members, columns=("attack accuracy",
                                                                         "rule-based attack accuracy",
                                                                         "model accuracy")),
        "08 target and bases": lambda: plots.image_grid(x[:6], ["target (3)"] + ["base (8)"] * 5, ncols=6,
                                                        suptitle="The target and the base images its poisons "
                                                                 "start from"),
        "08 triplets": lambda: clean_label.triplet_grid(x[:3], x_adv[:3], x[3:6], [8] * 3, [3] * 3, per_row=3,
                                                        suptitle="Base, poison and target"),
        "08 one per target": lambda: clean_label.triplet_grid(x[:6], x_adv[:6], x[6:12], [8] * 6, [3] * 6, per_row=2,
                                                              suptitle="One poison per target (success rate 50%)"),
        "09 classes": lambda: plots.image_grid(x[:12], ["digit 3"] * 6 + ["digit 8"] * 6, ncols=12,
                                               suptitle="The two classes"),
        "09 poisons": lambda: plots.image_grid(x[:12], [f"{k} '{c}'" for c in "3838383" for k in
                                                        ("flipped", "SVM poison")][:12], ncols=12, size=1.3,
                                               suptitle="Each start point with its flipped label, then ART's "
                                                        "poison point made from it"),
        "09 curves": lambda: availability.plot_accuracy_curves(
            list(range(11)), {"label flipping": 0.95 - 0.01 * RNG.random((3, 11)).cumsum(1),
                              "PoisoningAttackSVM": 0.95 - 0.03 * RNG.random((3, 11)).cumsum(1)},
            n_train=300, budget=9, title="SVM on 3 vs 8: mean over 3 draws (band: min to max)"),
    }


def teachers_table() -> pd.DataFrame:
    """The report table of the teacher's page's full run (docs/teacher.md): the points that crowd in practice."""
    rows = [("baseline · FGSM", "baseline", 0.971, 0.713), ("baseline · PGD", "baseline", 0.971, 0.893),
            ("adversarial training (FGSM) · FGSM", "adversarial training", 0.967, 0.322),
            ("adversarial training (FGSM) · PGD", "adversarial training", 0.967, 0.502),
            ("Madry PGD training · FGSM", "Madry PGD training", 0.940, 0.358),
            ("Madry PGD training · PGD", "Madry PGD training", 0.940, 0.429),
            ("reactive defence · FGSM", "reactive defence", 0.944, 0.416),
            ("reactive defence · PGD", "reactive defence", 0.944, 0.453),
            ("backdoored model · trigger", "backdoor", 0.962, 0.998),
            ("Neural Cleanse unlearning · trigger", "Neural Cleanse", 0.964, 0.025),
            ("Neural Cleanse pruning · trigger", "Neural Cleanse", 0.889, 0.032),
            ("Neural Cleanse filtering · trigger", "Neural Cleanse", 0.773, 0.081),
            ("model extraction (copycat) · transfer FGSM", "model extraction", 0.971, 0.531),
            ("model extraction (jacobian) · transfer FGSM", "model extraction", 0.971, 0.538),
            ("model extraction (knockoff) · transfer FGSM", "model extraction", 0.971, 0.144),
            ("membership inference (defended)", "membership inference", 0.764, 0.620),
            ("membership inference (overfitted)", "membership inference", 0.764, 0.680),
            ("membership inference (regularised)", "membership inference", 0.707, 0.610)]
    table = pd.DataFrame([{"scenario": name, "clean accuracy": clean, "attack success": success, "notes": ""}
                          for name, _, clean, success in rows]).set_index("scenario")
    table.loc["Neural Cleanse filtering · trigger", "notes"] = ("refuses honest inputs 19%; "
                                                               "refuses triggered inputs 92%")
    table.attrs["family"] = {name: family for name, family, _, _ in rows}
    table.attrs["attack"] = {name: "extension" for name, *_ in rows}
    return table


def test_report_tradeoff_plot_keeps_crowded_numbers_apart_and_names_every_point():
    from labkit.classroom import report

    fig = report.tradeoff_plot(teachers_table())
    assert figure_problems(fig) == [] and colour_only_series(fig) == []
    ax = fig.axes[0]
    numbers = sorted(int(t.get_text()) for t in ax.texts if t.get_text().isdigit())
    assert numbers == list(range(1, 19))
    key = [t for t in ax.texts if "Neural Cleanse filtering" in t.get_text()][0].get_text()
    assert "18  membership inference (regularised)" in key and "refuses honest inputs 19%" in key


FIGURES = sorted(_figures())


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", FIGURES)
def test_figure_fits_the_column_with_no_overlapping_or_tiny_text(name):
    fig = _figures()[name]()
    assert figure_problems(fig) == []


@pytest.mark.parametrize("name", FIGURES)
def test_no_two_series_differ_by_colour_alone(name):
    fig = _figures()[name]()
    assert colour_only_series(fig) == []


@pytest.fixture
def matplotlib_defaults():
    """matplotlib's own look (not labkit's, which other tests may have switched on)."""
    with matplotlib.rc_context(matplotlib.rcParamsDefault):
        yield


def test_the_checker_sees_a_too_wide_figure_overlapping_text_and_text_over_an_image(matplotlib_defaults):
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 2))
    left.imshow(np.zeros((4, 4)), aspect="auto")
    left.set_title("a title", fontsize=6)
    left.text(0.5, 0.5, "one label", transform=left.transAxes)
    left.text(0.5, 0.5, "another label", transform=left.transAxes)
    right.set_xlabel("x label")
    fig.text(0.25, 0.5, "over the image")
    problems = figure_problems(fig)
    assert any("px wide, wider than the notebook column" in p for p in problems)
    assert any("'a title' is 6 pt" in p for p in problems)
    assert any("'one label' overlaps text 'another label'" in p for p in problems)
    assert any("'over the image' lies over an image" in p for p in problems)
    assert not any("one label' lies over" in p for p in problems)   # ax.text may sit on its own image


def test_the_checker_sees_series_told_apart_by_colour_alone(matplotlib_defaults):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], color="tab:blue", label="one")
    ax.plot([0, 1], [1, 0], color="tab:orange", label="two")
    ax.plot([0, 1], [0.5, 0.5], color="tab:green", linestyle="--", label="three")
    ax.legend()
    assert colour_only_series(fig) == ["'one' and 'two' differ by colour only"]


def test_palette_cycle_gives_every_series_a_colour_marker_and_line_style():
    plots.use_style()
    fig, ax = plt.subplots()
    lines = [ax.plot([0, 1], [k, k + 1])[0] for k in range(len(plots.PALETTE))]
    looks = {(line.get_color(), line.get_marker(), str(line.get_linestyle())) for line in lines}
    assert len({colour for colour, _, _ in looks}) == len(plots.PALETTE)
    assert len({marker for _, marker, _ in looks}) == len(plots.PALETTE)
    assert [line.get_color().lower() for line in lines] == [c.lower() for c in plots.PALETTE]


def test_subplots_refuses_a_figure_wider_than_the_column():
    with pytest.raises(ValueError, match="wider than the notebook column"):
        plots.subplots(figsize=(12, 4))


def test_image_grid_wraps_rather_than_widening():
    fig = plots.image_grid(images(24), [f"label {k}" for k in range(24)], ncols=24, size=2.0)
    assert plots.saved_size(fig)[0] <= plots.COLUMN_PX
    assert len([ax for ax in fig.axes if ax.images]) == 24
