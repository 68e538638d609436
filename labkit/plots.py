"""Plots shared by the notebooks: image grids and bar charts, in one consistent look."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["image_grid", "show_versions"]


def _as_2d(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


def image_grid(images: np.ndarray, titles: Sequence[str] | None = None, *, ncols: int = 8, size: float = 1.4,
               cmap: str = "gray", suptitle: str | None = None, vmin: float | None = 0.0,
               vmax: float | None = 1.0) -> Any:
    """Show images in a grid with an optional title under each; return the matplotlib figure.

    :param images: a batch of images, NHWC (or NHW).
    :param titles: one short title per image.
    :param ncols: images per row.
    :param size: inches per image.
    :param cmap: colour map for one-channel images.
    :param suptitle: a title over the whole grid.
    :param vmin: lower end of the colour scale (None: each image's own minimum).
    :param vmax: upper end of the colour scale (None: each image's own maximum).
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    n = len(images)
    if n == 0:
        raise ValueError("no images to show")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{n} images but {len(titles)} titles")
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(_as_2d(images[i]), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_versions(versions: dict[str, str]) -> Any:
    """Return the library versions as a one-column pandas table (for the setup notebook)."""
    import pandas as pd

    return pd.DataFrame({"version": versions}).rename_axis("package")
