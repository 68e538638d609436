"""Evasion: the helpers around ART's attacks (accuracy under attack, eps sweeps, the pictures).

The notebooks build ART's attacks themselves (``FastGradientMethod``, ``ProjectedGradientDescent``);
these helpers run them over data sets and eps grids and draw the results. An *attack factory* is a
function ``(classifier, eps) -> ART evasion attack``, e.g.
``lambda clf, eps: FastGradientMethod(clf, eps=eps)``, so one sweep can attack several models.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from labkit.data import check_images, check_labels
from labkit.models import accuracy

__all__ = ["check_eps", "accuracy_under_attack", "worst_case_accuracy", "eps_sweep", "robustness_table",
           "adversarial_grid", "accuracy_plot", "tradeoff_plot"]

AttackFactory = Callable[[Any, float], Any]
"""A function ``(classifier, eps) -> ART evasion attack``."""


def check_eps(eps: Any, *, what: str = "eps") -> float:
    """Return ``eps`` as a float after checking it lies in [0, 1], the pixel range of the lab's images.

    :param eps: the attack budget (L-infinity), in pixel units of [0, 1] images.
    :param what: the name used in the error message.
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not np.isfinite(float(eps)):
        raise ValueError(f"{what} must be a number in [0, 1], got {eps!r}")
    if not 0.0 <= float(eps) <= 1.0:
        raise ValueError(f"{what} must be in [0, 1] because the images are in [0, 1], got {eps!r}; "
                         f"an eps given for 0-255 pixels (like 8) divides by 255 (8 / 255 = {8 / 255:.3f})")
    return float(eps)


def _checked(classifier: Any, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = check_images(x, tuple(classifier.input_shape))
    nb_classes = getattr(classifier, "nb_classes", None)
    return x, check_labels(y, len(x), nb_classes=int(nb_classes) if nb_classes else None)


def accuracy_under_attack(classifier: Any, attack: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Return the accuracy of ``classifier`` on ``attack.generate(x, y)``: the share of attacks that fail.

    The attack gets the true labels (the strongest untargeted setting). When the attack was built
    against another model, this measures transfer.

    :param classifier: the ART classifier to evaluate.
    :param attack: an ART evasion attack (FastGradientMethod, ProjectedGradientDescent ...).
    :param x: clean images, of the classifier's input shape, in [0, 1].
    :param y: their integer (or one-hot) labels.
    """
    x, labels = _checked(classifier, x, y)
    if hasattr(attack, "eps"):
        check_eps(attack.eps, what="the attack's eps")
    return accuracy(classifier, attack.generate(x, y=labels), labels)


def worst_case_accuracy(classifier: Any, attacks: Sequence[Any], x: np.ndarray, y: np.ndarray) -> float:
    """Return the share of images that every attack in ``attacks`` fails on (the per-image worst case).

    An image counts as robust only if the classifier stays right under each attack; this is never
    above the accuracy under any single one of them, and is how a careful evaluation combines attacks.

    :param classifier: the ART classifier to evaluate.
    :param attacks: ART evasion attacks (each with its eps in [0, 1]).
    :param x: clean images, of the classifier's input shape, in [0, 1].
    :param y: their integer (or one-hot) labels.
    """
    x, labels = _checked(classifier, x, y)
    if len(attacks) == 0:
        raise ValueError("give at least one attack")
    robust = classifier.predict(x).argmax(axis=1) == labels
    for attack in attacks:
        if hasattr(attack, "eps"):
            check_eps(attack.eps, what="the attack's eps")
        robust &= classifier.predict(attack.generate(x, y=labels)).argmax(axis=1) == labels
    return float(robust.mean())


def eps_sweep(classifier: Any, x: np.ndarray, y: np.ndarray, eps_values: Sequence[float],
              attacks: Mapping[str, AttackFactory], *, attack_model: Any = None,
              known: Mapping[float, Mapping[str, float]] | None = None, progress: bool = True) -> Any:
    """Return a DataFrame of accuracy under each attack at each eps: index ``eps``, one column per attack.

    At eps 0 no attack runs: every column holds the clean accuracy. Used in 01 (Step 6) and 02 (Step 5, where the
    lab's eps comes from Step 4's table through ``known``).

    :param classifier: the ART classifier to evaluate.
    :param x: clean images, of the classifier's input shape, in [0, 1].
    :param y: their integer (or one-hot) labels.
    :param eps_values: the eps grid, each in [0, 1].
    :param attacks: ``{name: factory}``, a factory being ``(classifier, eps) -> ART attack``.
    :param attack_model: craft the attacks on this model instead of ``classifier`` (a transfer, or a
        non-adaptive attack on a defended model); default: ``classifier`` itself (white-box).
    :param known: ``{eps: {attack name: accuracy}}`` already measured the same way (e.g. a ``robustness_table``
        row at the lab's eps): those attacks are not run again.
    :param progress: draw a progress bar over the grid.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    grid = [check_eps(e, what="every eps in eps_values") for e in eps_values]
    if not grid or not attacks:
        raise ValueError("give at least one eps and one attack, e.g. attacks={'FGSM': lambda clf, eps: "
                         "FastGradientMethod(clf, eps=eps)}")
    x, labels = _checked(classifier, x, y)
    clean = accuracy(classifier, x, labels)
    rows = {name: [] for name in attacks}
    measured = {check_eps(e, what="every eps in known"): dict(row) for e, row in (known or {}).items()}
    with tqdm(total=len(grid) * len(attacks), desc="eps sweep", unit="attack", disable=not progress) as bar:
        for eps in grid:
            for name, factory in attacks.items():
                if eps == 0:
                    rows[name].append(clean)
                elif name in measured.get(eps, {}):
                    rows[name].append(float(measured[eps][name]))
                else:
                    attack = factory(classifier if attack_model is None else attack_model, eps)
                    rows[name].append(accuracy_under_attack(classifier, attack, x, labels))
                bar.update(1)
    return pd.DataFrame(rows, index=pd.Index(grid, name="eps"))


def robustness_table(classifiers: Mapping[str, Any], x: np.ndarray, y: np.ndarray, eps: float,
                     attacks: Mapping[str, AttackFactory], *, progress: bool = True) -> Any:
    """Return a DataFrame with one row per model: clean accuracy, then accuracy under each attack at ``eps``.

    :param classifiers: ``{name: ART classifier}``, e.g. the baseline and the robust models.
    :param x: clean test images, in [0, 1].
    :param y: their integer (or one-hot) labels.
    :param eps: the attack budget, in [0, 1].
    :param attacks: ``{name: factory}``, a factory being ``(classifier, eps) -> ART attack``.
    :param progress: draw a progress bar over the models.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    eps = check_eps(eps)
    table = {}
    for name, clf in tqdm(classifiers.items(), desc="robustness table", unit="model", disable=not progress):
        xc, labels = _checked(clf, x, y)
        row = {"clean": accuracy(clf, xc, labels)}
        for attack_name, factory in attacks.items():
            row[attack_name] = accuracy_under_attack(clf, factory(clf, eps), xc, labels)
        table[name] = row
    return pd.DataFrame.from_dict(table, orient="index").rename_axis("model")


def adversarial_grid(classifier: Any, x: np.ndarray, x_adv: np.ndarray, y: np.ndarray, *,
                     class_names: Sequence[str] | None = None, n: int = 5, only_fooled: bool = True,
                     size: float = 1.9) -> Any:
    """Draw original / perturbation / adversarial image side by side, with labels and confidences; return the figure.

    One row per example: the clean image (true label, prediction and confidence), the perturbation
    ``x_adv - x`` (red brightens, blue darkens; scaled to its largest value) and the adversarial image
    (prediction and confidence).

    :param classifier: the ART classifier that is attacked.
    :param x: clean images, in [0, 1].
    :param x_adv: their adversarial versions (same shape).
    :param y: integer (or one-hot) true labels.
    :param class_names: names of the classes (default: the class indices).
    :param n: number of rows.
    :param only_fooled: show images the model got right and the attack turned wrong (when there are any).
    :param size: inches per image.
    """
    from labkit.plots import ALERT, subplots

    x, labels = _checked(classifier, x, y)
    x_adv = check_images(x_adv, tuple(classifier.input_shape), what="x_adv")
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv has shape {x_adv.shape} but x has {x.shape}: pass the adversarial version of x")
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    names = list(class_names) if class_names is not None else [str(i) for i in range(int(labels.max()) + 1)]
    p_clean, p_adv = classifier.predict(x), classifier.predict(x_adv)
    pred_clean, pred_adv = p_clean.argmax(1), p_adv.argmax(1)
    chosen = np.arange(len(x))
    if only_fooled:
        fooled = np.flatnonzero((pred_clean == labels) & (pred_adv != labels))
        chosen = fooled if len(fooled) else chosen
    chosen = chosen[: int(n)]
    delta = x_adv[chosen] - x[chosen]
    scale = float(np.abs(delta).max()) or 1.0
    fig, axes = subplots(len(chosen), 3, figsize=(3 * size + 0.6, (size + 0.35) * len(chosen) + 0.5),
                         squeeze=False, layout="constrained")
    for row, i in enumerate(chosen):
        panels = [
            (x[i], "gray", 0.0, 1.0, f"true {names[labels[i]]}\nsaid {names[pred_clean[i]]} "
                                      f"({p_clean[i].max():.0%})"),
            (x_adv[i] - x[i], "seismic", -scale, scale,
             f"perturbation\n(red +, blue −)\nmax |δ| {np.abs(x_adv[i] - x[i]).max():.3f}"),
            (x_adv[i], "gray", 0.0, 1.0, f"adversarial\nsaid {names[pred_adv[i]]} ({p_adv[i].max():.0%})"),
        ]
        for ax, (image, cmap, vmin, vmax, title) in zip(axes[row], panels):
            ax.imshow(np.asarray(image)[..., 0] if image.shape[-1] == 1 else image, cmap=cmap, vmin=vmin,
                      vmax=vmax, interpolation="nearest")
            ax.set_title(title, fontsize=9, color=ALERT if "adversarial" in title and
                         pred_adv[i] != labels[i] else "black")
            ax.axis("off")
    fig.suptitle("original / perturbation / adversarial", fontsize=11)
    return fig


def _check_sweeps(sweeps: Any) -> dict[str, Any]:
    import pandas as pd

    if isinstance(sweeps, pd.DataFrame):
        sweeps = {"model": sweeps}
    if not sweeps:
        raise ValueError("give at least one sweep: {'baseline': labkit.evasion.eps_sweep(...)}")
    frames = list(sweeps.values())
    if any(list(f.columns) != list(frames[0].columns) for f in frames):
        raise ValueError("every sweep must have the same attack columns; run them with the same attacks")
    return dict(sweeps)


def accuracy_plot(sweeps: Any, *, eps: float | None = None, ax: Any = None,
                  title: str = "Accuracy under attack") -> Any:
    """Plot accuracy against eps: one colour per model, one line style per attack; return the figure.

    :param sweeps: a DataFrame from ``eps_sweep``, or ``{model name: DataFrame}`` with the same attack columns.
    :param eps: the lab's eps, marked with a vertical line (None: no mark).
    :param ax: a matplotlib axes to draw on (default: a new figure).
    :param title: the axes' title.
    """
    from labkit.plots import LINESTYLES, REFERENCE, series_style, subplots

    sweeps = _check_sweeps(sweeps)
    eps = check_eps(eps) if eps is not None else None
    if ax is None:
        _, ax = subplots(figsize=(6.5, 4.2))
    single = len(sweeps) == 1
    for k, (model, frame) in enumerate(sweeps.items()):
        for j, attack in enumerate(frame.columns):
            # one colour and marker per model, one line style per attack: no series differs by colour alone
            style = {**series_style(j if single else k), "linestyle": LINESTYLES[j % len(LINESTYLES)]}
            ax.plot(frame.index, frame[attack], markersize=4, label=attack if single else f"{model}, {attack}",
                    **style)
    if eps is not None:
        ax.axvline(eps, color=REFERENCE, ls=":", lw=1, label=f"the lab's eps = {eps:g}")
    ax.set(xlabel="eps (L∞ budget, pixels in [0, 1])", ylabel="test accuracy", ylim=(0, 1.05), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")  # accuracy falls with eps: the upper right stays empty
    ax.figure.tight_layout()
    return ax.figure


def tradeoff_plot(sweeps: Mapping[str, Any], *, eps: float | None = None, robust_attack: str | None = None,
                  title: str = "Clean vs robust accuracy") -> Any:
    """Plot accuracy against eps for several models on one figure, and clean vs robust accuracy; return the figure.

    Left: ``accuracy_plot`` of every sweep (eps 0 is the clean accuracy). Right: each model as a point,
    clean accuracy against accuracy under ``robust_attack`` at ``eps``: up and to the right is better,
    and the cost of robustness shows as a step to the left.

    :param sweeps: ``{model name: DataFrame from eps_sweep}``, all with the same attack columns and eps 0.
    :param eps: the lab's eps, marked on the left and used on the right (default: the largest swept eps).
    :param robust_attack: the column used on the right (default: the last column, e.g. the stronger attack).
    :param title: the figure's title.
    """
    from labkit.plots import WIDE, series_style, subplots

    sweeps = _check_sweeps(sweeps)
    frames = list(sweeps.values())
    columns = list(frames[0].columns)
    robust_attack = robust_attack or columns[-1]
    if robust_attack not in columns:
        raise ValueError(f"robust_attack {robust_attack!r} is not one of the sweeps' attacks {columns}")
    if any(0.0 not in set(np.asarray(f.index, dtype=float)) for f in frames):
        raise ValueError("every sweep must include eps 0 (the clean accuracy): eps_values=[0, 0.05, ...]")
    eps = check_eps(eps) if eps is not None else float(max(frames[0].index))
    fig, (left, right) = subplots(1, 2, figsize=(WIDE[0], 4.6), gridspec_kw={"width_ratios": [1.6, 1]})
    accuracy_plot(sweeps, eps=eps, ax=left)
    cleans = []
    for k, (model, frame) in enumerate(sweeps.items()):
        index = np.asarray(frame.index, dtype=float)
        clean = float(frame.loc[frame.index[index == 0.0][0], robust_attack])
        robust = float(frame[robust_attack].iloc[int(np.argmin(np.abs(index - eps)))])
        cleans.append(clean)
        look = series_style(k)
        right.scatter(clean, robust, s=70, color=look["color"], marker=look["marker"], zorder=3, label=model)
    right.set(xlabel="clean accuracy", ylabel=f"{robust_attack} accuracy at eps {eps:g}", ylim=(0, 1),
              xlim=_padded(cleans), title="Up and right is better")
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _padded(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = max(0.02, (high - low) * 0.3)
    return max(0.0, low - pad), min(1.0, high + pad) + 0.01
