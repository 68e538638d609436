"""The tournament's leaderboard page: built from escaped parts only, inside the export's page (strict CSP).

Every name on the page comes from a file name a pair chose, so each is escaped (``html.escape``) and the
anchors linking a row to its details are made from a slug of letters and digits. The cross matrix's heat map
is a PNG drawn here (numbers in the cells, so colour is never the only cue) and embedded as a validated
``data:image/png`` URI (``_sanitize._valid_image``). The page carries ``_sanitize.page``'s
Content-Security-Policy: no script of any kind runs, whatever a name holds.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from typing import Any

from labkit._tournament_score import BLUE_COLUMNS
from labkit.classroom._intake import write_file
from labkit.classroom._sanitize import _valid_image, page
from labkit.classroom.tournament import _ordered, _status

__all__ = ["write_page", "heat_map_png"]

_HEADS = {"clean_accuracy": "clean", "fgsm_accuracy": "FGSM", "pgd_accuracy": "PGD",
          "square_extra": "broken only by Square", "robust_accuracy": "robust (worst case)"}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _anchors(result: Any) -> dict[str, str]:
    """Return a unique id (``g-<letters, digits, dashes>``) per group name."""
    ids: dict[str, str] = {}
    for group in sorted({e.group for e in result.models + result.attacks}):
        base = "g-" + (re.sub(r"[^a-z0-9]+", "-", group.lower()).strip("-")[:40] or "x")
        slug, i = base, 1
        while slug in ids.values():
            i += 1
            slug = f"{base}-{i}"
        ids[group] = slug
    return ids


def heat_map_png(attacks: list[str], models: list[str], matrix: dict[str, dict[str, float]]) -> bytes | None:
    """Draw the cross matrix (rows: attack files, columns: models) as a PNG; None when it is empty.

    :param attacks: the attack groups, in row order.
    :param models: the model groups, in column order.
    :param matrix: attack group -> model group -> success rate.
    """
    if not attacks or not models:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap

    from labkit.plots import ALERT, MAX_WIDTH, use_style

    use_style()
    values = np.array([[matrix.get(a, {}).get(m, np.nan) for m in models] for a in attacks], dtype=float)
    width = min(MAX_WIDTH, 2.5 + 0.42 * len(models))
    fig, ax = plt.subplots(figsize=(width, min(12.0, 1.5 + 0.32 * len(attacks))))
    cmap = LinearSegmentedColormap.from_list("success", ["#ffffff", ALERT]).with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    short = [(name if len(name) <= 14 else name[:13] + "…") for name in models]
    ax.set_xticks(range(len(models)), short, rotation=60, ha="right")
    ax.set_yticks(range(len(attacks)), [(name if len(name) <= 14 else name[:13] + "…") for name in attacks])
    ax.set_xlabel("model (blue team)")
    ax.set_ylabel("attack file (red team)")
    if len(models) <= 30:
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, "—" if np.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if value > 0.6 else "black")
    fig.colorbar(image, ax=ax, label="success rate")
    ax.set_title("Share of each model's correctly classified challenge images the file breaks")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _blue_table(result: Any, ids: dict[str, str], status: Any) -> str:
    heads = "".join(f"<th>{_e(_HEADS[c])}</th>" for c in BLUE_COLUMNS)
    rows = []
    for m in _ordered(result.models):
        cells = "".join(f"<td>{_num(m.scores.get(c, math.nan))}</td>" for c in BLUE_COLUMNS)
        rows.append(f"<tr><td>{m.rank or ''}</td><td><a href=\"#{ids[m.group]}\">{_e(m.group)}</a></td>{cells}"
                    f"<td class=\"text\">{_e(status(m))}</td></tr>")
    return (f"<table><thead><tr><th>rank</th><th>group</th>{heads}<th>status</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _red_table(result: Any, ids: dict[str, str], status: Any) -> str:
    rows = [f"<tr><td>{a.rank or ''}</td><td><a href=\"#{ids[a.group]}\">{_e(a.group)}</a></td>"
            f"<td>{_num(a.scores.get('mean_success', math.nan))}</td><td class=\"text\">{_e(status(a))}</td></tr>"
            for a in _ordered(result.attacks)]
    return ("<table><thead><tr><th>rank</th><th>group</th><th>mean success</th><th>status</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _details(result: Any, ids: dict[str, str], status: Any) -> str:
    sections = []
    for group, slug in ids.items():
        parts = []
        for m in (m for m in result.models if m.group == group):
            scores = ", ".join(f"{_HEADS[c]} {_num(m.scores[c])}" for c in BLUE_COLUMNS if c in m.scores)
            broken = {a: r for a, row in result.matrix.items() for mg, r in row.items() if mg == group}
            against = "; ".join(f"{_e(a)} {_num(r)}" for a, r in sorted(broken.items()))
            parts.append(f"<p><b>Model</b> {_e(m.file)}: {_e(status(m))}. {_e(scores)}"
                         + (f"<br>attack files' success against it: {against}" if against else "") + "</p>")
        for a in (a for a in result.attacks if a.group == group):
            row = result.matrix.get(group, {})
            against = "; ".join(f"{_e(m)} {_num(r)}" for m, r in sorted(row.items()))
            parts.append(f"<p><b>Attack file</b> {_e(a.file)}: {_e(status(a))}"
                         + (f"<br>its success against each model: {against}" if against else "") + "</p>")
        sections.append(f'<section class="cell" id="{slug}"><h3>{_e(group)}</h3>{"".join(parts)}</section>')
    return "".join(sections)


def write_page(result: Any) -> None:
    """Write ``index.html`` and ``matrix.png`` of a tournament into ``result.out``.

    :param result: the ``labkit.classroom.tournament.TournamentResult``.
    """
    floor = result.challenge.clean_floor

    def status(entry: Any) -> str:
        return _status(entry, floor)

    ids = _anchors(result)
    models = [m.group for m in _ordered(result.models) if m.valid]
    attacks = [a.group for a in _ordered(result.attacks) if a.valid]
    png = heat_map_png(attacks, models, result.matrix)
    figure = "<p>No valid model and attack file to cross.</p>"
    if png is not None:
        target = result.out / "matrix.png"
        if target.is_symlink():
            target.unlink()   # a planted link is removed, never written through
        target.write_bytes(png)
        payload = _valid_image("image/png", base64.b64encode(png).decode())
        if payload:
            figure = (f'<figure><img src="data:image/png;base64,{payload}" alt="cross matrix of success rates">'
                      "<figcaption>Rows: attack files; columns: models; each cell the file's success rate "
                      "against the model (matrix.csv holds the numbers).</figcaption></figure>")
    ch, suite = result.challenge, result.suite
    skipped = "".join(f"<li>{_e(e.file)}: {_e(e.reason)}</li>" for e in result.skipped)
    body = (f"<header><h1>Class tournament: {_e(ch.name)}</h1>"
            f'<p class="meta">eps = {ch.eps:g} (L-infinity), clean floor {ch.clean_floor:.0%}, seed {ch.seed}; '
            f"suite: FGSM, PGD ({suite.pgd_steps} steps, {suite.restarts} random starts), Square "
            f"({suite.square_iter} iterations); {len(result.models)} model(s), {len(result.attacks)} attack "
            f'file(s). Tables: <a href="blue.csv">blue.csv</a>, <a href="red.csv">red.csv</a>, '
            f'<a href="matrix.csv">matrix.csv</a>.</p></header><main>'
            "<h2>Blue team: robust accuracy on the held-back images</h2>"
            "<p>Robust accuracy is the per-image worst case over the suite: an image counts only when the model "
            "is right on it clean and under every attack. Square (gradient-free) runs on the images FGSM and PGD "
            "left standing; a model where it breaks many (robust far below PGD) masks its gradients rather than "
            "resisting. Models under the clean floor are listed, not ranked."
            f"</p>{_blue_table(result, ids, status)}"
            "<h2>Red team: mean success over the ranked models</h2>"
            "<p>Success against a model: the share of the challenge images it classifies correctly when clean "
            f"that the file makes it misclassify.</p>{_red_table(result, ids, status)}"
            f"<h2>Cross matrix</h2>{figure}"
            + (f'<h2>Other files</h2><ul class="problems">{skipped}</ul>' if skipped else "")
            + f"<h2>Details</h2>{_details(result, ids, status)}</main>")
    write_file(result.out / "index.html", page(f"Tournament · {ch.name}", body))
