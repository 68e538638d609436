"""Plots shared by the notebooks: one palette, one set of markers, one set of figure sizes, image grids.

Every labkit figure takes its look from here, so that it reads in JupyterLab at a 1,400 px window:

* **Colour-blind safe, never colour alone.** ``PALETTE`` is Okabe and Ito's palette; series ``i`` gets
  ``series_style(i)`` (a colour *and* a marker *and* a line style) and bars get ``bar_style(i)`` (a colour and
  a hatch), so every distinction survives grey-scale printing and red-green colour blindness.
  ``use_style()`` puts the same cycle into matplotlib's rcParams for figures drawn in the notebooks.
* **No wider than the notebook column.** The inline backend saves a figure at ``DPI`` with a tight bounding
  box and shows it at its pixel size; JupyterLab's notebook column is about ``COLUMN_PX`` pixels wide at a
  1,400 px window, so ``subplots`` refuses figures wider than ``MAX_WIDTH`` inches and ``image_grid`` shrinks
  or wraps its grid to fit. Text is never smaller than ``MIN_FONTSIZE`` points.
* **No overlapping text.** ``figure_problems`` (in ``labkit._figcheck``) lists a figure's problems as
  matplotlib's own renderer lays it out; the tests call it on every plotting function.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any, Sequence

import numpy as np

__all__ = ["PALETTE", "MARKERS", "LINESTYLES", "HATCHES", "ALERT", "NEUTRAL", "REFERENCE", "DPI", "COLUMN_PX",
           "MAX_WIDTH", "FIGSIZE", "WIDE", "MIN_FONTSIZE", "series_style", "bar_style", "use_style", "subplots",
           "image_grid", "bar_chart", "place_labels", "figure_problems", "saved_size", "show_versions"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
"""Okabe & Ito's colour-blind-safe colours: blue, orange, bluish green, reddish purple, sky blue, vermillion,
black, yellow (last: faint on white)."""
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1.5, 1, 1.5, 1, 1.5)), (0, (1, 1)), (0, (8, 2)), (0, (3, 3)))
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++")
ALERT = "#D55E00"       # vermillion: what the reader must notice (a flagged class); always with a hatch or a label
NEUTRAL = "#999999"     # grey: the rest
REFERENCE = "#555555"   # reference lines (thresholds, the lab's eps); always dashed or dotted and labelled

DPI = 100               # matplotlib's and the inline backend's default: 1 inch = 100 saved pixels
COLUMN_PX = 1100        # JupyterLab's notebook column at a 1,400 px window
MAX_WIDTH = 10.5        # inches: the widest figure, COLUMN_PX minus the tight box's padding
FIGSIZE = (6.5, 4.0)    # one chart
WIDE = (10.0, 4.2)      # two charts side by side, or a chart with its legend beside it
MIN_FONTSIZE = 8        # points (11 px at DPI): the smallest text a pair can read at 100 %
TITLE_FONTSIZE = 9      # titles of the images in a grid
MIN_IMAGE = 0.85        # inches: images in a grid are never drawn smaller (grids wrap into more rows)

RC = {"figure.dpi": DPI, "savefig.dpi": "figure", "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10,
      "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9, "figure.titlesize": 12, "lines.markersize": 5}


def series_style(i: int) -> dict[str, Any]:
    """Return the look of the ``i``-th series of a chart: a colour, a marker and a line style (for ``ax.plot``)."""
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)]}


def bar_style(i: int) -> dict[str, Any]:
    """Return the look of the ``i``-th group of bars: a colour and a hatch, with dark edges (for ``ax.bar``)."""
    return {"color": PALETTE[i % len(PALETTE)], "hatch": HATCHES[i % len(HATCHES)], "edgecolor": "#333333"}


def use_style() -> None:
    """Make matplotlib draw with the lab's look: the font sizes, and a cycle of colour + marker + line style.

    labkit's plotting functions call it; a notebook drawing its own chart gets the same look from it.
    """
    import matplotlib
    from cycler import cycler

    n = len(PALETTE)
    cycle = cycler(color=list(PALETTE)) + cycler(marker=list(MARKERS[:n])) + cycler(linestyle=list(LINESTYLES[:n]))
    matplotlib.rcParams.update({**RC, "axes.prop_cycle": cycle})


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = FIGSIZE, **kwargs: Any) -> Any:
    """Return ``(figure, axes)`` like ``plt.subplots``, in the lab's look and at most ``MAX_WIDTH`` inches wide.

    :param nrows: rows of axes.
    :param ncols: columns of axes.
    :param figsize: (width, height) in inches; ``FIGSIZE`` for one chart, ``WIDE`` for two side by side.
    :param kwargs: passed to ``plt.subplots`` (``squeeze``, ``gridspec_kw`` ...).
    """
    import matplotlib.pyplot as plt

    if figsize[0] > MAX_WIDTH:
        raise ValueError(f"a figure {figsize[0]:g} inches wide is saved {figsize[0] * DPI:.0f} px wide, wider than "
                         f"the notebook column ({COLUMN_PX} px): use at most {MAX_WIDTH} inches (labkit.plots.WIDE)")
    use_style()
    return plt.subplots(nrows, ncols, figsize=figsize, **kwargs)


def _as_2d(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


def grid_shape(n: int, ncols: int, size: float) -> tuple[int, float]:
    """Return (columns, inches per image) for ``n`` images asked as ``ncols`` columns of ``size`` inches.

    The grid keeps within ``MAX_WIDTH``: images shrink down to ``MIN_IMAGE`` inches, then the grid wraps
    into more rows, by a divisor of ``ncols`` where one is at least half as wide (pairs stay together).
    """
    ncols = max(1, min(int(ncols), n))
    fits = int(MAX_WIDTH // MIN_IMAGE)
    if ncols > fits:
        divisors = [d for d in range(fits, fits // 2, -1) if ncols % d == 0]
        ncols = divisors[0] if divisors else fits
    return ncols, min(float(size), MAX_WIDTH / ncols)


def wrap_title(title: str, inches: float, fontsize: float = TITLE_FONTSIZE) -> str:
    """Break ``title`` into lines that fit ``inches`` at ``fontsize`` (an average character is ~0.6 em)."""
    chars = max(6, int(inches * 72 / (0.62 * fontsize)))
    return "\n".join(textwrap.fill(line, chars, break_long_words=False) for line in str(title).split("\n"))


def image_grid(images: np.ndarray, titles: Sequence[str] | None = None, *, ncols: int = 8, size: float = 1.4,
               cmap: str = "gray", suptitle: str | None = None, vmin: float | None = 0.0,
               vmax: float | None = 1.0) -> Any:
    """Show images in a grid with an optional title over each; return the matplotlib figure.

    The grid never gets wider than the notebook column: images shrink (to ``MIN_IMAGE`` inches at least),
    then the grid wraps into more rows; titles wrap to their image's width.

    :param images: a batch of images, NHWC (or NHW).
    :param titles: one short title per image.
    :param ncols: images per row (fewer when they would not fit the column).
    :param size: inches per image (less when the row would not fit the column).
    :param cmap: colour map for one-channel images.
    :param suptitle: a title over the whole grid.
    :param vmin: lower end of the colour scale (None: each image's own minimum).
    :param vmax: upper end of the colour scale (None: each image's own maximum).
    """
    images = np.asarray(images)
    n = len(images)
    if n == 0:
        raise ValueError("no images to show")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{n} images but {len(titles)} titles")
    ncols, size = grid_shape(n, ncols, size)
    nrows = math.ceil(n / ncols)
    shown = [wrap_title(t, size) for t in titles] if titles is not None else []
    lines = max((t.count("\n") + 1 for t in shown), default=0)
    row_height = size + lines * TITLE_FONTSIZE * 1.3 / 72 + 0.08
    fig, axes = subplots(nrows, ncols, figsize=(size * ncols, row_height * nrows + (0.45 if suptitle else 0.05)),
                         squeeze=False, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(_as_2d(images[i]), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            if shown:
                ax.set_title(shown[i], fontsize=TITLE_FONTSIZE)
    if suptitle:
        fig.suptitle(wrap_title(suptitle, size * ncols, 12))
    return fig


def bar_chart(table: Any, *, horizontal: bool = False, title: str = "", xlabel: str = "", ylabel: str = "",
              limits: tuple[float, float] | None = (0.0, 1.05), figsize: tuple[float, float] = FIGSIZE) -> Any:
    """Draw a DataFrame as grouped bars (one group per row, one hatched colour per column); return the figure.

    :param table: a pandas DataFrame; its index names the groups, its columns the bars of each group.
    :param horizontal: horizontal bars, the first row on top (for long row names).
    :param title: the chart's title.
    :param xlabel: the x axis' label.
    :param ylabel: the y axis' label.
    :param limits: the value axis' range (None: matplotlib's choice).
    :param figsize: (width, height) in inches.
    """
    fig, ax = subplots(figsize=figsize)
    k = len(table.columns)
    width = 0.8 / max(k, 1)
    positions = np.arange(len(table))
    for i, column in enumerate(table.columns):
        offset = positions + (i - (k - 1) / 2) * width
        values = table[column].astype(float).to_numpy()
        draw = ax.barh if horizontal else ax.bar
        draw(offset, values, width, label=str(column), linewidth=0.6, **bar_style(i))
    names = [str(name) for name in table.index]
    if horizontal:
        ax.set_yticks(positions, names)
        ax.invert_yaxis()
        if limits is not None:
            ax.set_xlim(*limits)
    else:
        ax.set_xticks(positions, names)
        if limits is not None:
            ax.set_ylim(*limits)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3, axis="x" if horizontal else "y")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


_RINGS = (9, 15, 22, 30)    # points from the marker's centre, tried in turn
_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1.3, 0), (-1.3, 0), (0, 1.1), (0, -1.1))


def place_labels(ax: Any, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], *,
                 fontsize: float = 9, marker_points: float = 9.0) -> list[Any]:
    """Write ``labels`` next to the points ``(xs, ys)`` where they overlap no other label or marker.

    For each point in turn, offsets on growing rings around it are tried (as matplotlib's renderer lays the
    text out) until the label touches neither a marker nor a label already placed, nor the axes' edge; a
    label that finds no free place takes the last offset tried. Call it once the axes have their final size.

    :param ax: the axes holding the points.
    :param xs: the points' x values (data units).
    :param ys: the points' y values.
    :param labels: one short label per point (e.g. its number in a key).
    :param fontsize: the labels' size in points.
    :param marker_points: the markers' diameter in points (the room kept free around each point).
    """
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    radius = marker_points / 2 * ax.figure.dpi / 72
    centres = ax.transData.transform(np.c_[np.asarray(xs, float), np.asarray(ys, float)]) if len(xs) else []
    taken = [Bbox.from_extents(x - radius, y - radius, x + radius, y + radius) for x, y in centres]
    frame = ax.get_window_extent(renderer)
    placed = []
    for x, y, label in zip(xs, ys, labels):
        for ring in _RINGS:
            free = None
            for dx, dy in _DIRECTIONS:
                text = ax.annotate(str(label), (x, y), xytext=(dx * ring, dy * ring), textcoords="offset points",
                                   ha="center", va="center", fontsize=fontsize, zorder=4)
                box = text.get_window_extent(renderer)
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                if inside and not any(box.overlaps(other) for other in taken):
                    free = text
                    break
                text.remove()
            if free is not None:
                break
        else:
            free = ax.annotate(str(label), (x, y), xytext=(_RINGS[0], _RINGS[0]), textcoords="offset points",
                               ha="center", va="center", fontsize=fontsize, zorder=4)
        taken.append(free.get_window_extent(renderer))
        placed.append(free)
    return placed


def saved_size(fig: Any) -> tuple[int, int]:
    """Return (width, height) in pixels of the PNG the inline backend saves for ``fig`` (IPython's own code)."""
    from IPython.core.pylabtools import print_figure

    png = print_figure(fig, "png")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def figure_problems(fig: Any) -> list[str]:
    """Return what keeps ``fig`` from reading in the notebook column (empty when nothing does).

    See ``labkit._figcheck.figure_problems``: the saved width, text under ``MIN_FONTSIZE``, text boxes that
    overlap each other or another chart's images, as matplotlib's renderer lays the figure out.
    """
    from labkit._figcheck import figure_problems as problems

    return problems(fig)


def show_versions(versions: dict[str, str]) -> Any:
    """Return the library versions as a one-column pandas table (for the setup notebook)."""
    import pandas as pd

    return pd.DataFrame({"version": versions}).rename_axis("package")
