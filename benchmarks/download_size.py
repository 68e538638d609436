"""How much a laptop install downloads, and how much of it the stack's floor already is (issue 14, point 5).

``pip download`` (this machine's package index, its platform and Python) of three sets, each into an empty folder:

- ``tensorflow_floor``: the pinned ``tensorflow-cpu`` (or ``tensorflow``) with its own dependencies: no lab runs
  without it;
- ``ml_floor``: that plus ART and its dependencies (SciPy, scikit-learn): the least the lab's code needs;
- ``requirements``: everything ``requirements.txt`` pins (what the README tells a pair to install: Jupyter included).

Writes ``<build>/download_size.json`` (MB = 10^6 bytes, the largest files of each set). Usage::

    .venv/bin/python benchmarks/download_size.py
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pin(name: str) -> str:
    """The line of requirements.txt pinning ``name`` for this platform (environment markers are left to pip)."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if re.match(rf"^{re.escape(name)}==", line.strip(), re.IGNORECASE):
            spec = line.split("#")[0].strip()
            marker = spec.split(";", 1)[1] if ";" in spec else ""
            if not marker or _marker_holds(marker):
                return spec.split(";")[0].strip()
    raise SystemExit(f"{name} is not pinned in requirements.txt")


def _marker_holds(marker: str) -> bool:
    from packaging.markers import Marker

    return Marker(marker).evaluate()


def _download(args: list[str]) -> dict:
    """``pip download`` ``args`` into a fresh folder; the total and the largest files, in MB."""
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", folder, *args],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"pip download {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        sizes = {p.name: p.stat().st_size for p in Path(folder).iterdir()}
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:8]
    return {"files": len(sizes), "mb": round(sum(sizes.values()) / 1e6, 1),
            "largest_mb": {name: round(size / 1e6, 1) for name, size in largest}}


def main() -> int:
    tf_pin = next(p for p in (_safe_pin("tensorflow-cpu"), _safe_pin("tensorflow")) if p)
    art_pin = _pin("adversarial-robustness-toolbox")
    sets = {"tensorflow_floor": [tf_pin], "ml_floor": [tf_pin, art_pin],
            "requirements": ["-r", str(ROOT / "requirements.txt")]}
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "python": platform.python_version(),
              "platform": platform.platform(), "goal_mb": 350}
    for name, args in sets.items():
        result[name] = {"pip_args": args, **_download(args)}
        print(f"{name}: {result[name]['mb']} MB in {result[name]['files']} files")
    sys.path.insert(0, str(ROOT))
    from labkit.paths import out_dir

    out = out_dir() / "download_size.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("->", out)
    return 0


def _safe_pin(name: str) -> str | None:
    try:
        return _pin(name)
    except SystemExit:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
