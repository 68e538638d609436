"""Measure the numbers behind every claim of the answer key (05's questions), the notebooks' prose and
docs/teacher.md, over seeds 0-4 in the full setting, so that the key says only what the data shows.

It reuses labkit's functions with the notebooks' settings (no notebook is executed), one stage at a time:

- ``evasion`` (00, 01, 02): the baseline (20 epochs, batch 128), FGSM and PGD at eps 0.11 (20 steps, eps_step 2.5 eps / 20),
  FGSM adversarial training (ART ``AdversarialTrainer``, ratio 0.5, 15 epochs, batch 128, lr 3e-3), Madry's PGD
  training (10 epochs x 5 steps), both at eps and at twice eps, and feature squeezing (1 bit) evaluated
  non-adaptively (attacks crafted on the bare baseline) and adaptively (white-box through the squeezing);
- ``backdoor`` (03, 04): the 10% backdoor (3x3 white square, target 0), the poison-fraction sweep
  (1, 3, 5, 10%), Neural Cleanse (STEPS = 120, notebook 04) on the backdoored and on the clean model, the three
  mitigations, the fine-tuning control, and the mitigation the 04 rule (at most 5 points of clean accuracy) picks;
- ``worst_case`` (02's optional Step 7 part): the per-image worst case over FGSM, PGD and PGD with 5 random
  restarts, for the three defended models of the ``evasion`` stage (it reloads them).

Each (stage, seed) writes ``<build>/key_claims/<stage>_seed<N>.json`` when it finishes, so stages can run in
separate processes and a rerun skips what is done. ``--summarise`` (also run at the end of every run) collects
them into ``<build>/key_claims.json``: per number its mean, standard deviation (ddof 1), min, max and per-seed
values, and per claim of the key the measured effect and whether it holds over the seeds. Usage::

    nice .venv/bin/python benchmarks/key_claims.py --stages evasion            # seeds 0-4
    nice .venv/bin/python benchmarks/key_claims.py --stages backdoor --seeds 0 1 2
    .venv/bin/python benchmarks/key_claims.py --summarise                      # only rebuild key_claims.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # ART's and labkit's progress bars: keep the log readable
sys.path.insert(0, str(Path(__file__).resolve().parent))
from key_claims_list import CLAIMS, summarise_claims  # noqa: E402

EPS, PGD_STEPS, RESTARTS = 0.11, 20, 5  # notebooks 01 and 02
CFG = {"n_train": None, "n_test": None, "epochs": 20, "at_epochs": 15, "madry_epochs": 10, "nc_steps": 120}
SMOKE = {"n_train": 300, "n_test": 100, "epochs": 2, "at_epochs": 1, "madry_epochs": 1, "nc_steps": 20}
STAGES = ("evasion", "backdoor", "worst_case")


def _attacks(eps: float) -> dict[str, Callable[[Any], Any]]:
    """Notebook 01/02's two attacks as ``{name: classifier -> ART attack}`` at ``eps``."""
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent

    return {"fgsm": lambda clf: FastGradientMethod(clf, eps=eps, batch_size=256),
            "pgd": lambda clf: ProjectedGradientDescent(clf, eps=eps, eps_step=2.5 * eps / PGD_STEPS,
                                                        max_iter=PGD_STEPS, batch_size=256, verbose=False)}


def _scores(clf: Any, data: Any, prefix: str, *, double_eps: bool = False) -> dict[str, float]:
    """Clean, FGSM and PGD accuracy of ``clf`` at the lab's eps (and PGD at twice eps), keyed ``prefix.*``."""
    import labkit
    from labkit.evasion import accuracy_under_attack

    row = {f"{prefix}.clean_accuracy": labkit.accuracy(clf, data.x_test, data.y_test)}
    for name, make in _attacks(EPS).items():
        row[f"{prefix}.{name}_accuracy"] = accuracy_under_attack(clf, make(clf), data.x_test, data.y_test)
    if double_eps:
        pgd2 = _attacks(2 * EPS)["pgd"](clf)
        row[f"{prefix}.pgd_accuracy_at_2eps"] = accuracy_under_attack(clf, pgd2, data.x_test, data.y_test)
    return row


def _data(seed: int) -> Any:
    """The default digits split of ``seed`` (all of it, unless ``--smoke``)."""
    import labkit

    return labkit.load_dataset("digits", seed=seed, n_train=CFG["n_train"], n_test=CFG["n_test"])


def _model_path(out: Path, name: str, seed: int) -> Path:
    return out / f"{name}_seed{seed}.keras"


def _baseline(data: Any, seed: int, out: Path) -> Any:
    """Notebook 00's baseline for this seed: reloaded if a stage saved it, else trained and saved."""
    import labkit
    from labkit.models import wrap_model

    path = _model_path(out, "baseline", seed)
    if path.exists():
        import keras
        return wrap_model(keras.models.load_model(path))
    labkit.set_seed(seed)
    clf = labkit.train_model(data.x_train, data.y_train, nb_classes=data.nb_classes, epochs=CFG["epochs"],
                             progress=False)
    _save(clf, path)
    return clf


def _save(clf: Any, path: Path) -> None:
    """Save ``clf``'s Keras model to ``path`` atomically (another stage's process may be reading it)."""
    temp = path.with_name(f"{path.stem}.{os.getpid()}.keras")
    clf.model.save(temp)
    os.replace(temp, path)


def stage_evasion(seed: int, out: Path) -> dict[str, float]:
    """Notebooks 00-02 at ``seed``: baseline, both adversarial trainings, feature squeezing two ways."""
    import keras
    from art.attacks.evasion import FastGradientMethod
    from art.defences.preprocessor import FeatureSqueezing
    from art.defences.trainer import AdversarialTrainer, AdversarialTrainerMadryPGD
    from art.estimators.classification import KerasClassifier

    import labkit
    from labkit.models import build_model, wrap_model

    data = _data(seed)
    baseline = _baseline(data, seed, out)
    row = _scores(baseline, data, "baseline", double_eps=True)
    y_onehot = keras.utils.to_categorical(data.y_train, data.nb_classes)

    def fresh() -> Any:
        labkit.set_seed(seed)
        return wrap_model(build_model(data.input_shape, data.nb_classes, learning_rate=3e-3))

    robust = fresh()
    AdversarialTrainer(robust, attacks=FastGradientMethod(robust, eps=EPS), ratio=0.5).fit(
        data.x_train, y_onehot, nb_epochs=CFG["at_epochs"], batch_size=128)
    madry_model = fresh()
    madry = AdversarialTrainerMadryPGD(madry_model, nb_epochs=CFG["madry_epochs"], batch_size=128, eps=EPS,
                                       eps_step=EPS / 4, max_iter=5, num_random_init=1)
    madry.attack.set_params(batch_size=128)
    madry.fit(data.x_train, y_onehot)
    squeeze = FeatureSqueezing(clip_values=data.clip_values, bit_depth=1)
    reactive = KerasClassifier(model=baseline.model, clip_values=data.clip_values, use_logits=False,
                               preprocessing_defences=[squeeze])
    row |= _scores(robust, data, "adversarial_training", double_eps=True)
    row |= _scores(madry_model, data, "madry", double_eps=True)
    row |= _scores(reactive, data, "reactive")
    for name, make in _attacks(EPS).items():  # non-adaptive: crafted on the bare baseline
        x_adv = make(baseline).generate(data.x_test, y=data.y_test)
        for prefix, clf in [("reactive", reactive), ("adversarial_training", robust), ("madry", madry_model)]:
            row[f"{prefix}.nonadaptive_{name}_accuracy"] = labkit.accuracy(clf, x_adv, data.y_test)
    _save(robust, _model_path(out, "adversarial_training", seed))
    _save(madry_model, _model_path(out, "madry", seed))
    return row


def stage_worst_case(seed: int, out: Path) -> dict[str, float]:
    """02's optional worst case (FGSM, PGD, PGD with RESTARTS random starts) for the three defended models."""
    import keras
    from art.attacks.evasion import ProjectedGradientDescent
    from art.defences.preprocessor import FeatureSqueezing
    from art.estimators.classification import KerasClassifier

    import labkit
    from labkit.evasion import worst_case_accuracy
    from labkit.models import wrap_model

    data = _data(seed)
    paths = {name: _model_path(out, name, seed) for name in ("baseline", "adversarial_training", "madry")}
    if not all(p.exists() for p in paths.values()):
        raise FileNotFoundError(f"worst_case needs the evasion stage's models for seed {seed}: run --stages evasion")
    models = {name: wrap_model(keras.models.load_model(p)) for name, p in paths.items()}
    squeeze = FeatureSqueezing(clip_values=data.clip_values, bit_depth=1)
    models["reactive"] = KerasClassifier(model=models.pop("baseline").model, clip_values=data.clip_values,
                                         use_logits=False, preprocessing_defences=[squeeze])
    row = {}
    for name, clf in models.items():
        attacks = [make(clf) for make in _attacks(EPS).values()]
        attacks.append(ProjectedGradientDescent(clf, eps=EPS, eps_step=2.5 * EPS / PGD_STEPS, max_iter=PGD_STEPS,
                                                num_random_init=RESTARTS, batch_size=256, verbose=False))
        row[f"{name}.worst_case_accuracy"] = worst_case_accuracy(clf, attacks, data.x_test, data.y_test)
    return row


def stage_backdoor(seed: int, out: Path) -> dict[str, Any]:
    """Notebooks 03-04 at ``seed``: the backdoor, the poison sweep, Neural Cleanse and its mitigations."""
    from art.attacks.poisoning import PoisoningAttackBackdoor

    import labkit
    from labkit.neural_cleanse import DEFAULT_DEFENDER_FRACTION, NeuralCleanse
    from labkit.poisoning import Trigger, backdoor_scores, clean_subset, poison_dataset, poison_fraction_sweep

    target, fraction, max_drop = 0, 0.10, 0.05
    data = _data(seed)
    baseline = _baseline(data, seed, out)
    trigger = Trigger("square", size=3, value=1.0, corner="bottom-right")
    poisoned = poison_dataset(data.x_train, data.y_train, PoisoningAttackBackdoor(trigger), target_class=target,
                              poison_fraction=fraction, nb_classes=data.nb_classes, seed=seed)
    labkit.set_seed(seed)
    model = labkit.train_model(poisoned.x, poisoned.y, nb_classes=data.nb_classes, epochs=CFG["epochs"],
                              progress=False)

    def scores(clf: Any) -> dict[str, float]:
        return backdoor_scores(clf, data.x_test, data.y_test, target_class=target, trigger=trigger)

    before, row = scores(model), {}
    row |= {f"backdoor.{k}": v for k, v in before.items() if not k.endswith("abstain_rate")}
    row["baseline.trigger_attack_success_rate"] = scores(baseline)["attack_success_rate"]
    sweep = poison_fraction_sweep(data, (0.01, 0.03, 0.05), target_class=target, trigger=trigger, epochs=CFG["epochs"],
                                  seed=seed, progress=False)
    for _, r in sweep.iterrows():
        row[f"backdoor.sweep.{r['poison_fraction']:g}.attack_success_rate"] = float(r["attack_success_rate"])
        row[f"backdoor.sweep.{r['poison_fraction']:g}.clean_accuracy"] = float(r["clean_accuracy"])
    x_val, y_val = clean_subset(data.x_train, data.y_train, DEFAULT_DEFENDER_FRACTION, seed=seed)
    y_val_onehot = np.eye(data.nb_classes)[y_val]
    nc = dict(steps=CFG["nc_steps"], learning_rate=0.1, batch_size=32, seed=seed, progress=False)
    defence = NeuralCleanse(model)(model, **nc)
    defence.outlier_detection(x_val, y_val_onehot)
    clean_defence = NeuralCleanse(baseline)(baseline, **nc)
    clean_defence.outlier_detection(x_val, y_val_onehot)
    row["neural_cleanse.flags_target"] = float(target in defence.flagged_classes)
    row["neural_cleanse.flags_other_class"] = float(any(c != target for c in defence.flagged_classes))
    row["neural_cleanse.target_anomaly_index"] = float(defence.anomaly_index[target])
    row["neural_cleanse.clean_model_false_alarm"] = float(bool(clean_defence.flagged_classes))
    table = {"none": before}
    for name in ("unlearning", "pruning", "filtering"):
        mitigated = defence.copy()
        mitigated.mitigate(x_val, y_val_onehot, mitigation_types=[name],
                           **({"unlearning_epochs": 10} if name == "unlearning" else {}))
        table[name] = scores(mitigated)
        for key, value in table[name].items():
            row[f"neural_cleanse.{name}.{key}"] = value
    control = labkit.copy_classifier(model)
    control.fit(x_val, y_val_onehot, nb_epochs=10, batch_size=32)
    row["neural_cleanse.control.clean_accuracy"], row["neural_cleanse.control.attack_success_rate"] = (
        scores(control)["clean_accuracy"], scores(control)["attack_success_rate"])
    floor = before["clean_accuracy"] - max_drop
    kept = {n: s for n, s in table.items() if n != "none" and s["clean_accuracy"] >= floor}
    row["neural_cleanse.chosen"] = min(kept, key=lambda n: kept[n]["attack_success_rate"]) if kept else None
    return row


def describe(values: list[float]) -> dict[str, Any]:
    """Mean, standard deviation (ddof 1), min, max and the values themselves (rounded to 4 places)."""
    arr = np.asarray(values, dtype=float)
    return {"mean": round(float(arr.mean()), 4), "std": round(float(arr.std(ddof=1)), 4) if len(arr) > 1 else None,
            "min": round(float(arr.min()), 4), "max": round(float(arr.max()), 4), "n": len(arr),
            "values": [round(float(v), 4) for v in arr]}


def summarise(out: Path, build: Path) -> dict[str, Any]:
    """Collect every finished (stage, seed) file into ``<build>/key_claims.json``; return it."""
    runs: dict[int, dict[str, Any]] = {}
    seconds: dict[str, dict[int, float]] = {}
    for path in sorted(out.glob("*_seed*.json")):
        result = json.loads(path.read_text())
        runs.setdefault(result["seed"], {}).update(result["numbers"])
        seconds.setdefault(result["stage"], {})[result["seed"]] = result["seconds"]
    seeds = sorted(runs)
    keys = sorted({k for r in runs.values() for k in r})
    numbers, per_seed = {}, {}
    for key in keys:
        got = {s: runs[s][key] for s in seeds if key in runs[s]}
        per_seed[key] = got
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in got.values()):
            numbers[key] = describe(list(got.values())) | {"seeds": list(got)}
        else:
            numbers[key] = {"values": list(got.values()), "seeds": list(got)}
    summary = {
        "settings": {"dataset": "digits", "eps": EPS, "pgd_steps": PGD_STEPS, "restarts": RESTARTS,
                     "setting": "full (the notebooks' defaults)"},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "seeds_per_stage": {stage: sorted(s) for stage, s in seconds.items()},
        "stage_seconds": {stage: {str(s): round(t, 1) for s, t in v.items()} for stage, v in seconds.items()},
        "numbers": numbers,
        "claims": summarise_claims(per_seed, CLAIMS),
    }
    temp = build / f"key_claims.json.{os.getpid()}.tmp"
    temp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(temp, build / "key_claims.json")  # atomic: stages in two processes both summarise
    return summary


def main(argv: list[str] | None = None) -> None:
    """Run the chosen stages for the chosen seeds (skipping finished ones), then write the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--summarise", action="store_true", help="only rebuild key_claims.json from finished runs")
    parser.add_argument("--smoke", action="store_true", help="tiny data and epochs: checks the code, not the key")
    parser.add_argument("--redo", action="store_true", help="rerun (stage, seed) pairs that already finished")
    args = parser.parse_args(argv)
    if args.smoke:
        CFG.update(SMOKE)
    import labkit

    build = labkit.out_dir()
    out = build / "key_claims"
    out.mkdir(parents=True, exist_ok=True)
    runners = {"evasion": stage_evasion, "backdoor": stage_backdoor, "worst_case": stage_worst_case}
    for stage in [] if args.summarise else args.stages:
        for seed in args.seeds:
            path = out / f"{stage}_seed{seed}.json"
            if path.exists() and not args.redo:
                continue
            start = time.perf_counter()
            numbers = runners[stage](seed, out)
            took = time.perf_counter() - start
            path.write_text(json.dumps({"stage": stage, "seed": seed, "seconds": took, "numbers": numbers}, indent=1))
            print(f"{stage} seed {seed}: {took:.0f} s", flush=True)
            summarise(out, build)
    summary = summarise(out, build)
    for claim in summary["claims"]:
        print(f"[{claim['verdict']}] {claim['id']}: {claim['measured']}")
    print("wrote", build / "key_claims.json")


if __name__ == "__main__":
    main()
