"""Benchmark labkit's Neural Cleanse: speed against stock ART, and detection over seeds, on a chosen setting.

1. Speed: passes over the defender's data ("epochs", what ART and labkit both count as ``steps``) per second of
   ART 1.20.1's ``KerasNeuralCleanse`` (one class at a time) and of labkit's compiled search (all classes at
   once), on the same backdoored model and defender's data, per class; and images pushed through the model's
   forward and backward pass per second, per class.
2. Detection: for each seed, train a clean model and a backdoored model (``--poison-fraction`` of the other
   classes' images stamped with ``--trigger`` and relabelled ``--target``) on that seed's split of
   ``--dataset``, run Neural Cleanse on both with the notebooks' defaults, and count how often the target is
   flagged (detection rate) and how often the clean model gets any flag (false-positive rate). The target's
   anomaly index is recorded per seed (goal: >= 3 on every seed). Unlearning, pruning and filtering are
   applied to each backdoored model, with the real trigger's ASR after each, whether the mitigation itself
   said it removed the backdoor, and the share of honest test images that filtering refuses.

The data set, target and trigger are options and are recorded in the JSON, with every setting. Writes
``<build>/neural_cleanse_eval.json`` at the defaults and ``<build>/neural_cleanse_eval-<dataset>-target<k>-<kind>.json``
otherwise (``labkit.out_dir()``; ``--out`` overrides). Usage::

    .venv/bin/python benchmarks/neural_cleanse.py                      # defaults: digits, target 0, 3x3 square
    .venv/bin/python benchmarks/neural_cleanse.py --target 7 --trigger pattern    # ART's pattern trigger
    .venv/bin/python benchmarks/neural_cleanse.py --dataset my.npz     # an .npz in Keras's layout
    .venv/bin/python benchmarks/neural_cleanse.py --write-mnist-sized /tmp/digits28.npz   # make MNIST-sized data
    .venv/bin/python benchmarks/neural_cleanse.py --fast               # smoke setting: 2 seeds, small data
    .venv/bin/python benchmarks/neural_cleanse.py --seeds 3 --out /tmp/s3.json    # one seed; run several at once,
    .venv/bin/python benchmarks/neural_cleanse.py --merge /tmp/s*.json            # then merge them into one JSON

A trigger is a ``labkit.poisoning.Trigger`` spec: ``square:size=3,corner=bottom-right`` (a single pixel is
``square:size=1``), or ``pattern`` (ART's ``add_pattern_bd`` checkerboard, which has no size or corner).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TARGET = 0
DEFAULT_TRIGGER = "square:size=3,value=1.0,corner=bottom-right"
DEFAULT_DATASET = "digits"
POISON_FRACTION = 0.10


def settings(fast: bool, steps: int | None = None, defender_fraction: float | None = None) -> dict[str, Any]:
    """The benchmark's settings: the notebooks' full setting, or a small smoke setting.

    :param fast: the smoke setting.
    :param steps: the trigger search's budget in passes over the defender's data (default: labkit's default).
    :param defender_fraction: the share of the clean training images the defender has (default: labkit's
        ``DEFAULT_DEFENDER_FRACTION``, notebook 04's).
    """
    from labkit.neural_cleanse import DEFAULT_DEFENDER_FRACTION, DEFAULT_STEPS

    cfg = ({"seeds": [0, 1], "n_train": 400, "n_test": 200, "epochs": 5, "steps": 8, "art_steps": 1,
            "speed_steps": 5, "defender_fraction": DEFAULT_DEFENDER_FRACTION, "unlearning_epochs": 2} if fast else
           {"seeds": [0, 1, 2, 3, 4], "n_train": None, "n_test": None, "epochs": 20, "steps": DEFAULT_STEPS,
            "art_steps": 2, "speed_steps": 20, "defender_fraction": DEFAULT_DEFENDER_FRACTION,
            "unlearning_epochs": 10})
    if steps is not None:
        cfg["steps"] = int(steps)
    if defender_fraction is not None:
        cfg["defender_fraction"] = float(defender_fraction)
    return cfg


def load_data(dataset: str, name: str, seed: int, cfg: dict[str, Any]) -> Any:
    """Load ``dataset``: a ``labkit.load_dataset`` name, or the path of an .npz in Keras's layout (read as ``name``)."""
    import labkit

    if dataset.endswith(".npz") or Path(dataset).is_file():
        return labkit.load_dataset(name, path=dataset, seed=seed, n_train=cfg["n_train"], n_test=cfg["n_test"])
    return labkit.load_dataset(dataset, seed=seed, n_train=cfg["n_train"], n_test=cfg["n_test"])


def write_mnist_sized(path: Path, *, n_train: int = 8000, n_test: int = 2000, seed: int = 0) -> Path:
    """Write an MNIST-sized .npz made from scikit-learn's digits: 28x28 uint8, shifted and noisy copies.

    No data set can be downloaded here; this gives the size and resolution of MNIST (not its images):
    each 8x8 digit is upsampled 3x to 24x24, padded to 28x28, shifted by up to 2 pixels and given noise.

    :param path: the .npz to write (x_train, y_train, x_test, y_test).
    :param n_train: training images.
    :param n_test: test images.
    :param seed: seed of the choice of digits, the shifts and the noise.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, len(digits.images), n_train + n_test)
    x = np.pad(np.kron(digits.images[chosen] / 16.0, np.ones((3, 3))), ((0, 0), (2, 2), (2, 2)))
    for i, (dy, dx) in enumerate(rng.integers(-2, 3, size=(len(x), 2))):
        x[i] = np.roll(x[i], (dy, dx), axis=(0, 1))
    x = np.clip(x + rng.normal(0.0, 0.05, x.shape), 0.0, 1.0)
    images, labels = (x * 255).round().astype(np.uint8), digits.target[chosen].astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x_train=images[:n_train], y_train=labels[:n_train], x_test=images[n_train:],
                        y_test=labels[n_train:])
    return path


def train_pair(seed: int, cfg: dict[str, Any], setting: dict[str, Any]) -> dict[str, Any]:
    """Train the clean and the backdoored model of one seed; return them with the data and the defender's set."""
    from art.attacks.poisoning import PoisoningAttackBackdoor

    import labkit
    from labkit.poisoning import Trigger, clean_subset, poison_dataset

    data = load_data(setting["dataset"], setting["dataset_name"], seed, cfg)
    trigger = Trigger.from_spec(setting["trigger"])
    labkit.set_seed(seed)
    clean = labkit.train_model(data.x_train, data.y_train, nb_classes=data.nb_classes, epochs=cfg["epochs"],
                               progress=False)
    poisoned_data = poison_dataset(data.x_train, data.y_train, PoisoningAttackBackdoor(trigger),
                                   target_class=setting["target_class"], poison_fraction=setting["poison_fraction"],
                                   nb_classes=data.nb_classes, seed=seed)
    labkit.set_seed(seed)
    poisoned = labkit.train_model(poisoned_data.x, poisoned_data.y, nb_classes=data.nb_classes, epochs=cfg["epochs"],
                                  progress=False)
    x_val, y_val = clean_subset(data.x_train, data.y_train, cfg["defender_fraction"], seed=seed)
    return {"data": data, "trigger": trigger, "clean": clean, "poisoned": poisoned, "x_val": x_val, "y_val": y_val}


def art_speed(models: dict[str, Any], epochs: int, target: int) -> dict[str, float]:
    """Time stock ART's per-class optimisation (its printing silenced) after a one-pass warm-up."""
    from art.defences.transformer.poisoning import NeuralCleanse as ArtNeuralCleanse

    classifier, x_val, nb_classes = models["poisoned"], models["x_val"], models["data"].nb_classes
    y_val = np.eye(nb_classes, dtype=np.float32)[models["y_val"]]
    target_onehot = np.eye(nb_classes)[target]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ArtNeuralCleanse(classifier)(classifier, steps=1, batch_size=32).generate_backdoor(x_val, y_val,
                                                                                          target_onehot)
        stock = ArtNeuralCleanse(classifier)(classifier, steps=epochs, batch_size=32)
        start = time.perf_counter()
        stock.generate_backdoor(x_val, y_val, target_onehot)
        seconds = time.perf_counter() - start
    images_per_epoch = (len(x_val) // 32) * 32
    return {"epochs": epochs, "seconds": seconds, "class_epochs_per_second": epochs / seconds,
            "class_images_per_second": epochs * images_per_epoch / seconds, "images_per_epoch": images_per_epoch,
            "learning_rate_after_reset": float(stock.opt.learning_rate)}


def labkit_speed(models: dict[str, Any], epochs: int) -> dict[str, float]:
    """Time labkit's compiled search over all classes (early stop off) after a warm-up run that compiles it."""
    from labkit._nc_optimize import TriggerSearch

    k = models["data"].nb_classes
    search = TriggerSearch(models["poisoned"].model, models["x_val"].shape[1:], range(k), nb_classes=k,
                           early_stop=False)
    search.run(models["x_val"], 1, progress=False)  # traces and compiles the step
    result = search.run(models["x_val"], epochs, progress=False)
    return {"epochs": result.epochs, "steps": result.steps, "seconds": result.seconds, "classes": k,
            "class_epochs_per_second": k * result.epochs / result.seconds,
            "class_images_per_second": k * result.steps * search.batch_size / result.seconds,
            "images_per_epoch": result.steps // result.epochs * search.batch_size}


def _scores(classifier: Any, models: dict[str, Any], target: int) -> dict[str, float]:
    from labkit.poisoning import backdoor_scores

    data = models["data"]
    scores = backdoor_scores(classifier, data.x_test, data.y_test, target_class=target, trigger=models["trigger"])
    return {k: round(v, 4) for k, v in scores.items()}


def _detect(classifier: Any, models: dict[str, Any], cfg: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    from labkit.neural_cleanse import NeuralCleanse

    defence = NeuralCleanse(classifier)(classifier, steps=cfg["steps"], seed=seed, progress=False)
    found = defence.detect(models["x_val"], models["y_val"])
    return defence, {"flagged_classes": found.flagged_classes,
                     "anomaly_index": np.round(found.anomaly_index, 4).tolist(),
                     "l1_norms": np.round(found.l1_norms, 3).tolist(), "detection_seconds": round(found.seconds, 2),
                     "epochs": found.epochs, "steps": found.steps, "stopped_early": found.stopped_early}


def _mitigations(defence: Any, models: dict[str, Any], cfg: dict[str, Any], target: int) -> dict[str, Any]:
    """Apply each mitigation to a fresh copy; return the real trigger's scores and the mitigation's own verdict."""
    rows = {}
    for name in ("unlearning", "pruning", "filtering"):
        mitigated = defence.copy()
        kwargs = {"unlearning_epochs": cfg["unlearning_epochs"]} if name == "unlearning" else {}
        report = mitigated.mitigate(models["x_val"], models["y_val"], [name], **kwargs).get(name, {})
        rows[name] = {**_scores(mitigated, models, target),
                      **{k: report[k] for k in ("backdoor_removed", "reversed_trigger_success", "units_pruned",
                                                "clean_refusal_rate") if k in report}}
    return rows


def evaluate_seed(seed: int, models: dict[str, Any], cfg: dict[str, Any], target: int) -> dict[str, Any]:
    """Run Neural Cleanse on the clean and the backdoored model of one seed, and each mitigation on the backdoored."""
    import labkit

    row: dict[str, Any] = {"seed": seed, "defender_images": len(models["x_val"])}
    defence, row["poisoned"] = _detect(models["poisoned"], models, cfg, seed)
    row["poisoned"].update({k: v for k, v in _scores(models["poisoned"], models, target).items()
                            if k in ("clean_accuracy", "attack_success_rate")})
    row["target_flagged"] = target in row["poisoned"]["flagged_classes"]
    row["target_anomaly_index"] = row["poisoned"]["anomaly_index"][target]
    row["other_classes_flagged"] = [c for c in row["poisoned"]["flagged_classes"] if c != target]
    if row["target_flagged"]:
        row["mitigations"] = _mitigations(defence, models, cfg, target)
    _, row["clean"] = _detect(models["clean"], models, cfg, seed)
    row["clean_model_flagged"] = bool(row["clean"]["flagged_classes"])
    row["clean_model_max_anomaly_index"] = max(
        (i for i, n in zip(row["clean"]["anomaly_index"], row["clean"]["l1_norms"])
         if n <= np.median(row["clean"]["l1_norms"])), default=0.0)
    data = models["data"]
    row["clean_model_clean_accuracy"] = round(labkit.accuracy(models["clean"], data.x_test, data.y_test), 4)
    return row


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    index = [r["target_anomaly_index"] for r in rows]
    summary = {"detection_rate": float(np.mean([r["target_flagged"] for r in rows])),
               "false_positive_rate": float(np.mean([r["clean_model_flagged"] for r in rows])),
               "target_anomaly_index_min": min(index), "target_anomaly_index_per_seed": index,
               "goal_index_at_least_3_every_seed": bool(min(index) >= 3 and not any(r["clean_model_flagged"]
                                                                                     for r in rows)),
               "detection_seconds_max": max(max(r["poisoned"]["detection_seconds"], r["clean"]["detection_seconds"])
                                            for r in rows),
               "search_epochs": [[r["poisoned"]["epochs"], r["clean"]["epochs"]] for r in rows]}
    for name in ("unlearning", "pruning", "filtering"):
        done = [r["mitigations"][name] for r in rows if "mitigations" in r]
        if done:
            summary[name] = {"attack_success_rate": [d["attack_success_rate"] for d in done],
                             "clean_accuracy": [d["clean_accuracy"] for d in done],
                             "backdoor_removed_by_its_own_check": [d.get("backdoor_removed") for d in done],
                             "clean_abstain_rate": [d["clean_abstain_rate"] for d in done]}
    return summary


def _default_out(setting: dict[str, Any]) -> Path:
    import labkit

    if (setting["dataset"], setting["target_class"], setting["trigger"]) == (DEFAULT_DATASET, DEFAULT_TARGET,
                                                                             DEFAULT_TRIGGER):
        return labkit.out_dir() / "neural_cleanse_eval.json"
    stem = Path(setting["dataset"]).stem
    name = f"neural_cleanse_eval-{stem}-target{setting['target_class']}-{setting['trigger_kind']}.json"
    return labkit.out_dir() / name


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="smoke setting: 2 seeds, small data, few passes")
    parser.add_argument("--dataset", default=DEFAULT_DATASET,
                        help="a labkit.load_dataset name (digits, ...) or an .npz path (default digits)")
    parser.add_argument("--dataset-name", default="mnist",
                        help="which data set an .npz holds, for its class names (default mnist)")
    parser.add_argument("--target", type=int, default=DEFAULT_TARGET, help="the backdoor's target class")
    parser.add_argument("--trigger", default=DEFAULT_TRIGGER,
                        help="a Trigger spec: square:size=3,corner=top-left | square:size=1 (a pixel) | pattern")
    parser.add_argument("--poison-fraction", type=float, default=POISON_FRACTION)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default 0-4; 0-1 with --fast)")
    parser.add_argument("--steps", type=int, default=None,
                        help="the trigger search's budget, in passes over the defender's data")
    parser.add_argument("--defender-fraction", type=float, default=None,
                        help="the defender's share of the clean training images")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed comparison with stock ART")
    parser.add_argument("--write-mnist-sized", type=Path, default=None, metavar="NPZ",
                        help="write MNIST-sized data (8,000 28x28 images made from digits) to NPZ and exit")
    parser.add_argument("--out", type=Path, default=None, help="output file (default under <build>/, named by setting)")
    parser.add_argument("--merge", type=Path, nargs="+", default=None, metavar="JSON",
                        help="combine the JSON files of runs of single seeds (--seeds N --out ...) into one and exit")
    return parser.parse_args(argv)


def _setting(args: argparse.Namespace) -> dict[str, Any]:
    """The data set, target and trigger of this run, checked, as recorded in the JSON."""
    from labkit.poisoning import Trigger, check_class, check_poison_fraction

    trigger = Trigger.from_spec(args.trigger if ":" in args.trigger else args.trigger + ":")
    check_poison_fraction(args.poison_fraction)
    check_class(args.target, 10, what="--target")  # every labkit data set has 10 classes
    is_path = args.dataset.endswith(".npz") or Path(args.dataset).is_file()
    return {"dataset": args.dataset, "dataset_name": args.dataset_name if is_path else args.dataset,
            "target_class": args.target, "trigger": trigger.spec, "trigger_kind": trigger.kind,
            "poison_fraction": args.poison_fraction}


def _write(out: Path, fast: bool, setting: dict[str, Any], cfg: dict[str, Any], rows: list[dict[str, Any]],
           speed: dict[str, Any], total_seconds: float, **extra: Any) -> dict[str, Any]:
    """Write the JSON of the seeds done so far (``seeds_done`` of ``settings["seeds"]``); return it."""
    result = {"setting": "fast" if fast else "full", **setting, "settings": cfg,
              "seeds_done": [r["seed"] for r in rows], "complete": len(rows) == len(cfg["seeds"]), **_summary(rows),
              "speed": speed, "seeds": rows, "total_seconds": round(total_seconds, 1), **extra,
              "machine": {"cpus": os.cpu_count(), "load_average": list(os.getloadavg()),
                          "python": platform.python_version(), "note": "timings on a shared CPU are noisy"}}
    result["goal_index_at_least_3_every_seed"] = result["complete"] and result["goal_index_at_least_3_every_seed"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


SETTING_KEYS = ("dataset", "dataset_name", "target_class", "trigger", "trigger_kind", "poison_fraction")


def merge(paths: list[Path], out: Path | None = None) -> dict[str, Any]:
    """Combine runs of some seeds each (``--seeds``, run side by side) into the one JSON a single run would write.

    The runs must share the data set, target, trigger and every setting but the seeds, and no seed may appear
    twice. The merged file goes where a run of that setting writes (``--out`` overrides) and records the files
    it came from; its ``total_seconds`` is the sum of the runs' (they may have run at the same time).

    :param paths: the runs' JSON files.
    :param out: where to write (default: the setting's own name under <build>/).
    """
    runs = [json.loads(Path(p).read_text()) for p in paths]
    if not runs:
        raise SystemExit("--merge needs the JSON files of the runs to combine")
    first = runs[0]
    fixed = lambda r: ([r.get(k) for k in ("setting", *SETTING_KEYS)],  # noqa: E731
                       {k: v for k, v in r["settings"].items() if k != "seeds"})
    for path, run in zip(paths, runs):
        if fixed(run) != fixed(first):
            raise SystemExit(f"{path}: not the same data set, target, trigger and settings as {paths[0]}: "
                             "only runs that differ in their seeds can be merged")
    rows = sorted((row for run in runs for row in run["seeds"]), key=lambda row: row["seed"])
    seeds = [row["seed"] for row in rows]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"a seed appears in more than one run ({seeds}): merge each seed once")
    planned = sorted({seed for run in runs for seed in run["settings"]["seeds"]})
    setting = {k: first[k] for k in SETTING_KEYS}
    speed = next((run["speed"] for run in runs if run.get("speed")), {})
    out = out or _default_out(setting)
    return _write(out, first["setting"] == "fast", setting, {**first["settings"], "seeds": planned}, rows, speed,
                  sum(run.get("total_seconds", 0.0) for run in runs), merged_from=[str(p) for p in paths])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a summary and write the JSON file; return what was written."""
    args = _parse(argv)
    if args.merge:
        result = merge(args.merge, args.out)
        print(f"merged seeds {result['seeds_done']}: target index {result['target_anomaly_index_per_seed']}, "
              f"clean model flagged in {result['false_positive_rate']:.0%} -> {args.out or _default_out(result)}")
        return result
    if args.write_mnist_sized:
        print("wrote", write_mnist_sized(args.write_mnist_sized))
        return {}
    from tqdm.auto import tqdm

    setting = _setting(args)
    cfg = settings(args.fast, args.steps, args.defender_fraction)
    if args.seeds:
        cfg["seeds"] = list(args.seeds)
    started = time.perf_counter()
    rows, speed = [], {}
    out = args.out or _default_out(setting)
    for seed in tqdm(cfg["seeds"], desc="seeds", unit="seed"):
        models = train_pair(seed, cfg, setting)
        if not speed and not args.no_speed:
            speed = {"art": art_speed(models, cfg["art_steps"], setting["target_class"]),
                     "labkit": labkit_speed(models, cfg["speed_steps"])}
            for key in ("class_epochs_per_second", "class_images_per_second"):
                speed[f"ratio_{key}"] = speed["labkit"][key] / speed["art"][key]
            print(f"stock ART: {speed['art']['class_epochs_per_second']:.3f} class-epochs/s (learning rate after "
                  f"reset: {speed['art']['learning_rate_after_reset']}) | labkit: "
                  f"{speed['labkit']['class_epochs_per_second']:.1f} class-epochs/s | ratio "
                  f"{speed['ratio_class_epochs_per_second']:.0f}x", flush=True)
        rows.append(evaluate_seed(seed, models, cfg, setting["target_class"]))
        row = rows[-1]
        print(f"seed {seed}: backdoored ASR {row['poisoned']['attack_success_rate']:.3f}, flagged "
              f"{row['poisoned']['flagged_classes']} (target index {row['target_anomaly_index']:.2f}, "
              f"{row['poisoned']['epochs']} passes) | clean model flagged {row['clean']['flagged_classes']} "
              f"(max index {row['clean_model_max_anomaly_index']:.2f})", flush=True)
        _write(out, args.fast, setting, cfg, rows, speed, time.perf_counter() - started)  # a killed run keeps its seeds
    result = _write(out, args.fast, setting, cfg, rows, speed, time.perf_counter() - started)
    print(f"detection rate {result['detection_rate']:.2f}, false-positive rate {result['false_positive_rate']:.2f}, "
          f"target index min {result['target_anomaly_index_min']:.2f}, slowest detection "
          f"{result['detection_seconds_max']:.1f} s -> {out}")
    return result


if __name__ == "__main__":
    main()
