"""One call that seeds everything: Python, NumPy and TensorFlow, with deterministic ops."""

from __future__ import annotations

import os
import random

import numpy as np

__all__ = ["set_seed"]


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and TensorFlow and turn on TensorFlow's op determinism.

    After ``set_seed(s)`` the same code gives the same numbers: two trainings from the same seed
    produce equal predictions.

    :param seed: a non-negative integer.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    import keras
    import tensorflow as tf

    os.environ["PYTHONHASHSEED"] = str(int(seed))
    random.seed(int(seed))
    np.random.seed(int(seed))
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()
