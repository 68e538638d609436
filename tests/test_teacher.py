"""The teacher's page: the plan with measured times, pending where a notebook did not run, and the rubric."""

from __future__ import annotations

import json

import pytest

from labkit import teacher


def test_page_shows_measured_times_and_marks_the_rest_pending(tmp_path):
    build = tmp_path / "run"
    build.mkdir()
    (build / "timings.json").write_text(json.dumps({"00_setup.ipynb": 42.4, "03_backdoor_poisoning.ipynb": 170.0,
                                                    "07_membership_inference.ipynb": 90.0}))
    (build / "metrics.json").write_text(json.dumps({"baseline.clean_accuracy": 0.9733,
                                                    "backdoor.clean_accuracy": 0.96,
                                                    "backdoor.attack_success_rate": 0.99}))
    out = teacher.write_page(build, tmp_path / "teacher.md")
    page = out.read_text()
    assert "| `00_setup` | 0-10 | 42 s |" in page
    assert "| `03_backdoor_poisoning` | 45-60 | 2.8 min |" in page
    assert "| `01_evasion_fgsm` | 10-30 | pending |" in page
    assert "`07_membership_inference` (extension)" in page
    assert "| baseline | 0.973 |" in page and "0.990" in page
    assert "**Pending:** `01_evasion_fgsm`, `02_adversarial_training`" in page
    assert "Grading rubric" in page and "labkit export SUBMISSIONS --out DIR" in page
    assert sum(minutes for _, minutes, _ in teacher.PLAN) == 90


def test_no_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="labkit run"):
        teacher.write_page(tmp_path / "nothing", tmp_path / "teacher.md")
    assert teacher.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "t.md")]) == 1
