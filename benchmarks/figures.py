"""Measure the figures and progress bars a run saved: every PNG's size against the notebook column, and every
output a teacher would see as a stateless widget ("0%", "Loading widget...") instead of text.

    .venv/bin/python benchmarks/figures.py [BUILD]     # default build/; writes BUILD/figures.json

Reads the executed notebooks in ``BUILD/notebooks/`` (from ``labkit run``); never executes anything.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

from labkit.plots import COLUMN_PX

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def png_size(data: str) -> tuple[int, int]:
    """Return (width, height) of a base64 PNG as a notebook stores it."""
    head = base64.b64decode(data[:64])
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def measure(notebook: Path) -> dict:
    """Return the figures (sizes, too wide ones) and widget outputs of one executed notebook."""
    cells = json.loads(notebook.read_text())["cells"]
    sizes, widgets, bars = [], 0, 0
    for cell in cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                sizes.append(png_size(data["image/png"]))
            widgets += WIDGET_VIEW in data
            bars += output.get("name") == "stdout" and "100%|" in "".join(output.get("text", ""))
    return {"figures": len(sizes), "widest_px": max((w for w, _ in sizes), default=0),
            "too_wide": [[w, h] for w, h in sizes if w > COLUMN_PX], "widget_outputs": widgets,
            "finished_text_bars": bars}


def main(argv: list[str]) -> int:
    build = Path(argv[0] if argv else "build")
    notebooks = sorted((build / "notebooks").glob("*.ipynb"))
    if not notebooks:
        print(f"no executed notebooks in {build / 'notebooks'}: run `labkit run --out {build}` first", file=sys.stderr)
        return 1
    result = {"column_px": COLUMN_PX, "notebooks": {nb.name: measure(nb) for nb in notebooks}}
    (build / "figures.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
