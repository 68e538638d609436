"""The teacher's page's sections read from the benchmarks' JSON files under ``build/``.

Each benchmark writes one JSON file; ``labkit.classroom.teacher`` reads it and quotes it here, naming the file next
to its numbers, or prints ``not_measured`` (which benchmark to run) when the file is missing:

- ``key_claims_section``: ``build/key_claims.json`` of ``benchmarks/key_claims.py`` (every number a claim of the
  key, the notebooks' prose or the teacher's page rests on, over seeds 0-4 in the full setting, each claim judged);
- ``neural_cleanse_section``: ``build/neural_cleanse_eval*.json`` of ``benchmarks/neural_cleanse.py`` (detection
  and mitigation over seeds, one file per data set, target and trigger);
- ``export_hostile_sentence``: ``build/export_hostile_bench.json`` of ``benchmarks/export_hostile.py`` (how long
  ``labkit export`` takes over a class of hostile submissions).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

__all__ = ["KEY_NUMBERS", "BENCHMARKS", "KEY_CLAIMS_TITLE", "NEURAL_CLEANSE_TITLE", "key_claims_section",
           "neural_cleanse_section", "export_hostile_sentence", "not_measured"]

BENCHMARKS: dict[str, tuple[str, str, str]] = {
    "key_claims": ("key_claims.json", "benchmarks/key_claims.py", "--stages evasion, --stages backdoor"),
    "neural_cleanse": ("neural_cleanse_eval*.json", "benchmarks/neural_cleanse.py",
                       "full setting: the defaults, and --target 7 --trigger pattern"),
    "export_hostile": ("export_hostile_bench.json", "benchmarks/export_hostile.py", ""),
}
"""The benchmarks the teacher's page quotes: name -> (JSON file or pattern under the build folder, script, how the
page's runs call it)."""
KEY_CLAIMS_TITLE = "What the key rests on: numbers over seeds"
NEURAL_CLEANSE_TITLE = "Neural Cleanse over seeds (benchmark)"


def not_measured(name: str, source: str = "build", why: str = "") -> str:
    """Return the line that stands where a benchmark's numbers would be when its JSON file is missing.

    :param name: a key of ``BENCHMARKS``.
    :param source: the build folder the page is generated from.
    :param why: what was found instead (e.g. only FAST runs), said after "not measured yet".
    """
    pattern, script, _ = BENCHMARKS[name]
    return (f"**Not measured yet**{' (' + why + ')' if why else ''}: run `{script}` (it writes "
            f"`{source}/{pattern}`), then regenerate this page.")

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


def key_claims_section(summary: Mapping[str, Any], source: str = "build") -> str:
    """Return the Markdown section quoting ``key_claims.json`` ("" when there is nothing measured).

    :param summary: the parsed ``<build>/key_claims.json`` that ``benchmarks/key_claims.py`` writes.
    :param source: the build folder the file was read from, named on the page.
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
    path = f"{source}/{BENCHMARKS['key_claims'][0]}"
    stages = ", ".join(f"{stage}: seeds {', '.join(map(str, seeds))}"
                       for stage, seeds in summary.get("seeds_per_stage", {}).items())
    return f"""## {KEY_CLAIMS_TITLE}

Measured by `benchmarks/key_claims.py` into `{path}` (full setting, default data, the notebooks'
parameters; {stages}). A pair's single run differs from seed 0's table by up to the spread shown here, so the key
only states effects that hold in every measured seed; an effect smaller than the seed-to-seed spread of the
number it changes is not something one pair's table can show, and the key says so instead of claiming it.

{chr(10).join(rows)}

Each claim of the key, the notebooks' prose and this page, judged on those seeds ("visible": the same sign in
every seed and a mean effect larger than the seed-to-seed standard deviation of the number it changes):

{chr(10).join(claims)}
"""


def _rates(values: Sequence[Any]) -> str:
    shown = [v for v in values if isinstance(v, (int, float))]
    return "—" if not shown else (f"{min(shown):.0%}" if min(shown) == max(shown) else
                                  f"{min(shown):.0%}-{max(shown):.0%}")


def _planned_seeds(result: Mapping[str, Any]) -> str:
    planned = result.get("settings", {}).get("seeds", [])
    return ", ".join(map(str, planned)) or "?"


def neural_cleanse_section(results: Sequence[Mapping[str, Any]], files: Sequence[str] = ()) -> str:
    """Return the Markdown section on Neural Cleanse's benchmark runs (``benchmarks/neural_cleanse.py``), "" if none.

    :param results: the JSON files the benchmark wrote (``<build>/neural_cleanse_eval*.json``), one per setting.
    :param files: those files' paths as the page names them, in the same order (named under the table).
    """
    if not results:
        return ""
    rows = ["| data set · target · trigger | seeds | target's anomaly index per seed | target flagged | clean model "
            "flagged | passes run (backdoored; clean) | pruning: ASR left, removed by its own check | filtering: "
            "ASR left, honest inputs refused |", "| --- | --- | --- | ---: | ---: | --- | --- | --- |"]
    for r in results:
        seeds = [s["seed"] for s in r.get("seeds", [])]
        pruning, filtering = r.get("pruning", {}), r.get("filtering", {})
        removed = pruning.get("backdoor_removed_by_its_own_check", [])
        rows.append(
            f"| {r.get('dataset')} · {r.get('target_class')} · `{r.get('trigger')}` | {', '.join(map(str, seeds))}"
            f"{'' if r.get('complete', True) else ' (incomplete run: planned ' + _planned_seeds(r) + ')'} | "
            f"{', '.join(f'{i:.2f}' for i in r.get('target_anomaly_index_per_seed', []))} | "
            f"{r.get('detection_rate', math.nan):.0%} | {r.get('false_positive_rate', math.nan):.0%} | "
            f"{'; '.join(f'{a}, {b}' for a, b in r.get('search_epochs', []))} | "
            f"{_rates(pruning.get('attack_success_rate', []))}, {sum(map(bool, removed))}/{len(removed)} | "
            f"{_rates(filtering.get('attack_success_rate', []))}, {_rates(filtering.get('clean_abstain_rate', []))} |")
    budget = results[0].get("settings", {}).get("steps")
    read = f"\n\nRows in order from {', '.join(f'`{f}`' for f in files)}." if files else ""
    return f"""## {NEURAL_CLEANSE_TITLE}

Measured by `benchmarks/neural_cleanse.py` (one clean and one backdoored model per seed, 10% poison, the
defender holding 15% of the clean training images, the trigger search's default budget of {budget} passes over
them with early stopping). A class is flagged above an anomaly index of 2; the target should stand well clear
of it. Pruning's and filtering's ASR is the real trigger's on the test images, next to whether the mitigation
itself reported the backdoor removed and, for filtering, the share of honest test inputs it refuses.

{chr(10).join(rows)}{read}
"""


def export_hostile_sentence(result: Mapping[str, Any], source: str = "build") -> str:
    """Return the sentence on how long ``labkit export`` takes over hostile submissions, from the benchmark's JSON.

    Used in the teacher's page, section "Exporting a class folder" (after the export's hardening).

    :param result: the parsed ``export_hostile_bench.json`` that ``benchmarks/export_hostile.py`` writes.
    :param source: the build folder the file was read from, named on the page.
    """
    if not isinstance(result.get("wall_s"), (int, float)):
        return not_measured("export_hostile", source)
    path = f"{source}/{BENCHMARKS['export_hostile'][0]}"
    machine = result.get("machine", {})
    load = machine.get("load_average_1m_before")
    where = f"a {machine['cpus']}-core machine" if machine.get("cpus") else "the benchmark's machine"
    if isinstance(load, (int, float)):
        where += f" (1-minute load average {load:.2f} before the run)"
    limit = result.get("limit_s", math.nan)
    verdict = "within" if result.get("within_limit", result["wall_s"] <= limit) else "OVER"
    cpu = f" ({result['cpu_s']:.1f} s CPU)" if isinstance(result.get("cpu_s"), (int, float)) else ""
    return (f"`benchmarks/export_hostile.py` times a class of {result.get('n_submissions', '?')} hostile "
            f"submissions (`{path}`): {result['wall_s']:.1f} s{cpu} on {where}, {verdict} the limit of "
            f"{limit:.0f} s; {result.get('exported', '?')} exported, {result.get('listed', '?')} entries listed.")
