"""The extraction lab's figures: agreement with the oracle against queries, and the transfer of FGSM images.

Used in 06 (Steps 4 and 5) through ``labkit.extraction``, which re-exports both.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["plot_agreement", "plot_transfer"]


def plot_agreement(curves: dict[str, tuple[Sequence[float], Sequence[float]]], *, target: float | None = 0.8,
                   budget: float | None = None, title: str = "Agreement with the oracle vs queries") -> Any:
    """Plot each substitute's agreement with the oracle against the queries it used; return the figure.

    :param curves: ``{method name: (queries, agreements)}``, one point per budget or round.
    :param target: draw a horizontal line at this agreement (None: no line).
    :param budget: draw a vertical line at this query budget (None: no line).
    :param title: the figure's title.
    """
    import matplotlib.pyplot as plt

    from labkit.plots import REFERENCE, series_style, subplots

    if not curves:
        raise ValueError("no curves to plot: pass {name: (queries, agreements)}")
    fig, ax = subplots(figsize=(6.5, 4))
    for k, (name, (queries, agreements)) in enumerate(curves.items()):
        if len(queries) != len(agreements):
            raise ValueError(f"{name}: {len(queries)} query counts but {len(agreements)} agreements")
        ax.plot(queries, agreements, label=name, **series_style(k))
    if target is not None:
        ax.axhline(target, color=REFERENCE, linestyle="--", linewidth=1, label=f"target {target:.2f}")
    if budget is not None:
        ax.axvline(budget, color=REFERENCE, linestyle=":", linewidth=1, label=f"budget {budget:g} queries")
    ax.set_xscale("log")
    ticks = sorted({int(q) for queries, _ in curves.values() for q in queries} | ({int(budget)} if budget else set()))
    ax.set_xticks(ticks, [f"{t:,}" for t in ticks], fontsize=8, rotation=45 if len(ticks) > 6 else 0)
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel("queries to the oracle (log scale)")
    ax.set_ylabel("agreement with the oracle on the test set")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_transfer(table: Any, *, eps: float | None = None, target: float | None = 0.5,
                  title: str = "Victim accuracy on FGSM images made on each model") -> Any:
    """Plot ``transfer_sweep``'s table: the victim's accuracy against eps, one line per model; return the figure.

    :param table: the DataFrame from ``transfer_sweep`` (index eps, one column per model).
    :param eps: mark the lab's eps with a vertical line (None: no line).
    :param target: draw a horizontal line at this accuracy (None: no line).
    :param title: the figure's title.
    """
    from labkit.plots import REFERENCE, series_style, subplots

    fig, ax = subplots(figsize=(6.5, 4))
    for k, (name, column) in enumerate(table.items()):
        style = {**series_style(k), "linestyle": "--", "color": "black"} if name == "white-box" else series_style(k)
        ax.plot(table.index, column, label=name, **style)
    if eps is not None:
        ax.axvline(eps, color=REFERENCE, linestyle=":", linewidth=1, label=f"lab's eps {eps:g}")
    if target is not None:
        ax.axhline(target, color=REFERENCE, linestyle=(0, (6, 3)), linewidth=1, label=f"goal: accuracy <= {target:g}")
    ax.set_xlabel("FGSM eps")
    ax.set_ylabel("victim accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig
