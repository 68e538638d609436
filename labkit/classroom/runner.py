"""Execute the lab's notebooks headlessly, in order, and keep what they produce.

``run_notebooks`` is what ``labkit run`` calls: every notebook is executed with nbclient in a fresh
kernel, its executed copy goes to ``<out>/notebooks/``, its wall time to ``<out>/timings.json``, and the
numbers it records to ``<out>/metrics.json`` (the metrics store). The report notebook (``NN_report``)
runs last, so that it reads every other notebook's numbers, and its executed copy is then exported
as the teacher will see it (``labkit export``) into ``<out>/report/``. The student edition of every lab
notebook (``labkit student``) goes to ``<out>/student/``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from labkit.classroom._runguard import KernelStartFailed, RunLocked, execute_notebook, run_lock
from labkit.paths import LabNotFoundError, is_fast, notebooks_dir

__all__ = ["lab_notebooks", "run_notebooks", "NotebookFailed", "RunLocked", "KernelStartFailed", "KERNEL_NAME"]

KERNEL_NAME = "python3"
"""The Jupyter kernel every notebook runs in."""
STARTUP_TIMEOUT = 300
"""Seconds a kernel may take to answer before it counts as one that cannot start (nbclient's default: 60 s). On
a small machine under heavy load a healthy kernel can take longer, and a slow start is not a broken kernel."""


KERNEL_FIRST_LINE = "--IPKernelApp.exec_lines=import labkit"
"""Each kernel imports labkit before the notebook's first cell, so that with ``LABKIT_TEXT_PROGRESS=1`` every
``tqdm.auto`` bar (ART's included, whatever the notebook imports first) is labkit's text bar."""


class NotebookFailed(RuntimeError):
    """A notebook raised an error; its partly executed copy has been saved."""


def lab_notebooks(folder: Path | None = None) -> list[Path]:
    """Return the lab's numbered notebooks (``NN_name.ipynb``) in order.

    :param folder: where to look; default, the lab's notebooks (``labkit.paths.notebooks_dir``), which must
        hold at least one (else ``LabNotFoundError``, never an empty list).
    """
    if folder is not None:
        return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())
    found = lab_notebooks(notebooks_dir())
    if not found:
        raise LabNotFoundError(f"no lab notebooks (NN_name.ipynb) in {notebooks_dir()}: restore them from git "
                               "(git checkout -- notebooks) or reinstall labkit-mlsec")
    return found


def _resolve(names: Sequence[str | Path]) -> list[Path]:
    chosen = []
    for name in names:
        path = Path(name)
        if path.is_file():
            chosen.append(path.resolve())
            continue
        available = lab_notebooks()
        matches = [p for p in available if p.name == path.name or p.stem == path.stem or p.name.startswith(f"{name}_")]
        if len(matches) != 1:
            listing = ", ".join(p.name for p in available) or "none found"
            raise FileNotFoundError(f"no notebook {str(name)!r}; the lab has: {listing}")
        chosen.append(matches[0])
    return chosen


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _report_last(paths: list[Path]) -> list[Path]:
    """Return ``paths`` with the report notebook(s) moved to the end: the report reads all the others."""
    return [p for p in paths if not p.stem.endswith("_report")] + [p for p in paths if p.stem.endswith("_report")]


def _update_json(path: Path, values: dict) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(values)
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


def run_notebooks(names: Sequence[str | Path] = (), *, out: str | Path = "build", fast: bool | None = None,
                  cell_timeout: int = 1800, progress: bool = True) -> dict[str, float]:
    """Execute notebooks in order and return ``{notebook name: seconds}``.

    :param names: notebooks to run (paths, file names, stems or number prefixes like ``"01"``); default: all.
    :param out: the build folder for executed copies, metrics, timings, models and the report
        (``<out>/report/``: the executed report notebook exported as by ``labkit export``; ``<out>/student/``:
        the student edition of every lab notebook).
    :param fast: the smoke setting (``LABKIT_FAST=1``): fewer epochs and samples, the same code path; None (the
        default) keeps what ``LABKIT_FAST`` in the environment says.
    :param cell_timeout: seconds one cell may run before it is stopped.
    :param progress: draw progress bars over notebooks and cells.
    """
    paths = _report_last(_resolve(names) if names else lab_notebooks())
    if not paths:
        raise FileNotFoundError(f"no notebooks to run in {notebooks_dir()}")
    out = Path(out).resolve()
    with run_lock(out, paths):   # a second run on this folder stops here, naming this one
        return _run_paths(paths, out, is_fast() if fast is None else bool(fast), cell_timeout, progress)


def _run_paths(paths: list[Path], out: Path, fast: bool, cell_timeout: int, progress: bool) -> dict[str, float]:
    """Execute ``paths`` in order into ``out``, whose run lock is held; see ``run_notebooks``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from tqdm.auto import tqdm

    executed_dir = out / "notebooks"
    executed_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    from labkit.check import STRICT_ENV
    from labkit.classroom.report import DEMO_GROUP, GROUP_ENV
    from labkit.progress import TEXT_PROGRESS_ENV
    from labkit.provenance import NOTEBOOK_ENV, RUN_ID_ENV

    # nobody can type names in a headless run: the report's group cell falls back to a (marked) demo group
    # the notebooks are the solution key: a self-check failing on them is an error (LABKIT_STRICT_CHECKS=0 relaxes)
    env = {"LABKIT_OUT": str(out), "LABKIT_FAST": "1" if fast else "0",
           GROUP_ENV: os.environ.get(GROUP_ENV) or DEMO_GROUP, STRICT_ENV: os.environ.get(STRICT_ENV) or "1",
           RUN_ID_ENV: uuid.uuid4().hex[:12], NOTEBOOK_ENV: "",   # provenance: one run id, each notebook's path
           TEXT_PROGRESS_ENV: "1"}   # progress bars saved as their final line of text, not as stateless widgets
    with _environment(**env), tqdm(paths, desc="notebooks", unit="nb", disable=not progress) as bar:
        for path in bar:
            bar.set_postfix_str(path.name)
            os.environ[NOTEBOOK_ENV] = str(path)
            nb = nbformat.read(path, as_version=4)
            n_code = sum(cell.cell_type == "code" for cell in nb.cells)
            cells = tqdm(total=n_code, desc=path.stem, unit="cell", leave=False, disable=not progress)
            client = NotebookClient(nb, timeout=cell_timeout, kernel_name=KERNEL_NAME, startup_timeout=STARTUP_TIMEOUT,
                                    resources={"metadata": {"path": str(path.parent)}},
                                    extra_arguments=[KERNEL_FIRST_LINE],   # text bars before ART imports tqdm
                                    on_cell_executed=lambda **_: cells.update(1))
            start = time.perf_counter()
            try:
                execute_notebook(client)   # a kernel that cannot start: KernelStartFailed, one line
            except CellExecutionError as err:
                nbformat.write(nb, executed_dir / path.name)
                raise NotebookFailed(
                    f"{path.name} failed; its partly executed copy is in {executed_dir / path.name}.\n{err}"
                ) from None
            finally:
                cells.close()
                timings[path.name] = round(time.perf_counter() - start, 2)
                _update_json(out / "timings.json", {path.name: timings[path.name]})
            nbformat.write(nb, executed_dir / path.name)
    from labkit.classroom.student import write_student_edition

    write_student_edition(lab_notebooks(), out / "student")   # what the pairs get, beside the solutions just run
    for path in paths:
        if path.stem.endswith("_report"):
            from labkit.classroom.export import export_submissions

            export_submissions(executed_dir / path.name, out / "report", echo=print if progress else None)
    return timings
