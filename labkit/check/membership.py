"""Self-checks of notebook 07: membership inference."""

from __future__ import annotations

from typing import Any

from labkit.check._base import _verdict

__all__ = ["membership_attack"]


def membership_attack(attack: Any, target: Any, *, strict: bool | None = None) -> bool:
    """Check a black-box membership attack: ART's class, aimed at the target, on its predictions, and trained.

    :param attack: the pair's ``MembershipInferenceBlackBox``, after ``fit``.
    :param target: the model under attack.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    hint = None
    if type(attack).__name__ != "MembershipInferenceBlackBox":
        hint = f"use ART's MembershipInferenceBlackBox (got {type(attack).__name__})"
    elif getattr(attack, "estimator", None) is not target:
        hint = "the attack must be built on the model under attack (the target), not on a shadow model"
    elif getattr(attack, "input_type", None) != "prediction":
        hint = "the attacker sees the target's answers: use input_type='prediction'"
    elif getattr(attack, "attack_model_type", None) == "nn":
        hint = "attack_model_type='nn' needs PyTorch: use 'gb' or 'rf' (the parameter ATTACK_MODEL)"
    else:
        try:
            check_is_fitted(attack.attack_model)
        except (NotFittedError, TypeError, AttributeError):
            hint = "the attack model is not trained yet: call attack.fit(...) with the shadow models' answers"
    return _verdict("membership attack", hint, strict)
