"""Check a matplotlib figure as the notebook shows it: its saved width, its text sizes, overlapping text.

Everything is measured with matplotlib's own renderer (``fig.canvas.get_renderer()``,
``Text.get_window_extent``) after a draw, and the width with IPython's own ``print_figure`` (what the
inline backend saves: ``bbox_inches='tight'`` at the figure's dpi).
"""

from __future__ import annotations

from typing import Any, Iterator

__all__ = ["figure_problems", "drawn_texts", "colour_only_series"]

OVERLAP_PX = 1.0   # two boxes overlap when they share more than this many pixels in both directions


def _all_axes(fig: Any) -> list[Any]:
    axes = []
    for ax in fig.axes:
        axes += [ax, *[child for child in getattr(ax, "child_axes", []) if child not in fig.axes]]
    return axes


def _tick_labels(axis: Any) -> Iterator[Any]:
    low, high = sorted(axis.get_view_interval())
    span = (high - low) or 1.0
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        loc = tick.get_loc()
        if loc is None or not (low - 1e-9 * span <= loc <= high + 1e-9 * span):
            continue  # not drawn
        for label in (tick.label1, tick.label2):
            if label.get_visible() and tick.get_visible():
                yield label


def drawn_texts(fig: Any) -> list[tuple[Any, Any, str]]:
    """Return ``(text, owner axes or None, kind)`` for every non-empty text the figure draws.

    ``kind`` is ``"own"`` for text placed by ``ax.text`` / ``ax.annotate`` (it may lie over its own axes'
    image) and ``"frame"`` for titles, axis labels, tick labels, legends and figure titles.
    """
    found: list[tuple[Any, Any, str]] = [(t, None, "frame") for t in fig.texts]
    for legend in fig.legends:
        found += [(t, None, "frame") for t in [*legend.get_texts(), legend.get_title()]]
    for ax in _all_axes(fig):
        if not ax.get_visible():
            continue
        found += [(t, ax, "frame") for t in (ax.title, ax._left_title, ax._right_title)]
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_visible() and ax.axison:
                found += [(axis.label, ax, "frame"), (axis.get_offset_text(), ax, "frame")]
                found += [(t, ax, "frame") for t in _tick_labels(axis)]
        found += [(t, ax, "own") for t in ax.texts]
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            found += [(t, ax, "frame") for t in [*legend.get_texts(), legend.get_title()]]
    return [(t, ax, kind) for t, ax, kind in found if t.get_visible() and t.get_text().strip()]


def _overlap(a: Any, b: Any) -> bool:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width > OVERLAP_PX and height > OVERLAP_PX


def _name(text: Any) -> str:
    return repr(text.get_text().replace("\n", " ")[:40])


def figure_problems(fig: Any) -> list[str]:
    """Return what keeps ``fig`` from reading in the notebook column (empty when nothing does).

    * saved wider than ``labkit.plots.COLUMN_PX`` pixels;
    * text smaller than ``labkit.plots.MIN_FONTSIZE`` points;
    * two text boxes that overlap;
    * a title, label or tick label over an image of any chart (text of ``ax.text`` may lie on its own image).
    """
    from labkit.plots import COLUMN_PX, MIN_FONTSIZE, saved_size

    problems = []
    width, _ = saved_size(fig)   # draws the figure, as the inline backend does
    if width > COLUMN_PX:
        problems.append(f"saved {width} px wide, wider than the notebook column ({COLUMN_PX} px)")
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    texts = drawn_texts(fig)
    boxes = [t.get_window_extent(renderer) for t, _, _ in texts]
    for (text, _, _), box in zip(texts, boxes):
        if text.get_fontsize() < MIN_FONTSIZE:
            problems.append(f"text {_name(text)} is {text.get_fontsize():g} pt, under {MIN_FONTSIZE} pt")
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if _overlap(boxes[i], boxes[j]):
                problems.append(f"text {_name(texts[i][0])} overlaps text {_name(texts[j][0])}")
    images = [(ax, image.get_window_extent(renderer)) for ax in _all_axes(fig) for image in ax.images]
    for (text, owner, kind), box in zip(texts, boxes):
        for ax, image_box in images:
            if (kind == "frame" or ax is not owner) and _overlap(box, image_box):
                problems.append(f"text {_name(text)} lies over an image")
                break
    return problems


def _series_key(artist: Any) -> tuple:
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Patch

    if isinstance(artist, PathCollection):
        paths = artist.get_paths()
        return ("marker", tuple(map(tuple, paths[0].vertices.round(3).tolist())) if paths else ())
    if isinstance(artist, Patch):
        return ("hatch", artist.get_hatch() or "", artist.get_fill())
    return ("line", artist.get_marker() if artist.get_marker() not in (None, "None", "") else "",
            str(artist.get_linestyle()))


def colour_only_series(fig: Any) -> list[str]:
    """Return legend entries of ``fig`` that differ from another entry of the same legend by colour alone.

    Two entries are told apart without colour when their markers, line styles or hatches differ.
    """
    problems = []
    legends = [*fig.legends, *[ax.get_legend() for ax in _all_axes(fig) if ax.get_legend() is not None]]
    for legend in legends:
        handles = getattr(legend, "legend_handles", None) or getattr(legend, "legendHandles", [])
        entries = [(text.get_text(), _series_key(handle)) for text, handle in zip(legend.get_texts(), handles)]
        for i in range(len(entries)):
            for j in range(i + 1, len(entries)):
                if entries[i][1] == entries[j][1]:
                    problems.append(f"{entries[i][0]!r} and {entries[j][0]!r} differ by colour only")
    return problems
