"""What every self-check shares: the verdict, strict mode, and the tests of a number, a rate and an eps."""

from __future__ import annotations

import numbers
import os
from typing import Any, Callable

import numpy as np

__all__ = ["CheckFailed", "TOLERANCE", "STRICT_ENV"]

TOLERANCE = 0.005
"""How far a rate may be from the independent computation (half a percentage point)."""
STRICT_ENV = "LABKIT_STRICT_CHECKS"


class CheckFailed(AssertionError):
    """A self-check failed (raised only in strict mode); the message is the hint."""


def _verdict(name: str, hint: str | None, strict: bool | None, echo: Callable[[str], Any] = print) -> bool:
    """Print the verdict of check ``name`` (``hint`` None means passed); return it, or raise in strict mode."""
    from labkit.metrics import record_check

    record_check(name, hint is None)   # the teacher's gradebook shows it (pass / hint / not run) from the report
    if hint is None:
        echo(f"✅ {name}: passed")
        return True
    echo(f"❌ {name}: not yet. Hint: {hint}")
    if strict or (strict is None and os.environ.get(STRICT_ENV) == "1"):
        raise CheckFailed(f"{name}: {hint}")
    return False


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
