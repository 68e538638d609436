"""The class tournament, the pair's side (notebook 10): the challenge, the two files a pair hands in, a dry run.

A pair hands in two files: its defended model (``<group>.keras``, from ``save_entry``) and adversarial versions
of the teacher's published challenge images within the class budget (``<group>_attack.npz``, from
``save_attack``). Both are checked here exactly as the teacher's ``labkit tournament`` will check them, so a
pair learns in class, not after the deadline, that a Lambda layer or an image over eps is refused.
``dry_run`` scores the pair's own files the way the teacher will (``labkit._tournament_score``), on the public
challenge images: the teacher's held-back test images are not in the challenge file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labkit.paths import data_dir, out_dir, project_root

__all__ = ["Challenge", "load_challenge", "practice_challenge", "split_challenge", "save_entry", "save_attack",
           "dry_run", "tournament_dir", "CLASS_EPS", "CLEAN_FLOOR", "N_CHALLENGE", "CHALLENGE_FILE"]

CLASS_EPS = 0.11
"""The class budget by default: the lab's eps (notebook 01), L-infinity in pixel units of [0, 1] images."""
CLEAN_FLOOR = 0.80
"""The clean accuracy (on the held-back images) a model needs to be ranked."""
N_CHALLENGE = 100
"""Challenge images by default; the rest of the lab's test split is the teacher's held-back set."""
CHALLENGE_FILE = "challenge.npz"
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_MAX_CHALLENGE_BYTES = 50_000_000


@dataclass
class Challenge:
    """The teacher's published challenge: the images to attack and the rules.

    :param x: the challenge images, float32 (n, 16, 16, 1) in [0, 1].
    :param y: their integer labels.
    :param eps: the class budget (L-infinity).
    :param clean_floor: the clean accuracy a model needs to be ranked.
    :param seed: the seed of the teacher's scoring.
    :param name: the challenge's name (e.g. the class and date).
    """

    x: np.ndarray
    y: np.ndarray
    eps: float
    clean_floor: float
    seed: int
    name: str

    def __repr__(self) -> str:
        return (f"Challenge({self.name!r}: {len(self.x)} images, eps = {self.eps:g}, clean floor "
                f"{self.clean_floor:.0%}, seed {self.seed})")


def split_challenge(n: int = N_CHALLENGE, *, seed: int = 0, lab_seed: int = 0) -> tuple[np.ndarray, ...]:
    """Split the lab's digits test split into challenge images and held-back images; return
    ``(x_challenge, y_challenge, x_heldback, y_heldback)``.

    The split is the lab's own (``load_dataset("digits", seed=lab_seed)``), so no image a pair trained on is
    ever scored. Used by ``practice_challenge`` and the teacher's ``make_challenge``.

    :param n: challenge images (stratified); the rest is held back.
    :param seed: seed of the choice of challenge images.
    :param lab_seed: the ``SEED`` the class ran the notebooks with (the lab's train/test split).
    """
    from sklearn.model_selection import train_test_split

    from labkit.data import load_dataset

    data = load_dataset("digits", seed=lab_seed)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 10 <= n <= len(data.x_test) - 10:
        raise ValueError(f"n must be a whole number from 10 to {len(data.x_test) - 10} (the lab's test split holds "
                         f"{len(data.x_test)} images; the rest is held back), got {n!r}")
    x_ch, x_hb, y_ch, y_hb = train_test_split(data.x_test, data.y_test, train_size=int(n), stratify=data.y_test,
                                              random_state=seed)
    return x_ch, y_ch, x_hb, y_hb


def practice_challenge(n: int = N_CHALLENGE, *, eps: float = CLASS_EPS, seed: int = 0) -> Challenge:
    """Return a local practice challenge from the lab's digits test split, with the class defaults.

    :param n: challenge images.
    :param eps: the budget.
    :param seed: seed of the choice of images and of the scoring.
    """
    x, y, _, _ = split_challenge(n, seed=seed)
    return Challenge(x, y, float(eps), CLEAN_FLOOR, int(seed), "practice")


def _read_challenge(path: Path) -> Challenge:
    """Read and check a challenge file (``numpy.load`` with ``allow_pickle=False`` after a size check)."""
    import io

    from labkit.classroom._intake import IntakeError, read_capped
    from labkit.data import check_images, check_labels
    from labkit.evasion import check_eps

    try:
        raw = read_capped(path, _MAX_CHALLENGE_BYTES)
        with np.load(io.BytesIO(raw), allow_pickle=False) as f:
            fields = {k: f[k] for k in ("x", "y", "eps", "clean_floor", "seed", "name")}
    except (IntakeError, OSError, ValueError, KeyError, EOFError) as err:
        raise ValueError(f"{path} is not a readable challenge file ({err}); ask the teacher for the file that "
                         f"'labkit tournament challenge' wrote") from None
    x = check_images(fields["x"], (16, 16, 1), what="the challenge's x")
    y = check_labels(fields["y"], len(x), what="the challenge's y", nb_classes=10, one_hot=False)
    return Challenge(x, y, check_eps(float(fields["eps"])), float(fields["clean_floor"]), int(fields["seed"]),
                     str(fields["name"]))


def load_challenge(path: str | Path | None = None) -> Challenge:
    """Return the teacher's published challenge, or a local practice challenge when there is none.

    Used in 10, Step 1. Without ``path`` the file ``challenge.npz`` is looked up in the data folder
    (``labkit.paths.data_dir``) and then in the lab folder; when neither has it, a practice challenge is made
    from the lab's digits test split with the class defaults, and a line says so.

    :param path: the challenge file the teacher published.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no challenge file at {path}: download the teacher's challenge.npz and "
                                    f"pass its path, or call load_challenge() for a practice challenge")
        return _read_challenge(path)
    for folder in (data_dir(), project_root()):
        if (folder / CHALLENGE_FILE).is_file():
            return _read_challenge(folder / CHALLENGE_FILE)
    challenge = practice_challenge()
    print(f"No {CHALLENGE_FILE} in {data_dir()} or {project_root()}: using a practice challenge ({len(challenge.x)} "
          f"digits of the lab's test split, eps = {challenge.eps:g}). Put the teacher's {CHALLENGE_FILE} there "
          f"for the real one.")
    return challenge


def tournament_dir() -> Path:
    """Return ``<build>/tournament``, where a pair's two files are saved (created)."""
    path = out_dir() / "tournament"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_group(group: str) -> str:
    if not isinstance(group, str) or not _GROUP.match(group):
        raise ValueError(f"group must be a short plain name (letters, digits, '-' or '_', at most 40 characters, "
                         f"e.g. 'pair07'), got {group!r}: it names the files you hand in")
    return group


def _check_loaded(model: Any, x: np.ndarray) -> Any:
    """The checks the teacher makes after loading a model (parameters, output shape, probabilities)."""
    from labkit._tournament_score import as_classifier
    from labkit.classroom._model_intake import MAX_PARAMS, NB_CLASSES

    if model.count_params() > MAX_PARAMS:
        raise ValueError(f"it has {model.count_params():,} parameters, over the cap of {MAX_PARAMS:,}")
    if tuple(model.output_shape) != (None, NB_CLASSES):
        raise ValueError(f"its output shape is {tuple(model.output_shape)}; the tournament needs one probability "
                         f"per class: (None, {NB_CLASSES})")
    return as_classifier(model, x)


def save_entry(classifier: Any, group: str, challenge: Challenge | None = None) -> Path:
    """Save the pair's defended model as the file it hands in, ``<build>/tournament/<group>.keras``.

    Used in 10, Step 3. The saved file goes through the teacher's intake checks (allowed Keras layers only,
    no Lambda layer or custom object, size and parameter caps, the lab's input and output shapes, probabilities
    out); a refused file is deleted and the error says why.

    :param classifier: the ART classifier (or Keras model) to hand in, e.g. from notebook 02.
    :param group: the pair's group name, e.g. ``"pair07"``.
    :param challenge: the challenge (for the output check's images); default: a practice challenge's.
    """
    import keras

    from labkit.classroom._model_intake import Refused, check_model_file

    path = tournament_dir() / f"{_check_group(group)}.keras"
    getattr(classifier, "model", classifier).save(path)
    try:
        check_model_file(path)
        model = keras.models.load_model(path, safe_mode=True, compile=False)
        _check_loaded(model, (challenge or practice_challenge(20)).x)
    except (Refused, ValueError) as err:
        path.unlink(missing_ok=True)
        raise ValueError(f"the tournament would refuse this model: {err}") from None
    return path


def save_attack(x_adv: np.ndarray, challenge: Challenge, group: str) -> Path:
    """Save the pair's adversarial examples as the file it hands in, ``<build>/tournament/<group>_attack.npz``.

    Used in 10, Step 5. Checked as the teacher checks them: one image per challenge image (same order and
    shape), finite, in [0, 1], within ``challenge.eps`` of the challenge image in L-infinity. Nothing is clipped:
    an image over budget is an error.

    :param x_adv: the adversarial images.
    :param challenge: the challenge they attack.
    :param group: the pair's group name.
    """
    from labkit.classroom._model_intake import ATTACK_KEY, Refused, check_attack_file, check_budget

    path = tournament_dir() / f"{_check_group(group)}_attack.npz"
    try:
        x_adv = check_budget(x_adv, challenge.x, challenge.eps)
    except Refused as err:
        raise ValueError(f"the tournament would refuse these images: {err}") from None
    np.savez_compressed(path, **{ATTACK_KEY: x_adv})
    check_attack_file(path, challenge.x, challenge.eps)
    return path


def _baseline() -> Any | None:
    """Return the lab's baseline (notebook 00) when it is saved, else None."""
    import keras

    from labkit.paths import models_dir

    path = models_dir() / "baseline.keras"
    return keras.models.load_model(path, safe_mode=True, compile=False) if path.is_file() else None


def dry_run(model_path: str | Path | None, attack_path: str | Path | None, challenge: Challenge, *,
            n: int | None = None, suite: Any = None) -> Any:
    """Score the pair's own two files as the teacher will; return a DataFrame, one row per model.

    Used in 10, Step 6. Columns: the clean accuracy, the accuracy under FGSM and under PGD, ``square_extra`` (the
    share of images only the gradient-free Square attack broke) and the robust accuracy (the per-image worst
    case over the suite), on the challenge images (the teacher uses held-back images,
    so the class's numbers differ a little); ``attack_success_rate``: the share of the images the model gets
    right that the attack file makes it get wrong; ``status``: ``ok`` or why the teacher would refuse a file.
    The lab's baseline (notebook 00) is a second row when it is saved: your attack's transfer.

    :param model_path: the pair's ``.keras`` file (None: no model row).
    :param attack_path: the pair's ``_attack.npz`` file (None: no success rates).
    :param challenge: the challenge.
    :param n: score only the first ``n`` challenge images (default: 50 in the fast setting, else all).
    :param suite: the attacks' settings (``labkit._tournament_score.Suite``); default: the teacher's.
    """
    import keras
    import pandas as pd

    from labkit._tournament_score import Suite, blue_scores, success_rate
    from labkit.classroom._model_intake import Refused, check_attack_file, check_model_file
    from labkit.paths import is_fast

    suite = suite or (Suite.fast() if is_fast() else Suite())
    n = n or (50 if is_fast() else len(challenge.x))
    x, y = challenge.x[:n], challenge.y[:n]
    rows, x_adv, attack_status = [], None, "no attack file"
    if attack_path is not None:
        try:
            x_adv = check_attack_file(attack_path, challenge.x, challenge.eps)[:n]
            attack_status = "ok"
        except Refused as err:
            attack_status = f"attack refused: {err}"
    models = []
    if model_path is not None:
        try:
            check_model_file(model_path)
            model = keras.models.load_model(model_path, safe_mode=True, compile=False)
            models.append((Path(model_path).stem, _check_loaded(model, x), True, attack_status))
        except (Refused, ValueError) as err:
            rows.append({"model": Path(model_path).stem, "status": f"model refused: {err}"})
    baseline = _baseline() if x_adv is not None else None
    if baseline is not None:
        models.append(("baseline (lab)", _check_loaded(baseline, x), False, attack_status))
    for name, classifier, blue, status in models:
        row = {"model": name, **(blue_scores(classifier, x, y, challenge.eps, suite=suite, seed=challenge.seed)
                                 if blue else {"clean_accuracy": float(np.mean(
                                     classifier.predict(x).argmax(axis=1) == y))})}
        row["attack_success_rate"] = success_rate(classifier, x, y, x_adv)[0] if x_adv is not None else np.nan
        row["status"] = status
        rows.append(row)
    if attack_status.startswith("attack refused") and not models:
        rows.append({"model": "(none)", "status": attack_status})
    for row in rows:
        if row["status"] != "ok":
            print(f"{row['model']}: {row['status']}")
    return pd.DataFrame(rows).set_index("model")
