"""Issue 16's test: a tournament over the lab's own models and three attack files.

Models: baseline, FGSM-trained, Madry-trained, one that masks its gradients (built from standard layers only:
its logits multiplied by 10,000 before the softmax, so the loss is flat almost everywhere), a Lambda-layer
model, a wrong-input-shape model and a wrong-output-shape model (caught after loading, in the child). Attack
files: one valid (PGD against the baseline), one over the budget, one of the wrong shape; two file names carry
HTML. One tournament runs (module fixture, the fast suite, 100 held-back images) and each test checks one claim.
"""

from __future__ import annotations

import csv
import re
from html.parser import HTMLParser
from pathlib import Path

import keras
import numpy as np
import pytest

import labkit
from labkit._tournament_score import Suite
from labkit.classroom import tournament as teacher
from labkit.models import build_model, wrap_model

EPS = 0.11
HOSTILE_MODEL = 'x" onmouseover="alert(1)'
HOSTILE_ATTACK = "<script>alert(2)<script>"


def _masking(baseline, levels=16, steep=1e5):
    """The baseline behind a 16-level staircase on the pixels (1x1 convolutions and a steep sigmoid, standard
    layers only): the same answers on the digits, an input gradient of exactly zero almost everywhere."""
    quantise = keras.layers.Conv2D(levels, 1, activation="sigmoid", name="quantise")
    average = keras.layers.Conv2D(1, 1, use_bias=False, name="average")
    copies = [layer.__class__.from_config(layer.get_config()) for layer in baseline.model.layers]
    model = keras.Sequential([keras.Input((16, 16, 1)), quantise, average, *copies])
    thresholds = (np.arange(levels, dtype=np.float32) + 0.5) / levels
    quantise.set_weights([np.full((1, 1, 1, levels), steep, np.float32), -steep * thresholds])
    average.set_weights([np.full((1, 1, levels, 1), 1.0 / levels, np.float32)])
    for copy, layer in zip(copies, baseline.model.layers):
        copy.set_weights(layer.get_weights())
    return model


def _madry(data):
    from art.defences.trainer import AdversarialTrainerMadryPGD

    labkit.set_seed(0)
    model = wrap_model(build_model(data.input_shape, data.nb_classes, learning_rate=3e-3))
    trainer = AdversarialTrainerMadryPGD(model, nb_epochs=8, batch_size=128, eps=EPS, eps_step=EPS / 4, max_iter=5,
                                         num_random_init=1)
    trainer.attack.set_params(batch_size=128)
    trainer.fit(data.x_train, np.eye(10, dtype=np.float32)[data.y_train])
    return model


def _fgsm_trained(data):
    from labkit.robust import FastAdversarialTrainer

    labkit.set_seed(0)
    model = wrap_model(build_model(data.input_shape, data.nb_classes, learning_rate=3e-3))
    FastAdversarialTrainer(model, eps=EPS).fit(data.x_train, data.y_train, nb_epochs=8, progress=False, seed=0)
    return model


@pytest.fixture(scope="module")
def tournament(tmp_path_factory):
    from art.attacks.evasion import ProjectedGradientDescent

    root = tmp_path_factory.mktemp("tournament")
    teacher.make_challenge(root / "challenge", eps=EPS, n=100, seed=0, clean_floor=0.8)
    with np.load(root / "challenge/private/heldback.npz") as held:
        fields = {k: held[k] for k in held.files}
    fields["x"], fields["y"] = fields["x"][:100], fields["y"][:100]
    np.savez(root / "heldback.npz", **fields)
    with np.load(root / "challenge/challenge.npz") as public:
        x = public["x"]
    data = labkit.load_dataset("digits", seed=0)
    labkit.set_seed(0)
    baseline = labkit.train_model(data.x_train, data.y_train, epochs=8, progress=False)
    sub = root / "submissions"
    (sub / "pair05").mkdir(parents=True)
    baseline.model.save(sub / "baseline.keras")
    _fgsm_trained(data).model.save(sub / "fgsm.keras")
    _madry(data).model.save(sub / "pair05" / "madry.keras")
    _masking(baseline).save(sub / f"{HOSTILE_MODEL}.keras")
    keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Lambda(lambda t: t * 2), keras.layers.Flatten(),
                      keras.layers.Dense(10, activation="softmax")]).save(sub / "lambda.keras")
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                      keras.layers.Dense(10, activation="softmax")]).save(sub / "wide.keras")
    keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(),
                      keras.layers.Dense(5, activation="softmax")]).save(sub / "five.keras")
    labkit.set_seed(0)
    x_adv = ProjectedGradientDescent(baseline, eps=EPS, eps_step=EPS / 4, max_iter=10, verbose=False).generate(x)
    np.savez(sub / f"{HOSTILE_ATTACK}_attack.npz", x_adv=x_adv)
    np.savez(sub / "over_attack.npz", x_adv=np.clip(x + 2 * EPS * np.sign(x_adv - x), 0, 1))
    np.savez(sub / "shape_attack.npz", x_adv=x_adv[:50])
    result = teacher.run_tournament(sub, root / "out", challenge=root / "challenge", heldback=root / "heldback.npz",
                                    suite=Suite.fast(), progress=False, echo=None)
    return result, root / "out"


def _model(result, group):
    return next(m for m in result.models if m.group == group)


def test_madry_is_ranked_first_among_the_valid(tournament):
    result, _ = tournament
    ranked = result.ranked_models()
    assert ranked[0].group == "madry", [(m.group, m.scores) for m in ranked]
    assert {m.group for m in ranked} >= {"madry", "fgsm", "baseline"}


def test_the_masking_model_is_caught_by_the_gradient_free_attack(tournament):
    result, _ = tournament
    masking = _model(result, HOSTILE_MODEL)
    scores = masking.scores
    assert scores["robust_accuracy"] < scores["pgd_accuracy"], scores
    assert scores["square_extra"] > 0.05, scores
    assert masking.rank is None or masking.rank > _model(result, "madry").rank


def test_malicious_and_malformed_files_are_refused_with_reasons(tournament):
    result, _ = tournament
    assert "Lambda layer" in _model(result, "lambda").reason
    assert "input shape is (28, 28, 1)" in _model(result, "wide").reason
    assert "output shape is (None, 5)" in _model(result, "five").reason
    attacks = {a.group: a for a in result.attacks}
    assert "outside the budget" in attacks["over"].reason
    assert "shape (50, 16, 16, 1)" in attacks["shape"].reason
    assert attacks[HOSTILE_ATTACK].valid and attacks[HOSTILE_ATTACK].rank == 1


def test_every_entry_is_in_the_csv_files_with_its_status(tournament):
    result, out = tournament
    blue = list(csv.DictReader((out / "blue.csv").open()))
    red = list(csv.DictReader((out / "red.csv").open()))
    assert {row["group"] for row in blue} == {m.group for m in result.models} and len(blue) == 7
    assert {row["group"] for row in red} == {a.group for a in result.attacks} and len(red) == 3
    assert next(r for r in blue if r["group"] == "lambda")["status"].startswith("refused")
    matrix = list(csv.reader((out / "matrix.csv").open()))
    assert len(matrix) == 2 and len(matrix[0]) == 5  # one valid attack file; four scored models
    rate = float(matrix[1][matrix[0].index("baseline")])
    assert rate > 0.5, "PGD crafted on the baseline breaks most of its correct challenge images"


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attributes = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += attrs


def test_the_leaderboard_has_no_script_and_links_every_row(tournament):
    result, out = tournament
    text = (out / "index.html").read_text()
    parser = _Tags()
    parser.feed(text)
    assert "script" not in parser.tags
    assert not [name for name, _ in parser.attributes if name.lower().startswith("on")]
    assert not [value for _, value in parser.attributes if value and "javascript:" in value.lower()]
    assert "script-src 'none'" in text
    anchors = {value for name, value in parser.attributes if name == "id"}
    links = {value[1:] for name, value in parser.attributes if name == "href" and value.startswith("#")}
    assert links and links <= anchors and len(links) == 10  # 7 models and 3 attack files, one group each
    assert re.search(r'src="data:image/png;base64,', text)
    assert (out / "matrix.png").read_bytes().startswith(b"\x89PNG")
