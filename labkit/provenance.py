"""Where a recorded number came from: the edition, the run, the notebook, the time, labkit's version, the group.

Every ``labkit.record(...)`` stores, beside the number, a provenance entry made here. The report and the teacher's
export compare it with the report's own run (``origin``), so that a number from the solution key's run, from
another group's store or from no run at all is named as such.

* **edition**: ``"key"`` when the notebook is the solution key (a notebook in the checkout's ``notebooks/``, or
  ``LABKIT_EDITION=key`` as ``labkit run`` sets it for those notebooks), else ``"student"`` (the student edition,
  nbgrader's release, any copy elsewhere). ``LABKIT_EDITION`` overrides the guess.
* **run id**: ``LABKIT_RUN_ID`` (one per ``labkit run``), else one per kernel session (process).
* **notebook**: the file name from ``LABKIT_NOTEBOOK`` (set by ``labkit run``), else the Jupyter session's notebook
  (``__session__`` / ``JPY_SESSION_NAME``), else ``"unknown"``.
* **group**: the group id from ``LABKIT_GROUP`` (headless runs), else unknown until the report's group cell claims
  the store for its group (``labkit.metrics.claim_group``).

What this catches and what it cannot is stated in docs/teacher.md: it catches honest mistakes, a copied build folder
and a report that was never run; a pair that edits its store by hand can forge it.
"""

from __future__ import annotations

import datetime as _dt
import os
import uuid
from pathlib import Path
from typing import Any, Mapping

__all__ = ["EDITIONS", "EDITION_ENV", "RUN_ID_ENV", "NOTEBOOK_ENV", "edition", "run_id", "notebook_path",
           "current", "origin", "OWN_RUN"]

EDITIONS = ("key", "student")
EDITION_ENV = "LABKIT_EDITION"
RUN_ID_ENV = "LABKIT_RUN_ID"
NOTEBOOK_ENV = "LABKIT_NOTEBOOK"
OWN_RUN = "own run"

_SESSION_RUN_ID = uuid.uuid4().hex[:12]   # one per kernel (process): an interactive session's run id


def notebook_path() -> Path | None:
    """Return the path of the notebook this kernel runs, when it can be known (None otherwise)."""
    for value in (os.environ.get(NOTEBOOK_ENV), _session_name(), os.environ.get("JPY_SESSION_NAME")):
        if value:
            return Path(value)
    return None


def _session_name() -> str | None:
    """Return ipykernel's ``__session__`` (the notebook's path in a Jupyter server), if running in a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with jupyter
        return None
    shell = get_ipython()
    value = shell.user_ns.get("__session__") if shell is not None else None
    return value if isinstance(value, str) and value else None


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def edition() -> str:
    """Return ``"key"`` for the solution key's notebooks, ``"student"`` for every other copy.

    ``LABKIT_EDITION`` (``key`` or ``student``) decides when set; otherwise a notebook in the checkout's
    ``notebooks/`` folder (or, when the notebook is unknown, a kernel started there) is the key.
    """
    from labkit.paths import notebooks_dir

    chosen = os.environ.get(EDITION_ENV, "").strip().lower()
    if chosen:
        if chosen not in EDITIONS:
            raise ValueError(f"{EDITION_ENV} must be 'key' or 'student', got {chosen!r}; unset it to let labkit "
                             "tell the solution key from the student edition")
        return chosen
    path = notebook_path()
    folder = path.parent if path is not None else Path.cwd()
    try:
        key_folder = notebooks_dir()
    except FileNotFoundError:   # no solution key in this install: every notebook is a copy
        return "student"
    return "key" if _same_folder(folder, key_folder) else "student"


def run_id() -> str:
    """Return the run id: ``LABKIT_RUN_ID`` (one per ``labkit run``), else one per kernel session."""
    return os.environ.get(RUN_ID_ENV, "").strip() or _SESSION_RUN_ID


def _group_id() -> str | None:
    text = os.environ.get("LABKIT_GROUP", "")
    group_id, sep, _ = text.partition(":")
    return group_id.strip() or None if sep else None


def current() -> dict[str, Any]:
    """Return the provenance of a number recorded now: edition, run id, notebook, time, labkit version, group."""
    from labkit import __version__

    path = notebook_path()
    return {"edition": edition(), "run_id": run_id(), "notebook": path.name if path is not None else "unknown",
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "labkit": __version__,
            "group": _group_id()}


def origin(entry: Mapping[str, Any] | None, *, edition: str = "student", group_id: str | None = None) -> str:
    """Return where a number came from, seen from a report of ``edition`` and ``group_id``.

    ``"own run"`` when the entry's edition is the report's and its group is unknown or the same; otherwise
    ``"the key's run"``, ``"another edition's run"``, ``"group X's run"`` or ``"no run"`` (no provenance: an old
    store, or a number written by hand).

    :param entry: the number's provenance entry (None when it has none).
    :param edition: the edition of the report reading it.
    :param group_id: the report's group id (None: unknown).
    """
    if not isinstance(entry, Mapping) or entry.get("edition") not in EDITIONS:
        return "no run"
    if entry["edition"] != edition:
        return "the key's run" if entry["edition"] == "key" else "the student edition's run"
    theirs = entry.get("group")
    theirs = theirs.strip()[:40] if isinstance(theirs, str) else None   # read from a submission: text, short
    if theirs and group_id and theirs.casefold() != str(group_id).strip()[:40].casefold():
        return f"group {theirs}'s run"
    return OWN_RUN
