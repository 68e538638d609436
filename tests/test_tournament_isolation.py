"""The teacher's process survives any model file: a memory bomb and a model past the timeout are refused rows, the
run goes on, and the CLI writes the challenge and the leaderboard. Untrained models only: cheap."""

from __future__ import annotations

import csv
import json
import zipfile

import keras
import numpy as np
import pytest

from labkit._tournament_score import Suite
from labkit.classroom import tournament as teacher
from labkit.cli import main

TINY = Suite(pgd_steps=2, restarts=0, square_iter=5)


def _tiny():
    return keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(name="flatten"),
                             keras.layers.Dense(8, activation="relu", name="hidden"),
                             keras.layers.Dense(10, activation="softmax", name="out")])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("isolation")
    assert main(["tournament", "challenge", "--out", str(root / "challenge"), "--n", "50", "--eps", "0.1"]) == 0
    sub = root / "sub"
    sub.mkdir()
    _tiny().save(sub / "good.keras")
    config = json.loads(zipfile.ZipFile(sub / "good.keras").read("config.json"))
    config["config"]["layers"][2]["config"]["units"] = 5_000_000  # 256 x 5e6 float32 weights: 5 GB
    with zipfile.ZipFile(sub / "good.keras") as old, zipfile.ZipFile(sub / "bomb.keras", "w") as new:
        for name in old.namelist():
            new.writestr(name, json.dumps(config) if name == "config.json" else old.read(name))
    return root


def test_the_challenge_command_writes_the_public_and_private_files(folders):
    with np.load(folders / "challenge" / "challenge.npz") as public, \
            np.load(folders / "challenge" / "private" / "heldback.npz") as held:
        assert public["x"].shape == (50, 16, 16, 1) and float(public["eps"]) == 0.1
        assert len(held["y"]) == teacher.N_HELDBACK
        assert not set(map(bytes, public["x"])) & set(map(bytes, held["x"]))  # no image in both


def test_a_memory_bomb_is_a_refused_row_and_the_class_is_still_scored(folders):
    result = teacher.run_tournament(folders / "sub", folders / "out", challenge=folders / "challenge", suite=TINY,
                                    memory=3 * 2**30, progress=False, echo=None)
    rows = {m.group: m for m in result.models}
    # without the limit the child allocates the 5 GB, then fails on the weights (a different reason)
    assert rows["bomb"].reason.startswith("refused:") and "memory limit of 3.0 GiB" in rows["bomb"].reason, \
        rows["bomb"].reason
    assert rows["good"].valid and 0.0 <= rows["good"].scores["clean_accuracy"] <= 1.0
    assert rows["good"].cpu_seconds > 0


def test_a_model_past_the_timeout_is_stopped_and_refused(folders):
    result = teacher.run_tournament(folders / "sub", folders / "slow", challenge=folders / "challenge", suite=TINY,
                                    timeout=0.01, progress=False, echo=None)
    assert all("took longer than 0.01 s" in m.reason for m in result.models)


def test_the_cli_scores_a_folder_and_writes_the_leaderboard(folders, capsys):
    out = folders / "cli"
    assert main(["tournament", str(folders / "sub"), "--out", str(out), "--challenge",
                 str(folders / "challenge")]) == 0
    assert "labkit tournament: 2 model(s), 0 attack file(s)" in capsys.readouterr().out
    blue = {row["group"]: row for row in csv.DictReader((out / "blue.csv").open())}
    assert blue["bomb"]["status"].startswith("refused")
    assert "Class tournament" in (out / "index.html").read_text()
    assert main(["tournament", str(folders / "missing"), "--out", str(out), "--challenge",
                 str(folders / "challenge")]) == 1
