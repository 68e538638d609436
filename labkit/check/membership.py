"""Self-checks of notebook 07: membership inference (the attack, and its accuracy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from labkit.check._base import Verdict, _close, _rate_problem, _verdict

__all__ = ["membership_attack", "membership_accuracy"]


def membership_attack(attack: Any, target: Any, *, strict: bool | None = None) -> Verdict:
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


def _guesses(attack: Any, x: np.ndarray, y: np.ndarray, *, probabilities: bool) -> np.ndarray:
    """Return the attack's answers on ``(x, y)``: 0/1 guesses, or the membership scores."""
    from labkit.membership import membership_scores

    return membership_scores(attack, x, y, nb_classes=int(attack.estimator.nb_classes), probabilities=probabilities)


def membership_accuracy(value: Any, attack: Any, x_members: np.ndarray, y_members: np.ndarray,
                        x_non_members: np.ndarray, y_non_members: np.ndarray, *, strict: bool | None = None) -> Verdict:
    """Check a membership attack's accuracy: the mean of the share of members it calls members (1) and the share
    of non-members it calls non-members (0), so that guessing scores 0.5.

    The guesses are ``attack.infer``'s 0/1 answers; a score of exactly 0.5 is a tie that ART rounds to 0 and
    ``labkit.membership.score_attack`` counts as a member, so the accuracy of either reading passes.

    :param value: the pair's attack accuracy.
    :param attack: the trained ART membership attack.
    :param x_members: the target's training images.
    :param y_members: their labels (integers or one-hot).
    :param x_non_members: images the target never saw.
    :param y_non_members: their labels.
    :param strict: raise ``CheckFailed`` instead of returning False.
    """
    hint = _rate_problem(value, "the attack accuracy")
    if hint is None:
        found = _guesses(attack, x_members, y_members, probabilities=False) >= 0.5
        called = _guesses(attack, x_non_members, y_non_members, probabilities=False) >= 0.5
        tpr, fpr = float(np.mean(found)), float(np.mean(called))
        expected = (tpr + 1.0 - fpr) / 2.0
        # score_attack (what the notebook records) reads the scores, a score of 0.5 being "member"
        scored = ((_guesses(attack, x_members, y_members, probabilities=True) >= 0.5).mean()
                  + 1.0 - (_guesses(attack, x_non_members, y_non_members, probabilities=True) >= 0.5).mean()) / 2.0
        if not (_close(value, expected) or _close(value, scored)):
            hint = ("ask attack.infer about the members and about the non-members, and count its right answers: "
                    "1 for a member, 0 for a non-member")
            if _close(value, tpr):
                hint = ("this counts only the members the attack finds: an attack that answers \"member\" every "
                        "time would score 1 on it. Count the non-members it recognises as well")
            elif _close(value, 1.0 - fpr):
                hint = "this counts only the non-members: the members it finds count as well"
            elif _close(value, tpr - fpr):
                hint = ("this is the advantage (true-positive rate - false-positive rate), 0 for guessing; the "
                        "accuracy is a share of right answers, 0.5 for guessing")
            elif _close(value, 1.0 - expected):
                hint = "this is the share of wrong answers: 1 means member, 0 non-member"
            elif len(found) != len(called) and _close(value, np.mean(np.r_[found, ~called])):
                hint = ("there are not as many members as non-members: take the mean of the two shares, so that "
                        "guessing scores 0.5 whatever the sizes")
    return _verdict("membership attack accuracy", hint, strict)
