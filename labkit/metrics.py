"""The metrics store: one JSON file that every notebook records its numbers into, each with its provenance.

Keys are dotted names from the lab (``baseline.clean_accuracy``, ``backdoor.attack_success_rate``);
values are numbers, strings, booleans or lists of them. The report notebook and the teacher's
gradebook read this file, so a number exists in exactly one place.

Where the store is (``metrics_path``): ``$LABKIT_OUT/metrics.json`` when ``LABKIT_OUT`` is set (``labkit run``,
CI, a teacher's hub); otherwise the solution key records into ``<build>/metrics.json`` and the student edition
into its own store, ``<build>/student-run/metrics.json``, so a pair never reads the key's numbers by accident.

The file (format 2) holds ``{"format": 2, "metrics": {key: value}, "provenance": {key: {...}}, "group": id}``;
``load_metrics`` returns the flat ``{key: value}`` and reads old flat stores too. Writers are serialised by a file
lock (``metrics.json.lock``, the ``filelock`` library) and replace the file atomically (a temporary file in the
same folder, flushed to disk, then ``os.replace``), so two kernels recording at once lose nothing and a killed
kernel leaves the last complete store; a temporary file left by a kill is removed by the next writer.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labkit.paths import out_dir

__all__ = ["metrics_path", "record", "record_check", "load_metrics", "load_store", "claim_group", "get_metric",
           "Store", "MissingMetricError", "STORE_FORMAT", "LOCK_TIMEOUT", "CHECK_PREFIX"]

_KEY = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
STORE_FORMAT = 2
LOCK_TIMEOUT = 60.0
"""Seconds a writer waits for another kernel to finish writing the store before it gives up with a message."""
_TEMP_SUFFIX = ".tmp"


class MissingMetricError(KeyError):
    """A number the caller needs has not been recorded yet."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


@dataclass
class Store:
    """The metrics store's contents: the numbers, where each came from, and the group that claimed it."""

    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    group: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the store as written to disk (format 2, keys sorted)."""
        return {"format": STORE_FORMAT, "group": self.group, "metrics": dict(sorted(self.metrics.items())),
                "provenance": {k: self.provenance[k] for k in sorted(self.provenance) if k in self.metrics}}


def metrics_path() -> Path:
    """Return the path of the metrics store: ``$LABKIT_OUT/metrics.json`` when set, else the edition's store
    (the key: ``<build>/metrics.json``; the student edition: ``<build>/student-run/metrics.json``)."""
    from labkit.provenance import edition

    if os.environ.get("LABKIT_OUT") or edition() == "key":
        return out_dir() / "metrics.json"
    folder = out_dir() / "student-run"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "metrics.json"


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_to_json(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    raise TypeError(f"cannot record a value of type {type(value).__name__}; use a number, string or list")


def _parse(data: Any, path: Path) -> Store:
    """Return the store held by the JSON ``data`` of ``path``: format 2, or an old flat ``{key: value}``."""
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a metrics store (a JSON object); delete it and re-run the notebooks")
    if data.get("format") != STORE_FORMAT or not isinstance(data.get("metrics"), dict):
        return Store(metrics=dict(data))     # format 1: flat, no provenance
    provenance = data.get("provenance") if isinstance(data.get("provenance"), dict) else {}
    group = data.get("group") if isinstance(data.get("group"), str) else None
    return Store(dict(data["metrics"]), {str(k): v for k, v in provenance.items() if isinstance(v, dict)}, group)


def load_store(path: str | Path | None = None) -> Store:
    """Return the store's numbers with their provenance (an empty store when none yet).

    :param path: a metrics file; default: ``metrics_path()``.
    """
    path = Path(path) if path is not None else metrics_path()
    if not path.exists():
        return Store()
    try:
        return _parse(json.loads(path.read_text(encoding="utf-8")), path)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it and re-run the notebooks") from err


def load_metrics(path: str | Path | None = None) -> dict[str, Any]:
    """Return every recorded metric as a flat ``{dotted key: value}`` dict (empty when none yet).

    :param path: a metrics file; default: the store of the current build folder.
    """
    return load_store(path).metrics


def _lock(path: Path) -> Any:
    from filelock import FileLock

    return FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT)


def _remove_stale_temps(path: Path) -> None:
    """Delete temporary files a killed writer left beside ``path`` (only called while holding the lock)."""
    for stale in path.parent.glob(f".{path.name}.*{_TEMP_SUFFIX}"):
        try:
            stale.unlink()
        except FileNotFoundError:
            pass


def _file_mode() -> int:
    """Return the mode of a newly created file under the current umask (0644 with the usual umask 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write(store: Store, path: Path) -> None:
    """Replace ``path`` by ``store`` atomically: a temporary file in the same folder, synced, then renamed."""
    tmp = path.parent / f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}{_TEMP_SUFFIX}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(store.as_json(), handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _update(path: Path, change: Any) -> None:
    """Apply ``change(store)`` to the store at ``path`` under its lock and write it back (not when ``change``
    returns False: nothing changed)."""
    from filelock import Timeout

    try:
        with _lock(path):
            _remove_stale_temps(path)
            store = load_store(path)
            if change(store) is not False:
                _write(store, path)
    except Timeout:
        raise TimeoutError(f"the metrics store {path} stayed locked for {LOCK_TIMEOUT:.0f} s by another kernel; "
                           "wait for the other notebook to finish, or restart its kernel") from None


def record(key: str, value: Any) -> Any:
    """Record ``value`` under the dotted ``key`` in the metrics store, with its provenance, and return it.

    Concurrent writers are serialised by a file lock and the file is replaced atomically, so two kernels
    recording at once lose nothing and an interrupted notebook never leaves a half-written store.

    :param key: dotted name, e.g. ``"baseline.clean_accuracy"``.
    :param value: a number, string, boolean, or a list / array / dict of them.
    """
    from labkit.provenance import current

    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"metric key must be dotted words like 'baseline.clean_accuracy', got {key!r}")
    stored, entry = _to_json(value), current()

    def change(store: Store) -> None:
        store.metrics[key] = stored
        if entry["group"] is None and store.group:
            entry["group"] = store.group
        store.provenance[key] = entry

    _update(metrics_path(), change)
    return value


CHECK_PREFIX = "check."
"""Store keys of the self-checks' verdicts: ``check.<check name>`` is ``"pass"`` or ``"hint"``."""


def record_check(name: str, passed: bool) -> None:
    """Record the verdict of self-check ``name`` (``"pass"`` or ``"hint"``) for the teacher's gradebook.

    :param name: the check's name, e.g. ``"fgsm_attack"``.
    :param passed: whether it passed.
    """
    record(CHECK_PREFIX + name, "pass" if passed else "hint")


def claim_group(group_id: str, path: str | Path | None = None) -> None:
    """Mark the store as the group's: numbers recorded without a group get ``group_id``, and so do later ones.

    The report's group cell calls this, so that a store copied to another group afterwards shows whose run
    produced its numbers. A group already set (by ``LABKIT_GROUP`` or an earlier claim) is never overwritten.

    :param group_id: the group's id, e.g. ``"G07"``.
    :param path: a metrics file; default: ``metrics_path()``.
    """
    path = Path(path) if path is not None else metrics_path()
    if not path.exists() or not group_id:
        return
    seen = load_store(path)
    if seen.group and all(entry.get("group") for entry in seen.provenance.values()):
        return   # already claimed: not even a lock file is written (a handed-in copy stays as it was)

    def change(store: Store) -> bool:
        unclaimed = [entry for entry in store.provenance.values() if not entry.get("group")]
        if store.group and not unclaimed:
            return False   # nothing to claim: the store (perhaps a handed-in copy) is left as it is
        store.group = store.group or group_id
        for entry in unclaimed:
            entry["group"] = store.group
        return True

    _update(path, change)


def get_metric(key: str, *, notebook: str | None = None, path: str | Path | None = None) -> Any:
    """Return the recorded value of ``key``; when missing, raise an error that names the notebook to run.

    :param key: dotted name.
    :param notebook: the notebook that records this key, named in the error message.
    :param path: a metrics file; default: the store of the current build folder.
    """
    metrics = load_metrics(path)
    if key not in metrics:
        hint = f" Run {notebook} first." if notebook else ""
        raise MissingMetricError(f"metric '{key}' has not been recorded yet in {path or metrics_path()}.{hint}")
    return metrics[key]
