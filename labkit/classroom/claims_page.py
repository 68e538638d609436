"""The teacher's page section that quotes ``build/key_claims.json``: the numbers behind the answer key over seeds.

``benchmarks/key_claims.py`` measures, over seeds 0-4 in the full setting, every number a claim of the key, the
notebooks' prose or the teacher's page rests on, and judges each claim; ``key_claims_section`` turns that file
into Markdown for ``docs/teacher.md`` (``labkit.classroom.teacher`` includes it when the file exists).
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["KEY_NUMBERS", "key_claims_section"]

KEY_NUMBERS: tuple[tuple[str, str], ...] = (
    ("baseline.clean_accuracy", "baseline: clean accuracy"),
    ("baseline.fgsm_accuracy", "baseline: under FGSM"),
    ("baseline.pgd_accuracy", "baseline: under PGD"),
    ("adversarial_training.clean_accuracy", "FGSM adversarial training: clean"),
    ("adversarial_training.fgsm_accuracy", "FGSM adversarial training: under FGSM"),
    ("adversarial_training.pgd_accuracy", "FGSM adversarial training: under PGD"),
    ("madry.clean_accuracy", "Madry PGD training: clean"),
    ("madry.fgsm_accuracy", "Madry PGD training: under FGSM"),
    ("madry.pgd_accuracy", "Madry PGD training: under PGD"),
    ("reactive.clean_accuracy", "feature squeezing: clean"),
    ("reactive.nonadaptive_pgd_accuracy", "feature squeezing: PGD, non-adaptive"),
    ("reactive.pgd_accuracy", "feature squeezing: PGD, adaptive"),
    ("reactive.worst_case_accuracy", "feature squeezing: worst case (optional part)"),
    ("backdoor.clean_accuracy", "backdoored model: clean"),
    ("backdoor.attack_success_rate", "backdoored model: ASR"),
    ("neural_cleanse.unlearning.clean_accuracy", "unlearning: clean"),
    ("neural_cleanse.unlearning.attack_success_rate", "unlearning: ASR"),
    ("neural_cleanse.pruning.clean_accuracy", "pruning: clean"),
    ("neural_cleanse.pruning.attack_success_rate", "pruning: ASR"),
    ("neural_cleanse.filtering.clean_abstain_rate", "filtering: clean images refused"),
    ("neural_cleanse.control.attack_success_rate", "fine-tuning control: ASR"),
)
"""The numbers quoted in the teacher's table: (key in key_claims.json, label)."""


def _spread(entry: Mapping[str, Any]) -> str:
    if entry.get("std") is None:
        return f"{entry['mean']:.3f} (1 seed)"
    return f"{entry['mean']:.3f} ± {entry['std']:.3f} ({entry['min']:.3f}-{entry['max']:.3f})"


def _seeds(entry: Mapping[str, Any]) -> str:
    return ", ".join(str(s) for s in entry.get("seeds", []))


def key_claims_section(summary: Mapping[str, Any]) -> str:
    """Return the Markdown section quoting ``key_claims.json`` ("" when there is nothing measured).

    :param summary: the parsed ``<build>/key_claims.json`` that ``benchmarks/key_claims.py`` writes.
    """
    numbers = summary.get("numbers", {})
    shown = [(key, label) for key, label in KEY_NUMBERS if isinstance(numbers.get(key, {}).get("mean"), float)]
    if not shown:
        return ""
    rows = ["| number | mean ± sd over seeds (min-max) | seeds |", "| --- | ---: | --- |"]
    rows += [f"| {label} | {_spread(numbers[key])} | {_seeds(numbers[key])} |" for key, label in shown]
    claims = ["| claim | where | measured (per-seed effect) | verdict |", "| --- | --- | --- | --- |"]
    for claim in summary.get("claims", []):
        verdict = claim["verdict"] + (" (old wording, rewritten)" if claim.get("retired") else "")
        claims.append(f"| {claim['claim']} | {claim['where']} | {claim['measured']} | {verdict} |")
    stages = ", ".join(f"{stage}: seeds {', '.join(map(str, seeds))}"
                       for stage, seeds in summary.get("seeds_per_stage", {}).items())
    return f"""## What the key rests on: numbers over seeds

Measured by `benchmarks/key_claims.py` into `build/key_claims.json` (full setting, default data, the notebooks'
parameters; {stages}). A pair's single run differs from seed 0's table by up to the spread shown here, so the key
only states effects that hold in every measured seed; an effect smaller than the seed-to-seed spread of the
number it changes is not something one pair's table can show, and the key says so instead of claiming it.

{chr(10).join(rows)}

Each claim of the key, the notebooks' prose and this page, judged on those seeds ("visible": the same sign in
every seed and a mean effect larger than the seed-to-seed standard deviation of the number it changes):

{chr(10).join(claims)}
"""
