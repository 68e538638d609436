"""The tournament's intake of untrusted files (issue 16): models read as JSON against an allow-list, attack files
read without pickle and refused (never clipped) outside the budget. No training here: every model is untrained."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest

from labkit import tournament
from labkit.classroom import _model_intake as intake

EPS = 0.1


def _lab_like(shape=(16, 16, 1), extra=()):
    return keras.Sequential([keras.Input(shape), *extra, keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])


def _save(model, path):
    model.save(path)
    return path


@pytest.fixture
def x():
    return np.random.default_rng(0).uniform(0.2, 0.8, (12, 16, 16, 1)).astype(np.float32)


def test_the_labs_model_is_taken_in(tmp_path):
    from labkit.models import build_model

    info = intake.check_model_file(_save(build_model((16, 16, 1)), tmp_path / "lab.keras"))
    assert info["bytes"] > 0


def test_a_lambda_layer_is_refused(tmp_path):
    path = _save(_lab_like(extra=[keras.layers.Lambda(lambda t: t * 2)]), tmp_path / "lambda.keras")
    with pytest.raises(intake.Refused, match="Lambda"):
        intake.check_model_file(path)


def test_a_custom_layer_is_refused(tmp_path):
    @keras.saving.register_keras_serializable(package="evil")
    class Sneaky(keras.layers.Layer):
        def call(self, inputs):
            return inputs

    path = _save(_lab_like(extra=[Sneaky()]), tmp_path / "custom.keras")
    with pytest.raises(intake.Refused, match="not one of Keras's built-in layers|custom registered"):
        intake.check_model_file(path)


def test_a_wrong_input_shape_is_refused(tmp_path):
    with pytest.raises(intake.Refused, match=r"input shape is \(28, 28, 1\)"):
        intake.check_model_file(_save(_lab_like((28, 28, 1)), tmp_path / "wide.keras"))


def _rewrite(path, dest, **members):
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(dest, "w") as new:
        for name in old.namelist():
            new.writestr(name, members.pop(name, old.read(name)))
        for name, data in members.items():
            new.writestr(name, data)
    return dest


def test_a_forged_config_naming_a_foreign_module_is_refused(tmp_path):
    path = _save(_lab_like(), tmp_path / "ok.keras")
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    config["config"]["layers"][1]["module"] = "os"
    config["config"]["layers"][1]["class_name"] = "system"
    forged = _rewrite(path, tmp_path / "forged.keras", **{"config.json": json.dumps(config)})
    with pytest.raises(intake.Refused, match="os.system"):
        intake.check_model_file(forged)


def test_an_unknown_activation_and_extra_members_are_refused(tmp_path):
    path = _save(_lab_like(), tmp_path / "ok.keras")
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    config["config"]["layers"][-1]["config"]["activation"] = "my_module.evil"
    with pytest.raises(intake.Refused, match="activation"):
        intake.check_model_file(_rewrite(path, tmp_path / "act.keras", **{"config.json": json.dumps(config)}))
    with pytest.raises(intake.Refused, match="not what Keras writes"):
        intake.check_model_file(_rewrite(path, tmp_path / "extra.keras", **{"payload.pkl": b"x"}))


def test_size_caps_come_before_reading(tmp_path, monkeypatch):
    path = _save(_lab_like(), tmp_path / "ok.keras")
    monkeypatch.setattr(intake, "MAX_MODEL_BYTES", 1000)
    with pytest.raises(intake.Refused, match="too large"):
        intake.check_model_file(path)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    monkeypatch.undo()
    with pytest.raises(intake.Refused, match="not a .keras archive"):
        intake.check_model_file(tmp_path / "junk.keras")
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(intake.Refused, match="not readable JSON|does not describe"):
        intake.check_model_file(_rewrite(path, tmp_path / "deep.keras", **{"config.json": deep}))


def test_attack_files_are_checked_never_clipped(tmp_path, x):
    ok = np.clip(x + EPS, 0, 1)
    np.savez(tmp_path / "ok.npz", x_adv=ok)
    assert np.array_equal(intake.check_attack_file(tmp_path / "ok.npz", x, EPS), ok)
    np.savez(tmp_path / "over.npz", x_adv=np.clip(x + 2 * EPS, 0, 1))
    with pytest.raises(intake.Refused, match="outside the budget: 12 image"):
        intake.check_attack_file(tmp_path / "over.npz", x, EPS)
    np.savez(tmp_path / "shape.npz", x_adv=x[:5])
    with pytest.raises(intake.Refused, match=r"shape \(5, 16, 16, 1\)"):
        intake.check_attack_file(tmp_path / "shape.npz", x, EPS)
    bad = ok.copy()
    bad[3, 0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x_adv=bad)
    with pytest.raises(intake.Refused, match="NaN"):
        intake.check_attack_file(tmp_path / "nan.npz", x, EPS)
    np.savez(tmp_path / "range.npz", x_adv=x * 255)
    with pytest.raises(intake.Refused, match="outside the budget|outside \\[0, 1\\]"):
        intake.check_attack_file(tmp_path / "range.npz", x, EPS)


def test_pickled_attack_files_are_never_unpickled(tmp_path, x):
    objects = np.empty(len(x), dtype=object)
    np.savez(tmp_path / "pickle.npz", x_adv=objects)
    with pytest.raises(intake.Refused, match="Python objects"):
        intake.check_attack_file(tmp_path / "pickle.npz", x, EPS)
    np.savez(tmp_path / "other.npz", images=x)
    with pytest.raises(intake.Refused, match="no x_adv"):
        intake.check_attack_file(tmp_path / "other.npz", x, EPS)


def test_save_attack_refuses_over_budget_and_saves_within(tmp_path, x):
    challenge = tournament.Challenge(x, np.arange(len(x)) % 10, EPS, 0.8, 0, "test")
    with pytest.raises(ValueError, match="would refuse these images: it is outside the budget"):
        tournament.save_attack(np.clip(x + 0.2, 0, 1), challenge, "pair01")
    path = tournament.save_attack(np.clip(x - EPS, 0, 1), challenge, "pair01")
    assert path.name == "pair01_attack.npz"
    with pytest.raises(ValueError, match="plain name"):
        tournament.save_attack(x, challenge, "../evil")


def test_save_entry_refuses_a_lambda_model_and_deletes_its_file():
    model = _lab_like(extra=[keras.layers.Lambda(lambda t: t * 2)])
    with pytest.raises(ValueError, match="would refuse this model: it holds a Lambda layer"):
        tournament.save_entry(model, "pair02")
    assert not (tournament.tournament_dir() / "pair02.keras").exists()
    assert tournament.save_entry(_lab_like(), "pair03").is_file()


def test_load_challenge_falls_back_to_practice_and_reads_a_published_file(tmp_path, capsys):
    practice = tournament.load_challenge()
    assert "practice challenge" in capsys.readouterr().out
    assert practice.x.shape == (tournament.N_CHALLENGE, 16, 16, 1) and practice.eps == tournament.CLASS_EPS
    np.savez(tmp_path / "challenge.npz", x=practice.x[:20], y=practice.y[:20], eps=0.05, clean_floor=0.7, seed=3,
             name="class A")
    loaded = tournament.load_challenge(tmp_path / "challenge.npz")
    assert (loaded.eps, loaded.seed, loaded.name, len(loaded.x)) == (0.05, 3, "class A", 20)
    with pytest.raises(FileNotFoundError, match="no challenge file"):
        tournament.load_challenge(tmp_path / "missing.npz")


def test_dry_run_scores_the_pairs_files_and_shows_a_refusal(tmp_path, x):
    from labkit._tournament_score import BLUE_COLUMNS, Suite

    tiny = Suite(pgd_steps=2, restarts=0, square_iter=5)
    challenge = tournament.Challenge(x, np.arange(len(x)) % 10, EPS, 0.8, 0, "test")
    model = tournament.save_entry(_lab_like(), "pair04", challenge)
    attack = tournament.save_attack(np.clip(x + EPS, 0, 1), challenge, "pair04")
    table = tournament.dry_run(model, attack, challenge, suite=tiny)
    row = table.loc["pair04"]
    assert row["status"] == "ok"
    assert np.isnan(row["attack_success_rate"]) or 0.0 <= row["attack_success_rate"] <= 1.0
    assert all(0.0 <= row[c] <= 1.0 for c in BLUE_COLUMNS)
    assert row["robust_accuracy"] <= min(row["clean_accuracy"], row["pgd_accuracy"], row["fgsm_accuracy"])
    np.savez(tmp_path / "over_attack.npz", x_adv=np.clip(x + 3 * EPS, 0, 1))
    table = tournament.dry_run(model, tmp_path / "over_attack.npz", challenge, suite=tiny)
    assert table.loc["pair04", "status"].startswith("attack refused: it is outside the budget")


def test_a_model_with_saturated_outputs_is_flagged_on_the_leaderboard(x):
    from labkit._tournament_score import saturated_share
    from labkit.classroom.tournament import Entry, _status

    keras.utils.set_random_seed(0)
    plain = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(), keras.layers.Dense(10),
                              keras.layers.Activation("softmax")])
    huge = keras.Sequential([keras.Input((16, 16, 1)), *plain.layers[:-1], keras.layers.Rescaling(10_000.0),
                             keras.layers.Activation("softmax")])
    assert saturated_share(plain.predict(x, verbose=0)) == 0.0
    share = saturated_share(huge.predict(x, verbose=0))
    assert share > 0.5
    flagged = Entry("masking", "masking.keras", "model", scores={"saturated": share}, rank=1)
    assert "saturated" in _status(flagged, 0.8)
    assert _status(Entry("plain", "plain.keras", "model", scores={"saturated": 0.0}, rank=2), 0.8) == "ok"
