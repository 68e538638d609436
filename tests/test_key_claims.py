"""The key's claims are judged on per-seed numbers (benchmarks/key_claims_list.py), and the teacher's page quotes
them (labkit.classroom.claims_page): an effect smaller than the seed-to-seed spread is not "visible"."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from key_claims_list import CLAIMS, Claim, summarise_claims  # noqa: E402

from labkit.classroom.claims_page import key_claims_section  # noqa: E402


def _per_seed(rows: list[dict]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for seed, row in enumerate(rows):
        for key, value in row.items():
            out.setdefault(key, {})[seed] = value
    return out


def _visible(diffs: list[float], levels: list[float]) -> str:
    claim = Claim("x", "here", "a overstates b", lambda n: n["a"] - n["b"], "visible", 0.0, "b")
    rows = [{"a": level + d, "b": level} for d, level in zip(diffs, levels)]
    return summarise_claims(_per_seed(rows), [claim])[0]["verdict"]


def test_visible_needs_the_same_sign_in_every_seed_and_an_effect_above_the_spread():
    assert _visible([0.10, 0.12, 0.09], [0.50, 0.52, 0.48]) == "holds"
    assert _visible([0.015, 0.02, 0.01], [0.50, 0.56, 0.44]) == "does not hold"  # 1-2 points, spread 6 points
    assert _visible([0.10, -0.02, 0.09], [0.50, 0.50, 0.50]) == "does not hold"  # one seed goes the other way


def test_claims_without_numbers_are_not_measured_and_rules_read_every_seed():
    claims = {c.id: c for c in CLAIMS}
    per_seed = _per_seed([{"adversarial_training.pgd_accuracy": 0.50}, {"adversarial_training.pgd_accuracy": 0.10}])
    judged = {r["id"]: r for r in summarise_claims(per_seed, [claims["fgsm_training_collapses"],
                                                               claims["backdoor_works"]])}
    assert judged["fgsm_training_collapses"]["verdict"] == "does not hold"  # 0.50 in seed 0 is no collapse
    assert judged["fgsm_training_collapses"]["retired"] is True
    assert judged["backdoor_works"]["verdict"] == "not measured"
    rule = summarise_claims(_per_seed([{"neural_cleanse.chosen": c} for c in ["unlearning", "pruning", "unlearning"]]),
                            [claims["rule_picks_unlearning"]])[0]
    assert rule["verdict"] == "holds" and "2 of 3" in rule["measured"]


def test_teacher_section_quotes_mean_spread_seeds_and_verdicts():
    summary = {"seeds_per_stage": {"evasion": [0, 1]},
               "numbers": {"madry.pgd_accuracy": {"mean": 0.56, "std": 0.02, "min": 0.54, "max": 0.58,
                                                  "seeds": [0, 1]}},
               "claims": [{"claim": "FGSM training collapses under PGD", "where": "05 Q1 key (old)",
                           "measured": "mean +0.498", "verdict": "does not hold", "retired": True}]}
    text = key_claims_section(summary)
    assert "Madry PGD training: under PGD | 0.560 ± 0.020 (0.540-0.580) | 0, 1 |" in text
    assert "does not hold (old wording, rewritten)" in text and "evasion: seeds 0, 1" in text
    assert key_claims_section({}) == ""


def test_teacher_page_quotes_key_claims_json_of_the_build(tmp_path):
    import json

    from labkit.classroom.teacher import write_page

    summary = {"seeds_per_stage": {"evasion": [0, 1]}, "claims": [],
               "numbers": {"reactive.pgd_accuracy": {"mean": 0.55, "std": 0.01, "min": 0.54, "max": 0.56,
                                                     "seeds": [0, 1]}}}
    (tmp_path / "timings.json").write_text("{}")
    page = write_page(tmp_path, tmp_path / "teacher.md").read_text()
    assert "What the key rests on" in page and "**Not measured yet**: run `benchmarks/key_claims.py`" in page
    assert "| feature squeezing" not in page
    (tmp_path / "key_claims.json").write_text(json.dumps(summary))
    page = write_page(tmp_path, tmp_path / "teacher.md").read_text()
    assert "| feature squeezing: PGD, adaptive | 0.550 ± 0.010 (0.540-0.560) | 0, 1 |" in page
