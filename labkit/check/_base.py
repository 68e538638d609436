"""What every self-check shares: the verdict, strict mode, and the tests of a number, a rate and an eps."""

from __future__ import annotations

import numbers
import os
import re
import sys
from typing import Any, Callable

import numpy as np

__all__ = ["CheckFailed", "TOLERANCE", "STRICT_ENV", "PASSED", "NOT_YET", "Verdict", "ExerciseNotDone", "todo"]

TOLERANCE = 0.005
"""How far a rate may be from the independent computation (half a percentage point)."""
STRICT_ENV = "LABKIT_STRICT_CHECKS"


PASSED = "[PASSED]"
"""The mark of a check's verdict line when it passed (plain text: it renders without an emoji font)."""
NOT_YET = "[NOT YET]"
"""The mark of a check's verdict line when it did not pass; the hint follows."""


class CheckFailed(AssertionError):
    """A self-check failed (raised only in strict mode); the message is the hint.

    IPython shows only the message (``_render_traceback_``): the verdict line above it already said what is wrong,
    and a traceback into labkit's own code would read like a crash of the check."""

    def _render_traceback_(self) -> list[str]:
        return [f"CheckFailed: {self}"]


class Verdict:
    """What a self-check returns: true when it passed. The check has printed its verdict line already, so a
    notebook shows nothing more for it (no ``Out: True`` under the check cell)."""

    __slots__ = ("name", "hint")

    def __init__(self, name: str, hint: str | None) -> None:
        """:param name: the check's name.
        :param hint: what to look at, or None when the check passed.
        """
        self.name, self.hint = name, hint

    @property
    def passed(self) -> bool:
        """Whether the check passed."""
        return self.hint is None

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"Verdict({self.name!r}, passed={self.passed})"

    def _ipython_display_(self) -> None:
        """Display nothing: IPython would otherwise print an ``Out`` line after the printed verdict."""


class ExerciseNotDone(NotImplementedError):
    """An exercise cell of the student edition was run before the pair filled it in; the message says what to do.

    IPython shows only the message (``_render_traceback_``), not a traceback that reads like a crash."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def todo(instruction: str) -> None:
    """Stop an exercise cell that is not filled in yet, showing what to do instead of a traceback.

    The student edition puts ``labkit.check.todo("Exercise 1: ...")`` where the pair's code goes.

    :param instruction: what the pair should write there, e.g. "Exercise 1: compute `predictions` here, then run
        the check below".
    """
    raise ExerciseNotDone(instruction)


def _verdict(name: str, hint: str | None, strict: bool | None, echo: Callable[[str], Any] = print) -> Verdict:
    """Print the verdict line of check ``name`` (``hint`` None means passed); return it, or raise in strict mode."""
    from labkit.metrics import record_check

    # the teacher's gradebook shows it (pass / hint / not run) under the check function's own name, the name it
    # reads from the notebooks' `labkit.check.<name>(...)` calls: every check calls _verdict directly
    caller = sys._getframe(1).f_code.co_name
    record_check(caller if caller.isidentifier() else re.sub(r"\W+", "_", name.lower()).strip("_"), hint is None)
    if hint is None:
        echo(f"{PASSED} {name}")
        return Verdict(name, None)
    echo(f"{NOT_YET} {name}. Hint: {hint}")
    if strict or (strict is None and os.environ.get(STRICT_ENV) == "1"):
        raise CheckFailed(f"{name}: {hint}")
    return Verdict(name, hint)


def _is_number(value: Any) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, bool) \
        and bool(np.isfinite(float(value)))


def _rate_problem(value: Any, what: str) -> str | None:
    """Return a hint when ``value`` is not a rate in [0, 1], else None."""
    if not _is_number(value):
        return f"{what} should be one number (a Python or NumPy float), got {type(value).__name__}"
    if 1.0 < float(value) <= 100.0:
        return f"{what} is a share in [0, 1], not a percentage"
    if not 0.0 <= float(value) <= 1.0:
        return f"{what} is a share in [0, 1]; {float(value)!r} cannot be one"
    return None


def _close(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= TOLERANCE


def _eps_problem(attack_eps: Any, eps: float) -> str | None:
    """Return a hint when an attack's eps is not the lab's ``eps`` (in [0, 1] pixel units), else None."""
    if not _is_number(attack_eps):
        return "the attack's eps should be one number, the lab's EPS"
    if float(attack_eps) > 1.0:
        return ("the images are in [0, 1], so eps is too: a budget written for 0-255 pixels must be divided "
                "by 255")
    if not np.isclose(float(attack_eps), float(eps)):
        return "build the attack with the lab's budget, the parameter EPS"
    return None
