"""The child process that loads and scores one submitted model for ``labkit tournament``.

The teacher's process never loads a submitted model: each one is loaded in a child of a fork server that has
imported TensorFlow, Keras and ART once (so a child starts in under a second instead of ~10 s), under an
address-space limit (``resource.RLIMIT_AS``) and a timeout kept by the parent. Only files that passed the static
intake (``labkit.classroom._model_intake``) reach here, and they are loaded with ``safe_mode=True`` and
``compile=False``. The child sends its result back as JSON text (the parent never unpickles what a child that
held a hostile model sends). A model that exhausts the memory, crashes its child or runs past the timeout
becomes a refused row.
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402  (imported once by the fork server: its children start with it)
import tensorflow  # noqa: E402,F401
from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent, SquareAttack  # noqa: E402,F401
from art.estimators.classification import KerasClassifier  # noqa: E402,F401

import labkit.models  # noqa: E402,F401
from labkit._tournament_score import Suite, blue_scores, success_rate  # noqa: E402
from labkit.tournament import _check_loaded  # noqa: E402

__all__ = ["evaluate", "child_main"]


def evaluate(task: dict[str, Any]) -> dict[str, Any]:
    """Load one model and score it: blue scores on the held-back images, success of every valid attack file.

    :param task: ``path`` (the .keras file), ``x_hb``/``y_hb`` (held-back images), ``x``/``y`` (challenge),
        ``eps``, ``seed``, ``suite`` (``Suite`` fields), ``attacks`` ({group: x_adv}), ``memory`` (bytes).
    """
    memory = int(task["memory"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        model = keras.models.load_model(task["path"], safe_mode=True, compile=False)
        classifier = _check_loaded(model, task["x"])
        blue = blue_scores(classifier, task["x_hb"], task["y_hb"], task["eps"], suite=Suite(**task["suite"]),
                           seed=task["seed"])
        red = {group: success_rate(classifier, task["x"], task["y"], x_adv)
               for group, x_adv in task["attacks"].items()}
    except MemoryError:
        return {"ok": False, "reason": f"refused: loading or scoring it needed more than {memory / 2**30:.1f} GiB"}
    except Exception as err:  # noqa: BLE001 - whatever a model file makes Keras raise is that model's row
        detail = " ".join(str(err).split())[:200]
        if "ResourceExhausted" in type(err).__name__ or "Unable to allocate" in detail:
            detail = f"needed more than the memory limit of {memory / 2**30:.1f} GiB"
        return {"ok": False, "reason": f"refused: it could not be loaded or run ({type(err).__name__}: {detail})"}
    return {"ok": True, "blue": blue, "red": {g: [None if r != r else r, n] for g, (r, n) in red.items()},
            "cpu_seconds": time.process_time()}


def child_main(conn: Any, task: dict[str, Any]) -> None:
    """The child's entry point: evaluate, then send the result as JSON text over ``conn``."""
    result = evaluate(task)
    result["cpu_seconds"] = time.process_time()
    conn.send_bytes(json.dumps(result).encode())
    conn.close()
