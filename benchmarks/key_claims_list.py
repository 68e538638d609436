"""The claims of the answer key, the notebooks' prose and docs/teacher.md, each as a test on the per-seed numbers
that ``benchmarks/key_claims.py`` measures.

A claim names where it is made, what it says, the per-seed *effect* it rests on (a function of one seed's
numbers) and a rule the effects must meet over the seeds. ``retired`` claims are what the key used to say before
the numbers were measured; they stay here so that key_claims.json shows why they were rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

Numbers = dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """One claim: ``effect(numbers_of_one_seed)`` per seed, judged by ``rule`` against ``threshold``.

    Rules: ``all_above`` / ``all_below`` (every seed's effect beyond the threshold), ``all_between`` (inside the
    (low, high) threshold in every seed), ``range_at_least`` (max - min
    over the seeds at least the threshold), ``majority_equal`` (more than half the seeds give ``threshold``),
    ``visible`` (the same sign in every seed and a mean larger than the seed-to-seed standard deviation of the
    ``reference`` number: what one pair's single run can show).
    """

    id: str
    where: str
    text: str
    effect: Callable[[Numbers], Any]
    rule: str
    threshold: Any = 0.0
    reference: str | None = None
    retired: bool = False
    needs: tuple[str, ...] = field(default=())


def _diff(a: str, b: str) -> Callable[[Numbers], float]:
    return lambda n: n[a] - n[b]


def _key(a: str) -> Callable[[Numbers], Any]:
    return lambda n: n[a]


CLAIMS: list[Claim] = [
    Claim("seed_noise", "05 Q4 key (old), rubric Q4 (old)",
          "a difference of about one point of clean accuracy can be seed noise",
          _key("baseline.clean_accuracy"), "range_at_least", 0.01, retired=True),
    Claim("trained_models_move_between_seeds", "05 Q4 key, 05 Q1 key, rubric Q4",
          "the FGSM-trained model's accuracy under PGD moves by several (3 or more) points between seeds",
          _key("adversarial_training.pgd_accuracy"), "range_at_least", 0.03),
    Claim("fgsm_below_35", "01 parameters", "at eps 0.11 FGSM brings the baseline below 35%",
          _key("baseline.fgsm_accuracy"), "all_below", 0.35),
    Claim("pgd_stronger_baseline", "01 Step 4", "PGD finds more adversarial images than FGSM at the same eps",
          _diff("baseline.fgsm_accuracy", "baseline.pgd_accuracy"), "all_above", 0.0),
    Claim("madry_costs_clean", "02 Step 5, 05 Q1 key", "Madry's PGD training costs clean accuracy",
          _diff("baseline.clean_accuracy", "madry.clean_accuracy"), "visible", 0.0, "baseline.clean_accuracy"),
    Claim("fgsm_training_costs_clean", "02 Step 5 (old: 'robustness is bought with some clean accuracy')",
          "FGSM adversarial training costs clean accuracy, visibly in one run",
          _diff("baseline.clean_accuracy", "adversarial_training.clean_accuracy"), "visible", 0.0,
          "baseline.clean_accuracy", retired=True),
    Claim("fgsm_training_costs_little", "02 Step 5, 05 Q1 key ('none beyond seed noise')",
          "FGSM adversarial training's clean-accuracy cost is within a point in every seed",
          lambda n: abs(n["baseline.clean_accuracy"] - n["adversarial_training.clean_accuracy"]), "all_below", 0.01),
    Claim("fgsm_training_collapses", "05 Q1 key (old)", "FGSM adversarial training collapses under PGD (below 20%)",
          _key("adversarial_training.pgd_accuracy"), "all_below", 0.20, retired=True),
    Claim("fgsm_training_drops_under_pgd", "05 Q1 key, 02 Q2",
          "the FGSM-trained model loses accuracy from FGSM to PGD",
          _diff("adversarial_training.fgsm_accuracy", "adversarial_training.pgd_accuracy"), "visible", 0.0,
          "adversarial_training.pgd_accuracy"),
    Claim("fgsm_training_drops_more", "05 Q1 key",
          "the FGSM-trained model drops more from FGSM to PGD than Madry's model",
          lambda n: (n["adversarial_training.fgsm_accuracy"] - n["adversarial_training.pgd_accuracy"])
          - (n["madry.fgsm_accuracy"] - n["madry.pgd_accuracy"]), "visible", 0.0,
          "adversarial_training.pgd_accuracy"),
    Claim("fgsm_flatters_fgsm_training", "05 Q1 key",
          "under FGSM the FGSM-trained model looks at least as robust as Madry's, under PGD it is behind",
          lambda n: min(n["adversarial_training.fgsm_accuracy"] - n["madry.fgsm_accuracy"],
                        n["madry.pgd_accuracy"] - n["adversarial_training.pgd_accuracy"]), "all_above", 0.0),
    Claim("fgsm_training_drop_about_18", "05 Q1 key ('11-20 points against 8-10')",
          "FGSM-trained model: 10-23 points lost from FGSM to PGD ('11-20 points')",
          _diff("adversarial_training.fgsm_accuracy", "adversarial_training.pgd_accuracy"), "all_between",
          (0.10, 0.23)),
    Claim("madry_drop_about_8", "05 Q1 key ('15-18 points against about 8')",
          "Madry's model: 4-12 points lost from FGSM to PGD",
          _diff("madry.fgsm_accuracy", "madry.pgd_accuracy"), "all_between", (0.04, 0.12)),
    Claim("madry_more_robust_under_pgd", "05 Q1 key ('2 to 7 points more'; retired while it did not hold)",
          "Madry's model is more accurate under PGD than the FGSM-trained one, visibly in one run",
          _diff("madry.pgd_accuracy", "adversarial_training.pgd_accuracy"), "visible", 0.0, "madry.pgd_accuracy"),
    Claim("madry_at_least_as_robust_under_pgd", "05 Q1 key ('2 to 7 points more')",
          "Madry's model is at least as accurate under PGD as the FGSM-trained one (within half a point)",
          _diff("madry.pgd_accuracy", "adversarial_training.pgd_accuracy"), "all_above", -0.005),
    Claim("madry_costs_more_clean", "05 Q1 key", "Madry's model costs more clean accuracy than the FGSM-trained one",
          _diff("adversarial_training.clean_accuracy", "madry.clean_accuracy"), "visible", 0.0,
          "madry.clean_accuracy"),
    Claim("robust_fails_at_2eps", "02 Step 5, 02 Q3",
          "robustness holds only up to about the trained eps: at twice eps Madry's PGD accuracy is below 20%",
          _key("madry.pgd_accuracy_at_2eps"), "all_below", 0.20),
    Claim("nonadaptive_overstates_squeezing", "05 Q2 key (old), 02 Step 7 (old)",
          "a non-adaptive PGD evaluation overstates feature squeezing, visibly in one run",
          _diff("reactive.nonadaptive_pgd_accuracy", "reactive.pgd_accuracy"), "visible", 0.0,
          "reactive.pgd_accuracy", retired=True),
    Claim("squeezing_gap_small", "05 Q2 key ('0 to 2 points'), 02 Step 7",
          "the non-adaptive and adaptive PGD numbers of feature squeezing differ by at most about 2 points (< 2.5)",
          lambda n: abs(n["reactive.nonadaptive_pgd_accuracy"] - n["reactive.pgd_accuracy"]), "all_below", 0.025),
    Claim("nonadaptive_overstates_squeezing_fgsm", "02 Step 7 (old)",
          "a non-adaptive FGSM evaluation overstates feature squeezing, visibly in one run",
          _diff("reactive.nonadaptive_fgsm_accuracy", "reactive.fgsm_accuracy"), "visible", 0.0,
          "reactive.fgsm_accuracy", retired=True),
    Claim("nonadaptive_overstates_trained", "02 Step 7 ('the same holds for the trained models, even more so')",
          "transfer (non-adaptive) PGD from the baseline overstates Madry's model",
          _diff("madry.nonadaptive_pgd_accuracy", "madry.pgd_accuracy"), "visible", 0.0, "madry.pgd_accuracy"),
    Claim("squeezing_beats_fgsm_training_adaptive",
          "02 Step 7 (old: 'compare squeezing's worst case with the trained models')",
          "adaptive PGD: feature squeezing keeps more accuracy than FGSM adversarial training",
          _diff("reactive.pgd_accuracy", "adversarial_training.pgd_accuracy"), "visible", 0.0,
          "reactive.pgd_accuracy", retired=True),
    Claim("worst_case_lower_squeezing", "02 Step 7 (optional part)",
          "the worst case over FGSM, PGD and PGD with restarts is below squeezing's single adaptive PGD number",
          _diff("reactive.pgd_accuracy", "reactive.worst_case_accuracy"), "visible", 0.0,
          "reactive.worst_case_accuracy"),
    Claim("backdoor_keeps_clean", "03 Q1",
          "the backdoored model's clean accuracy stays within 2 points of the baseline's",
          lambda n: abs(n["baseline.clean_accuracy"] - n["backdoor.clean_accuracy"]), "all_below", 0.02),
    Claim("backdoor_works", "03 Step 5, teacher's table", "10% poison gives an ASR above 0.9",
          _key("backdoor.attack_success_rate"), "all_above", 0.9),
    Claim("trigger_alone_harmless", "03 Step 5", "the trigger alone barely moves the baseline (ASR below 0.1)",
          _key("baseline.trigger_attack_success_rate"), "all_below", 0.1),
    Claim("sweep_reaches_09", "03 Q2", "some fraction of the sweep at or below 5% already gives an ASR above 0.9",
          _key("backdoor.sweep.0.05.attack_success_rate"), "all_above", 0.9),
    Claim("nc_flags_target", "04 Step 3", "Neural Cleanse flags the target class",
          _key("neural_cleanse.flags_target"), "all_above", 0.5),
    Claim("nc_quiet_on_clean", "04 Step 6, 04 Q3", "Neural Cleanse flags nothing on the clean baseline",
          _key("neural_cleanse.clean_model_false_alarm"), "all_below", 0.5),
    Claim("unlearning_removes", "04, 05 Q3 key", "unlearning brings the ASR below 0.1",
          _key("neural_cleanse.unlearning.attack_success_rate"), "all_below", 0.1),
    Claim("unlearning_keeps_clean", "05 Q3 key",
          "unlearning keeps clean accuracy within 2 points of the backdoored model",
          _diff("backdoor.clean_accuracy", "neural_cleanse.unlearning.clean_accuracy"), "all_below", 0.02),
    Claim("pruning_costs_clean", "05 Q3 key", "pruning costs more clean accuracy than unlearning",
          _diff("neural_cleanse.unlearning.clean_accuracy", "neural_cleanse.pruning.clean_accuracy"), "visible", 0.0,
          "neural_cleanse.pruning.clean_accuracy"),
    Claim("filtering_turns_away", "05 Q3 key", "filtering abstains on more than 5% of clean images",
          _key("neural_cleanse.filtering.clean_abstain_rate"), "all_above", 0.05),
    Claim("control_barely_touches", "04 Q4 (old: 'barely touches the backdoor')",
          "fine-tuning without the reversed trigger leaves the ASR above 0.8",
          _key("neural_cleanse.control.attack_success_rate"), "all_above", 0.8, retired=True),
    Claim("control_leaves_most", "04 Q4 ('leaves most of the backdoor in place')",
          "fine-tuning without the reversed trigger leaves the ASR above 0.5",
          _key("neural_cleanse.control.attack_success_rate"), "all_above", 0.5),
    Claim("rule_picks_unlearning", "05 Q3 key ('usually unlearning')",
          "the 04 rule (at most 5 points of clean accuracy) picks unlearning in most seeds",
          _key("neural_cleanse.chosen"), "majority_equal", "unlearning"),
]


def _judge(claim: Claim, effects: list[Any], reference: list[float]) -> tuple[bool, str]:
    """Apply ``claim.rule`` to the per-seed effects; return (holds, a one-line account of the numbers)."""
    if claim.rule == "majority_equal":
        hits = sum(e == claim.threshold for e in effects)
        return hits > len(effects) / 2, f"{hits} of {len(effects)} seeds: {effects}"
    arr = np.asarray(effects, dtype=float)
    text = (f"mean {arr.mean():+.3f}, sd {arr.std(ddof=1):.3f}, min {arr.min():+.3f}, max {arr.max():+.3f} over "
            f"{len(arr)} seeds (per seed: {', '.join(f'{e:+.3f}' for e in arr)})" if len(arr) > 1
            else f"one seed: {arr[0]:+.3f}")
    if claim.rule == "all_above":
        return bool((arr > claim.threshold).all()), text
    if claim.rule == "all_below":
        return bool((arr < claim.threshold).all()), text
    if claim.rule == "all_between":
        low, high = claim.threshold
        return bool(((arr > low) & (arr < high)).all()), text
    if claim.rule == "range_at_least":
        return bool(arr.max() - arr.min() >= claim.threshold), text + f", range {arr.max() - arr.min():.3f}"
    if claim.rule == "visible":
        spread = float(np.std(reference, ddof=1)) if len(reference) > 1 else float("nan")
        same_sign = bool((arr > 0).all() or (arr < 0).all())
        return same_sign and abs(arr.mean()) > spread, text + f"; seed-to-seed sd of {claim.reference}: {spread:.3f}"
    raise ValueError(f"unknown rule {claim.rule!r}")


def summarise_claims(per_seed: dict[str, dict[int, Any]], claims: list[Claim]) -> list[dict[str, Any]]:
    """Judge every claim on the seeds that measured its numbers; a claim without numbers is 'not measured'."""
    seeds = sorted({s for values in per_seed.values() for s in values})
    out = []
    for claim in claims:
        effects, reference = [], []
        for seed in seeds:
            numbers = {k: v[seed] for k, v in per_seed.items() if seed in v}
            try:
                effects.append(claim.effect(numbers))
            except KeyError:
                continue
            if claim.reference:
                reference.append(numbers[claim.reference])
        row = {"id": claim.id, "where": claim.where, "claim": claim.text, "rule": claim.rule,
               "threshold": claim.threshold, "retired": claim.retired}
        if len(effects) == 0:
            row |= {"verdict": "not measured", "measured": "no seed has its numbers yet"}
        elif len(effects) == 1 and claim.rule in {"visible", "range_at_least"}:
            row |= {"verdict": "needs two or more seeds", "measured": f"one seed: {float(effects[0]):+.3f}",
                    "effects": [round(float(effects[0]), 4)]}
        else:
            holds, measured = _judge(claim, effects, reference)
            row |= {"verdict": "holds" if holds else "does not hold", "measured": measured,
                    "effects": [e if isinstance(e, str) or e is None else round(float(e), 4) for e in effects]}
        out.append(row)
    return out
