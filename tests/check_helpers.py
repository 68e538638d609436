"""Assertions shared by the self-check tests: a check passes on the right answer, or fails with a given hint."""

from __future__ import annotations

import functools
from typing import Any, Callable

import pytest

from labkit import check


def passes(capsys: Any, fn: Callable[..., bool], *args: Any, **kwargs: Any) -> None:
    """Assert that ``fn(*args, **kwargs)`` returns True and prints "passed"."""
    assert fn(*args, **kwargs) is True
    assert "passed" in capsys.readouterr().out


def fails(capsys: Any, fn: Callable[..., bool], *args: Any, hint: str, **kwargs: Any) -> None:
    """Assert that ``fn`` returns False printing ``hint``, and raises ``CheckFailed`` with it in strict mode."""
    assert fn(*args, **kwargs) is False
    out = capsys.readouterr().out
    assert "not yet" in out and "passed" not in out
    assert hint in out, out
    with pytest.raises(check.CheckFailed, match=hint):
        fn(*args, strict=True, **kwargs)


@functools.lru_cache(maxsize=1)
def small_lab() -> tuple[Any, Any]:
    """Return a small digits split and a classifier trained on it (seed 0), shared by the self-check tests."""
    import labkit

    data = labkit.load_dataset(n_train=300, n_test=120)
    labkit.set_seed(0)
    return data, labkit.train_model(data.x_train, data.y_train, epochs=8, progress=False)
