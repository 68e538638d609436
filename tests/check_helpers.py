"""Assertions shared by the self-check tests: a check passes on the right answer, or fails with a given hint."""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

import pytest

from labkit import check


def passes(capsys: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Assert that ``fn(*args, **kwargs)`` returns a passed verdict and prints its "[PASSED]" line."""
    verdict = fn(*args, **kwargs)
    assert isinstance(verdict, check.Verdict) and verdict.passed and bool(verdict) is True
    out = capsys.readouterr().out
    assert out.startswith(check.PASSED), out


def fails(capsys: Any, fn: Callable[..., Any], *args: Any, hint: str, **kwargs: Any) -> None:
    """Assert that ``fn`` returns False printing ``hint``, and raises ``CheckFailed`` with it in strict mode."""
    verdict = fn(*args, **kwargs)
    assert isinstance(verdict, check.Verdict) and not verdict.passed and bool(verdict) is False
    out = capsys.readouterr().out
    assert out.startswith(check.NOT_YET) and check.PASSED not in out, out
    assert hint in out, out
    with pytest.raises(check.CheckFailed, match=re.escape(hint)):
        fn(*args, strict=True, **kwargs)
    capsys.readouterr()   # the strict call's verdict line is not the next call's


@functools.lru_cache(maxsize=1)
def small_lab() -> tuple[Any, Any]:
    """Return a small digits split and a classifier trained on it (seed 0), shared by the self-check tests."""
    import labkit

    data = labkit.load_dataset(n_train=300, n_test=120)
    labkit.set_seed(0)
    return data, labkit.train_model(data.x_train, data.y_train, epochs=8, progress=False)
