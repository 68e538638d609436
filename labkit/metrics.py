"""The metrics store: one JSON file, ``<build>/metrics.json``, that every notebook records its numbers into.

Keys are dotted names from the lab (``baseline.clean_accuracy``, ``backdoor.attack_success_rate``);
values are numbers, strings, booleans or lists of them. The report notebook and the teacher's
gradebook read this file, so a number exists in exactly one place.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from labkit.paths import out_dir

__all__ = ["metrics_path", "record", "load_metrics", "get_metric", "MissingMetricError"]

_KEY = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")


class MissingMetricError(KeyError):
    """A number the caller needs has not been recorded yet."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


def metrics_path() -> Path:
    """Return the path of the metrics store, ``<build>/metrics.json``."""
    return out_dir() / "metrics.json"


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


def load_metrics(path: str | Path | None = None) -> dict[str, Any]:
    """Return every recorded metric as a flat ``{dotted key: value}`` dict (empty when none yet).

    :param path: a metrics file; default: the store of the current build folder.
    """
    path = Path(path) if path is not None else metrics_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it and re-run the notebooks") from err


def record(key: str, value: Any) -> Any:
    """Record ``value`` under the dotted ``key`` in the metrics store and return it.

    The file is rewritten atomically, so an interrupted notebook never leaves a half-written store.

    :param key: dotted name, e.g. ``"baseline.clean_accuracy"``.
    :param value: a number, string, boolean, or a list / array / dict of them.
    """
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"metric key must be dotted words like 'baseline.clean_accuracy', got {key!r}")
    stored = _to_json(value)
    path = metrics_path()
    metrics = load_metrics(path)
    metrics[key] = stored
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".metrics-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(dict(sorted(metrics.items())), handle, indent=2)
    os.replace(tmp, path)
    return value


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
