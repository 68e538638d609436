"""Where labkit reads and writes: the build folder, the data folder, the notebooks.

Every path is resolved here so that notebooks, the runner and the tests agree. In a labkit checkout (a folder
holding both ``notebooks/`` and ``labkit/``) everything is relative to the checkout. Elsewhere, with only the
package installed, the notebooks are the copy packaged in the wheel (``labkit/_lab/``) and the build and data
folders are ``./build`` and ``./data`` of the working directory. Environment variables (set by ``labkit run``
and the Makefile) take precedence:

* ``LABKIT_OUT``: the build folder (executed notebooks, metrics, models, report).
* ``LABKIT_DATA_DIR``: a folder of local data files (``mnist.npz`` ...).
* ``LABKIT_FAST``: ``1`` selects the smoke setting (fewer epochs and samples).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "project_root", "checkout", "out_dir", "data_dir", "notebooks_dir", "packaged_lab", "models_dir", "is_fast",
    "LabNotFoundError",
]

PACKAGED_LAB = Path(__file__).resolve().parent / "_lab"
"""Where a built wheel keeps its copy of the lab: ``notebooks/`` and ``data/README.md`` (see setup.py)."""


class LabNotFoundError(FileNotFoundError):
    """No lab notebooks were found: not in a checkout and no packaged copy."""


def checkout(start: Path | None = None) -> Path | None:
    """Return the labkit checkout that contains ``start`` (default: the working directory), or None.

    :param start: the folder to look from; the checkout is its nearest ancestor holding both ``notebooks/``
        and ``labkit/``.
    """
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "notebooks").is_dir() and (folder / "labkit").is_dir():
            return folder
    return None


def project_root(start: Path | None = None) -> Path:
    """Return the labkit checkout that contains ``start`` (default: the working directory).

    When there is none (a notebook copied elsewhere, or only the package installed) the start folder itself
    is returned, so that the build folder is ``./build`` of the working directory.
    """
    return checkout(start) or (start or Path.cwd()).resolve()


def packaged_lab() -> Path | None:
    """Return the copy of the lab packaged in this install (``labkit/_lab``), or None when it has none.

    A wheel has one (copied from the checkout's ``notebooks/`` at build time); a checkout or an editable
    install does not need one.
    """
    return PACKAGED_LAB if any((PACKAGED_LAB / "notebooks").glob("[0-9][0-9]_*.ipynb")) else None


def out_dir() -> Path:
    """Return the build folder, creating it: ``$LABKIT_OUT``, else ``<checkout>/build``, else ``./build``."""
    path = Path(os.environ.get("LABKIT_OUT") or project_root() / "build")
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """Return the folder where trained models are saved (``<build>/models``), creating it."""
    path = out_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Return the folder where a teacher places local data files: ``$LABKIT_DATA_DIR``, else ``<checkout>/data``,
    else ``./data`` of the working directory (see data/README.md)."""
    return Path(os.environ.get("LABKIT_DATA_DIR") or project_root() / "data")


def notebooks_dir() -> Path:
    """Return the folder of the lab's notebooks (the solution key).

    In order: ``<checkout>/notebooks`` when the working directory is in a checkout; the copy packaged in the
    installed wheel; the checkout this package was installed from in editable mode (``pip install -e .``).

    :raises LabNotFoundError: when none of these exists.
    """
    here = checkout()
    if here is not None:
        return here / "notebooks"
    packaged = packaged_lab()
    if packaged is not None:
        return packaged / "notebooks"
    source = checkout(PACKAGED_LAB.parent.parent)
    if source is not None and source / "labkit" == PACKAGED_LAB.parent:
        return source / "notebooks"
    raise LabNotFoundError(
        f"no lab notebooks found: {Path.cwd()} is not in a labkit checkout (a folder with notebooks/ and labkit/) "
        f"and this install of labkit has no packaged copy ({PACKAGED_LAB}/notebooks). Install the package from "
        "its wheel or sdist (pip install labkit-mlsec), or run the command inside a checkout of the repository."
    )


def is_fast() -> bool:
    """Return True when the smoke setting is on (``LABKIT_FAST=1``, as CI and ``labkit run --fast`` set it)."""
    return os.environ.get("LABKIT_FAST", "").strip().lower() in {"1", "true", "yes", "on"}
