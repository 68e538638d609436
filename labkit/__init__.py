"""labkit: the plumbing of a Jupyter lab on machine-learning security (evasion, poisoning, and defences).

Notebooks show the ART calls that students learn; labkit hides the rest: data, models, seeds, metrics,
plots and the report. The topic modules (``labkit.evasion``, ``labkit.poisoning`` ...) are imported on
first use, so ``import labkit`` stays quick.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from typing import Any

# TensorFlow's C++ log level 3 keeps only FATAL lines: level 2 let through "E0000 ... NodeDef mentions attribute
# use_unbounded_threadpool", which Keras's fit prints under op determinism (labkit.set_seed); real failures still
# raise Python errors. Lines printed before absl's InitializeLog ignore the level: labkit.quiet silences those.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from labkit._threads import limit_threads

limit_threads()  # TensorFlow's thread pools follow the kernel's CPU quota (cgroup), not the host's core count
from labkit._memory import limit_arenas, trim_after_cells

limit_arenas()  # glibc: at most one malloc arena per CPU (at least 2), not 8 per core (docs/deploy.md)
from labkit._exit import quick_exit_gc

quick_exit_gc()  # the exit's last garbage collection skips the objects alive then: ~2 s less per exit (_exit.py)

warnings.filterwarnings("ignore", message="PyTorch not found", category=UserWarning)  # ART's optional extras
from labkit.progress import text_progress_wanted, use_text_progress

if text_progress_wanted():  # a headless run (labkit run): progress bars saved as text, not as stateless widgets
    use_text_progress()

if "ipykernel" in sys.modules:  # in a notebook: TensorFlow's C++ start-up lines would land on its stderr
    from labkit.quiet import labkit_warnings_to_stdout, quiet_start

    quiet_start()  # TensorFlow's first import, whenever it comes, runs with fd 2 silenced (labkit.quiet)
    labkit_warnings_to_stdout()  # labkit's warnings are lab output, not red stderr
    trim_after_cells()  # the free heap goes back to the system after each cell, not kept by the kernel


class _NoRetracingNotice(logging.Filter):
    """Hide TensorFlow's "triggered tf.function retracing" notice: ART's KerasClassifier compiles its forward
    pass per classifier, so predicting on batches of several sizes (as the lab does) retraces harmlessly."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_NoRetracingNotice())

from labkit.data import DATASETS, Dataset, DatasetUnavailableError, load_dataset
from labkit.metrics import get_metric, load_metrics, record
from labkit.models import accuracy, build_model, copy_classifier, load_model, save_model, train_model
from labkit.paths import is_fast, out_dir
from labkit.seed import set_seed

__version__ = "0.1.0"

__all__ = [
    "DATASETS", "Dataset", "DatasetUnavailableError", "load_dataset", "get_metric", "load_metrics", "record",
    "accuracy", "build_model", "copy_classifier", "load_model", "save_model", "train_model", "is_fast", "out_dir",
    "set_seed", "versions",
]


def versions() -> dict[str, str]:
    """Return the versions of Python, TensorFlow, Keras, ART, NumPy and labkit, for the setup check."""
    import platform

    import art
    import keras
    import numpy
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "adversarial-robustness-toolbox": art.__version__, "numpy": numpy.__version__, "labkit": __version__}


def __getattr__(name: str) -> Any:
    """Import a topic module (``labkit.evasion`` ...) on first attribute access."""
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        module = importlib.import_module(f"labkit.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"labkit.{name}":
            raise AttributeError(f"module 'labkit' has no attribute {name!r}") from None
        raise
    globals()[name] = module
    return module
