"""The backdoor lab's figures: two aligned rows of images, poisoned training images, the poison-fraction sweep.

Used in 03 (Steps 2, 3 and 7) and by Neural Cleanse's reversed triggers (``plot_triggers``, 04 Step 4), through
``labkit.poisoning``, which re-exports all three.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["two_row_grid", "plot_poisoned_samples", "plot_sweep"]


def two_row_grid(top: np.ndarray, bottom: np.ndarray, titles: Sequence[str], row_labels: tuple[str, str], *,
                 suptitle: str = "", size: float = 1.5) -> Any:
    """Show two aligned rows of images (e.g. before / after) with a title per column and a label per row.

    :param top: images of the first row.
    :param bottom: images of the second row, as many as ``top``.
    :param titles: one title per column.
    :param row_labels: the labels written left of each row.
    :param suptitle: a title over the figure.
    :param size: inches per image.
    """
    from labkit.plots import MAX_WIDTH, TITLE_FONTSIZE, subplots, wrap_title

    n = len(top)
    size = min(size, (MAX_WIDTH - 0.6) / n)   # no wider than the notebook column
    titles = [wrap_title(t, size) for t in titles]
    lines = max((t.count("\n") + 1 for t in titles), default=0)
    head = lines * TITLE_FONTSIZE * 1.3 / 72 + (0.45 if suptitle else 0.1)
    fig, axes = subplots(2, n, figsize=(size * n + 0.6, 2 * size + head + 0.15), squeeze=False, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
    for row, (images, label) in enumerate(zip((top, bottom), row_labels)):
        for col in range(n):
            ax = axes[row, col]
            image = np.asarray(images[col])
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(titles[col], fontsize=TITLE_FONTSIZE)
        axes[row, 0].set_ylabel(label, fontsize=9)
    if suptitle:
        fig.suptitle(wrap_title(suptitle, size * n + 0.6, 12))
    return fig


def plot_poisoned_samples(clean: np.ndarray, poisoned: np.ndarray, labels_before: Sequence[int],
                          labels_after: Sequence[int], *, n: int = 8) -> Any:
    """Show clean training images above their poisoned versions, with the label before and after.

    :param clean: the original images.
    :param poisoned: the same images with the trigger.
    :param labels_before: their true labels.
    :param labels_after: the labels the attacker gave them (the target).
    :param n: how many pairs to show.
    """
    n = min(n, len(clean))
    titles = [f"label {int(b)} -> {int(a)}" for b, a in zip(labels_before[:n], labels_after[:n])]
    return two_row_grid(np.asarray(clean)[:n], np.asarray(poisoned)[:n], titles, ("original", "poisoned"),
                        suptitle="Poisoned training images: the trigger is stamped and the label changed")


def plot_sweep(table: Any, *, baseline_accuracy: float | None = None) -> Any:
    """Plot ASR and clean accuracy against the poison fraction (a line each); return the figure.

    :param table: the DataFrame from ``poison_fraction_sweep``.
    :param baseline_accuracy: the clean model's accuracy, drawn as a dashed line.
    """
    from labkit.plots import REFERENCE, series_style, subplots

    fig, ax = subplots(figsize=(6.5, 3.8))
    percent = 100 * table["poison_fraction"]
    ax.plot(percent, table["attack_success_rate"], label="attack success rate", **series_style(5))
    ax.plot(percent, table["clean_accuracy"], label="clean accuracy", **series_style(0))
    if baseline_accuracy is not None:
        ax.axhline(baseline_accuracy, ls=":", color=REFERENCE, label="baseline clean accuracy")
    ax.set_xlabel("poisoned share of the source-class training images (%)")
    ax.set_ylabel("rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(percent)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("How much poison does a backdoor need?")
    fig.tight_layout()
    return fig
