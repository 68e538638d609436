"""The report table on screen and the trade-off figure: how ``labkit.classroom.report``'s table is shown.

``show_table`` wraps the table in a ``ReportTable``, whose HTML is plain (no scripts) and which carries a
machine-readable copy of the metrics (``report.METRICS_MIME``) that ``labkit export`` reads back;
``tradeoff_plot`` draws clean accuracy against attack success. Used in 05_report, Steps 2 and 3, through
``labkit.classroom.report`` (which re-exports all three); the table itself is built by ``report.report_table``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["ReportTable", "show_table", "tradeoff_plot"]

_SIGNED = ("Δ clean vs baseline", "Δ attack success vs undefended")


def _fmt(value: Any, signed: bool = False) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


@dataclass
class ReportTable:
    """The report table for display: an HTML table plus a machine-readable copy of every metric."""

    table: Any
    metrics: dict[str, Any]

    def to_html(self) -> str:
        """Return the table as plain HTML (no scripts, no style sheet), numbers to three decimals.

        Numbers are right-aligned, text left-aligned, scenario names on one line (``labkit.classroom._table``).
        """
        from labkit.classroom._table import aligned_html

        shown = self.table.copy()
        plain, signed = ("clean accuracy", "accuracy under attack", "attack success"), _SIGNED
        for column in plain + signed:
            shown[column] = shown[column].map(lambda v, s=column in signed: _fmt(v, signed=s))
        return aligned_html(shown.reset_index(), numbers=plain + signed, nowrap=("scenario", "notebook"),
                            css_class="dataframe labkit-report")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_columns", 20):
            plain = self.table.drop(columns=["notes"]).to_string(float_format=lambda v: f"{v:.3f}")
        from labkit.classroom.report import METRICS_MIME

        attrs = self.table.attrs
        return {"text/plain": plain, "text/html": self.to_html(),
                METRICS_MIME: {"metrics": dict(self.metrics), "provenance": dict(attrs.get("provenance") or {}),
                               "edition": attrs.get("edition"), "group_id": attrs.get("group_id")}}


def show_table(table: Any, metrics: dict[str, Any] | None = None) -> ReportTable:
    """Return the table for display in the notebook, carrying the metrics it was built from for the export.

    :param table: the DataFrame from ``report_table``.
    :param metrics: the metrics it was built from; default: the current build's metrics store.
    """
    from labkit.metrics import load_metrics

    return ReportTable(table, load_metrics() if metrics is None else metrics)


_FAMILIES = ("baseline", "adversarial training", "Madry PGD training", "reactive defence", "backdoor", "Neural Cleanse",
             "model extraction", "membership inference", "extensions")   # each: a colour and a marker (labkit.plots)


def tradeoff_plot(table: Any, ax: Any = None) -> Any:
    """Plot clean accuracy against attack success for every scenario that has both; return the figure.

    Good models sit top left: high clean accuracy, low attack success. Each model family has its own colour
    *and* marker (legend below), each point carries a number placed clear of the other points, and the key
    beside the chart names the scenario of each number. A key entry also says how many honest inputs a model
    refuses (filtering) and when a mitigation stopped without removing the backdoor, so that a low attack
    success is never read without them.

    :param table: the DataFrame from ``report_table``.
    :param ax: matplotlib axes to draw into (default: a new figure).
    """
    import textwrap

    from labkit.classroom.report import _NOT_REMOVED, _REFUSES
    from labkit.plots import ALERT, place_labels, series_style, subplots

    fig, ax = (subplots(figsize=(10.0, 5.6)) if ax is None else (ax.figure, ax))
    shown = table.dropna(subset=["clean accuracy", "attack success"])
    key, families = [], set()
    for number, (name, row) in enumerate(shown.iterrows(), start=1):
        family = table.attrs["family"].get(name, "extensions")
        look = series_style(_FAMILIES.index(family) if family in _FAMILIES else len(_FAMILIES))
        warnings = [n for n in str(row.get("notes", "")).split("; ") if n.startswith((_REFUSES, _NOT_REMOVED))]
        key.append(textwrap.fill(f"{number:>2}  {name}" + (f" ({'; '.join(warnings)})" if warnings else ""), 46,
                                 subsequent_indent="      "))
        ax.scatter(row["attack success"], row["clean accuracy"], s=80, color=look["color"], marker=look["marker"],
                   edgecolor="black", linewidth=0.5, zorder=3, label=None if family in families else family)
        families.add(family)
    ax.set_xlim(-0.03, 1.03)
    low = min([0.9, *shown["clean accuracy"].tolist()])
    ax.set_ylim(max(0.0, low - 0.05), 1.005)
    ax.set_xlabel("attack success (1 - accuracy under attack; ASR for the backdoor)")
    ax.set_ylabel("clean accuracy")
    ax.set_title("Clean accuracy against attack success (best: top left)")
    ax.grid(alpha=0.3)
    if not len(shown):
        ax.text(0.5, 0.5, "no numbers yet: run notebooks 00-04 first", ha="center", va="center",
                transform=ax.transAxes, fontsize=12, color=ALERT)
        fig.tight_layout()
        return fig
    fig.subplots_adjust(left=0.08, right=0.58, top=0.93, bottom=0.28)
    ax.legend(title="model", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=3, frameon=False)
    ax.text(1.03, 1.0, "\n".join(key), transform=ax.transAxes, va="top", ha="left", fontsize=9, linespacing=1.35)
    place_labels(ax, shown["attack success"].tolist(), shown["clean accuracy"].tolist(),
                 [str(n) for n in range(1, len(shown) + 1)])
    return fig
