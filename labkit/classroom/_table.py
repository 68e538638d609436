"""An HTML table that reads in JupyterLab: text left-aligned, numbers right-aligned, names on one line.

JupyterLab right-aligns every table cell and lets long names wrap; inline ``style`` attributes (which
JupyterLab's sanitiser keeps) set each column's alignment instead. Pages that drop ``style`` attributes
(the export's sanitiser) get the same alignment from their own style sheet by the table's class.
"""

from __future__ import annotations

import html
from typing import Any, Collection

__all__ = ["aligned_html"]


def _cell(tag: str, value: Any, *, number: bool, nowrap: bool) -> str:
    style = f"text-align: {'right' if number else 'left'}" + ("; white-space: nowrap" if nowrap else "")
    return f'<{tag} style="{style}">{html.escape(str(value))}</{tag}>'


def aligned_html(frame: Any, numbers: Collection[str], nowrap: Collection[str] = (),
                 css_class: str = "dataframe") -> str:
    """Return ``frame`` (its index ignored) as an HTML table, every value escaped.

    :param frame: a pandas DataFrame, already formatted for display (numbers as strings are fine).
    :param numbers: the columns holding numbers: right-aligned, values never wrapped (headers may wrap).
    :param nowrap: text columns kept on one line (e.g. the row names).
    :param css_class: the table's class attribute.
    """
    columns = [str(c) for c in frame.columns]
    kinds = [(c in numbers, c in numbers or c in nowrap) for c in columns]
    head = "".join(_cell("th", c, number=n, nowrap=c in nowrap) for c, (n, _) in zip(columns, kinds))   # may wrap
    rows = ["<tr>" + "".join(_cell("td", v, number=n, nowrap=w) for v, (n, w) in zip(row, kinds)) + "</tr>"
            for row in frame.itertuples(index=False)]
    return (f'<table class="{html.escape(css_class)}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')
