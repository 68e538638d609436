"""Quiet notebooks: TensorFlow's start-up noise kept off the notebooks' stderr, and a count of what is left.

TensorFlow's C++ runtime writes its start-up lines straight to file descriptor 2 (absl's "WARNING: All log
messages before absl::InitializeLog() ...", the cudart stub, "E0000 ... failed call to cuInit", oneDNN, and at
the first ``tf.data`` pipeline "NodeDef mentions attribute use_unbounded_threadpool"). ipykernel captures fd 2,
so every executed notebook kept them on stderr, and ``TF_CPP_MIN_LOG_LEVEL`` does not stop them (absl logs
before reading it). ``quiet_start`` (called by ``import labkit`` in a kernel) installs an import hook: whenever
TensorFlow is first imported, fd 2 points at /dev/null while it loads, its devices start and a first parallel
``tf.data`` map runs, then fd 2 is given back: what the lab prints later (a real error, a traceback) still reaches
the notebook. A notebook that never imports TensorFlow (05) does not load it.

In a notebook, labkit's own warnings (``logging.getLogger("labkit...")``, e.g. "filtering did not remove the
backdoor") are part of the lab's output: ``labkit_warnings_to_stdout`` prints them as plain output instead of
Python's last-resort handler on stderr, where they looked like errors.

``stderr_lines(folder)`` counts the stderr lines saved in executed notebooks;
``python -m labkit.quiet build/notebooks`` prints them and fails when there are any (run it after ``make lab``).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterator

__all__ = ["silenced_fd2", "quiet_start", "labkit_warnings_to_stdout", "stderr_lines", "main"]


@contextlib.contextmanager
def silenced_fd2() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null inside the block, and restore it afterwards (even on error)."""
    for stream in (sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()  # what Python already wrote goes out before fd 2 changes
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _first_use() -> None:
    """Start TensorFlow's devices and run one parallel ``tf.data`` map: each prints its one-off lines on first use."""
    import tensorflow as tf

    tf.constant(0.0)  # the eager context starts the devices: cudart stub, cuInit
    pipeline = tf.data.Dataset.range(2).map(lambda x: x + 1, num_parallel_calls=tf.data.AUTOTUNE)
    for _ in pipeline:  # what Keras's fit builds first: use_unbounded_threadpool
        pass


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with fd 2 silenced and followed by ``_first_use`` (still silenced)."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        with silenced_fd2():
            self._loader.exec_module(module)
            _first_use()

    def __getattr__(self, name: str) -> Any:  # resource readers and the like: the real loader's
        return getattr(self._loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` the usual way the first time it is imported, and hands it to ``_QuietLoader``."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # once: the real finders take it from here
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_start() -> None:
    """Keep TensorFlow's start-up lines off fd 2, whenever TensorFlow is first imported.

    TensorFlow is not imported here: a notebook that never uses it (05, the report) does not pay its start-up time
    and memory. Its first import (by the notebook, Keras, ART or labkit) runs with fd 2 silenced, followed by the
    first device start and ``tf.data`` map, whose one-off lines then never come back. If TensorFlow is already
    imported, the first use runs silenced now. A failing import still raises its Python error.
    """
    if "tensorflow" in sys.modules:
        with silenced_fd2():
            _first_use()
    elif not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


class _StdoutHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stdout`` is when a record arrives (ipykernel replaces it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stdout)
        super().emit(record)


def labkit_warnings_to_stdout() -> None:
    """Print labkit's warnings (logger ``labkit`` and its children) on stdout, as plain lines; once per process."""
    logger = logging.getLogger("labkit")
    if any(isinstance(h, _StdoutHandler) for h in logger.handlers):
        return
    handler = _StdoutHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.WARNING)
    logger.addHandler(handler)
    logger.propagate = False  # not again through Python's last-resort handler, on stderr


def stderr_lines(folder: str | Path) -> dict[str, list[str]]:
    """Return ``{notebook name: its stderr lines}`` for every executed notebook in ``folder`` (or one file).

    Notebooks without stderr output map to an empty list. Notebooks are read as JSON, never run.

    :param folder: a folder of executed notebooks (e.g. ``build/notebooks``) or one ``.ipynb`` file.
    """
    folder = Path(folder)
    paths = [folder] if folder.is_file() else sorted(folder.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no executed notebooks in {folder}: run `labkit run --out DIR` first and pass "
                                "DIR/notebooks")
    found = {}
    for path in paths:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        lines = []
        for cell in cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    text = output.get("text", "")
                    lines += ("".join(text) if isinstance(text, list) else text).splitlines()
        found[path.name] = lines
    return found


def main(argv: list[str] | None = None) -> int:
    """Print the stderr lines of every executed notebook in a folder; return 1 when there are any."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path("build/notebooks")
    try:
        found = stderr_lines(folder)
    except FileNotFoundError as err:
        print(f"labkit.quiet: {err}", file=sys.stderr)
        return 2
    total = 0
    for name, lines in found.items():
        total += len(lines)
        print(f"{name}: {len(lines)} stderr line(s)")
        for line in lines:
            print(f"    {line}")
    print(f"{total} stderr line(s) in {len(found)} notebook(s) of {folder}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
