"""Where labkit reads and writes: the build folder, the data folder, the notebooks.

Every path is resolved here so that notebooks, the runner and the tests agree.
Environment variables (set by ``labkit run`` and the Makefile) take precedence:

* ``LABKIT_OUT``: the build folder (executed notebooks, metrics, models, report).
* ``LABKIT_DATA_DIR``: a folder of local data files (``mnist.npz`` ...).
* ``LABKIT_FAST``: ``1`` selects the smoke setting (fewer epochs and samples).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["project_root", "out_dir", "data_dir", "notebooks_dir", "models_dir", "is_fast"]


def project_root(start: Path | None = None) -> Path:
    """Return the labkit checkout that contains ``start`` (default: the working directory).

    The checkout is the nearest ancestor holding both ``notebooks/`` and ``labkit/``; when there is none
    (a notebook copied elsewhere) the start folder itself is returned.
    """
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "notebooks").is_dir() and (folder / "labkit").is_dir():
            return folder
    return start


def out_dir() -> Path:
    """Return the build folder, creating it: ``$LABKIT_OUT`` or ``<checkout>/build``."""
    path = Path(os.environ.get("LABKIT_OUT") or project_root() / "build")
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """Return the folder where trained models are saved (``<build>/models``), creating it."""
    path = out_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Return the folder where a teacher places local data files: ``$LABKIT_DATA_DIR`` or ``<checkout>/data``."""
    return Path(os.environ.get("LABKIT_DATA_DIR") or project_root() / "data")


def notebooks_dir() -> Path:
    """Return the folder of the lab's notebooks: ``<checkout>/notebooks``."""
    return project_root() / "notebooks"


def is_fast() -> bool:
    """Return True when the smoke setting is on (``LABKIT_FAST=1``, as CI and ``labkit run --fast`` set it)."""
    return os.environ.get("LABKIT_FAST", "").strip().lower() in {"1", "true", "yes", "on"}
