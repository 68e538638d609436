"""Benchmark labkit's Neural Cleanse: speed against stock ART, and detection over seeds.

1. Speed: optimisation steps per second of ART 1.20.1's ``KerasNeuralCleanse`` and of labkit's compiled search
   on the same backdoored model and validation data. ART optimises one class at a time and each of its steps
   is a full pass over the validation data; labkit's step updates every class at once on one batch. Both
   "class-steps per second" (the goal: labkit >= 10x ART) and the fairer "class-images per second" (images
   pushed through the model's forward and backward pass, per class) are reported.
2. Detection: for each seed, train a clean model and a backdoored model (10% poison, 3x3 square trigger in the
   bottom-right corner, target class 0) on that seed's split, run Neural Cleanse on both, and count how often
   the target is flagged with anomaly index > 2 (detection rate) and how often the clean model gets any flag
   (false-positive rate). Unlearning is applied to each backdoored model too.

Writes ``<build>/neural_cleanse_eval.json`` (``labkit.out_dir()``). Usage::

    .venv/bin/python benchmarks/neural_cleanse.py            # full setting: seeds 0-4, default data
    .venv/bin/python benchmarks/neural_cleanse.py --fast     # smoke setting: 2 seeds, small data, few steps
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

TARGET_CLASS = 0
POISON_FRACTION = 0.10


def settings(fast: bool) -> dict[str, Any]:
    """The benchmark's settings: the notebooks' full setting, or a small smoke setting."""
    if fast:
        return {"seeds": [0, 1], "n_train": 400, "n_test": 200, "epochs": 5, "steps": 60, "art_steps": 2,
                "speed_steps": 40, "defender_fraction": 0.15, "unlearning_epochs": 2}
    return {"seeds": [0, 1, 2, 3, 4], "n_train": None, "n_test": None, "epochs": 30, "steps": 300, "art_steps": 3,
            "speed_steps": 300, "defender_fraction": 0.15, "unlearning_epochs": 10}


def train_pair(seed: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Train the clean and the backdoored model of one seed; return them with the data and the defender's set."""
    from art.attacks.poisoning import PoisoningAttackBackdoor

    import labkit
    from labkit.poisoning import Trigger, clean_subset, poison_dataset

    data = labkit.load_dataset(seed=seed, n_train=cfg["n_train"], n_test=cfg["n_test"])
    trigger = Trigger()
    labkit.set_seed(seed)
    clean = labkit.train_model(data.x_train, data.y_train, epochs=cfg["epochs"], progress=False)
    poisoned_data = poison_dataset(data.x_train, data.y_train, PoisoningAttackBackdoor(trigger),
                                   target_class=TARGET_CLASS, poison_fraction=POISON_FRACTION, seed=seed)
    labkit.set_seed(seed)
    poisoned = labkit.train_model(poisoned_data.x, poisoned_data.y, epochs=cfg["epochs"], progress=False)
    x_val, y_val = clean_subset(data.x_train, data.y_train, cfg["defender_fraction"], seed=seed)
    return {"data": data, "trigger": trigger, "clean": clean, "poisoned": poisoned, "x_val": x_val, "y_val": y_val}


def art_steps_per_second(models: dict[str, Any], steps: int) -> dict[str, float]:
    """Time stock ART's per-class optimisation (its printing silenced) after a one-step warm-up."""
    from art.defences.transformer.poisoning import NeuralCleanse as ArtNeuralCleanse

    classifier, x_val = models["poisoned"], models["x_val"]
    y_val = np.eye(10, dtype=np.float32)[models["y_val"]]
    target = np.eye(10)[TARGET_CLASS]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ArtNeuralCleanse(classifier)(classifier, steps=1, batch_size=32).generate_backdoor(x_val, y_val, target)
        stock = ArtNeuralCleanse(classifier)(classifier, steps=steps, batch_size=32)
        start = time.perf_counter()
        stock.generate_backdoor(x_val, y_val, target)
        seconds = time.perf_counter() - start
    images_per_step = (len(x_val) // 32) * 32
    return {"steps": steps, "seconds": seconds, "class_steps_per_second": steps / seconds,
            "class_images_per_second": steps * images_per_step / seconds, "images_per_class_step": images_per_step,
            "learning_rate_after_reset": float(stock.opt.learning_rate)}


def labkit_steps_per_second(models: dict[str, Any], steps: int) -> dict[str, float]:
    """Time labkit's compiled search over all classes (early stop off) after a warm-up run that compiles it."""
    from labkit._nc_optimize import TriggerSearch

    model = models["poisoned"].model
    search = TriggerSearch(model, models["x_val"].shape[1:], range(10), nb_classes=10, early_stop=False)
    search.run(models["x_val"], 10, progress=False)  # traces and compiles the step
    result = search.run(models["x_val"], steps, progress=False)
    return {"steps": result.steps, "seconds": result.seconds, "classes": 10,
            "class_steps_per_second": 10 * result.steps / result.seconds,
            "class_images_per_second": 10 * result.steps * search.batch_size / result.seconds,
            "images_per_class_step": search.batch_size}


def evaluate_seed(seed: int, models: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Run Neural Cleanse on the clean and the backdoored model of one seed, and unlearning on the backdoored one."""
    import labkit
    from labkit.neural_cleanse import NeuralCleanse
    from labkit.poisoning import backdoor_scores

    data, trigger, x_val, y_val = models["data"], models["trigger"], models["x_val"], models["y_val"]
    row: dict[str, Any] = {"seed": seed, "defender_images": len(x_val)}
    for kind in ("poisoned", "clean"):
        classifier = models[kind]
        defence = NeuralCleanse(classifier)(classifier, steps=cfg["steps"], seed=seed, progress=False)
        found = defence.detect(x_val, y_val)
        row[kind] = {
            "flagged_classes": found.flagged_classes, "anomaly_index": np.round(found.anomaly_index, 4).tolist(),
            "l1_norms": np.round(found.l1_norms, 3).tolist(), "detection_seconds": round(found.seconds, 2),
            "steps": found.steps, **{k: round(v, 4) for k, v in backdoor_scores(
                classifier, data.x_test, data.y_test, target_class=TARGET_CLASS, trigger=trigger).items()
                if k in ("clean_accuracy", "attack_success_rate")}}
        if kind == "poisoned":
            hit = TARGET_CLASS in found.flagged_classes and found.anomaly_index[TARGET_CLASS] > 2
            row["target_flagged"] = bool(hit)
            row["target_anomaly_index"] = round(float(found.anomaly_index[TARGET_CLASS]), 4)
            mitigated = defence.copy()
            mitigated.mitigate(x_val, y_val, ["unlearning"], unlearning_epochs=cfg["unlearning_epochs"])
            scores = backdoor_scores(mitigated, data.x_test, data.y_test, target_class=TARGET_CLASS, trigger=trigger)
            row["unlearning"] = {"clean_accuracy": round(scores["clean_accuracy"], 4),
                                 "attack_success_rate": round(scores["attack_success_rate"], 4)}
        else:
            row["clean_model_flagged"] = bool(found.flagged_classes)
    row["clean_model_clean_accuracy"] = round(labkit.accuracy(models["clean"], data.x_test, data.y_test), 4)
    return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a summary and write the JSON file; return what was written."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="smoke setting: 2 seeds, small data, few steps")
    parser.add_argument("--out", type=Path, default=None, help="output file (default <build>/neural_cleanse_eval.json)")
    args = parser.parse_args(argv)
    from tqdm.auto import tqdm

    import labkit

    cfg = settings(args.fast)
    started = time.perf_counter()
    rows, speed = [], {}
    for seed in tqdm(cfg["seeds"], desc="seeds", unit="seed"):
        models = train_pair(seed, cfg)
        if not speed:
            speed = {"art": art_steps_per_second(models, cfg["art_steps"]),
                     "labkit": labkit_steps_per_second(models, cfg["speed_steps"])}
            for key in ("class_steps_per_second", "class_images_per_second"):
                speed[f"ratio_{key}"] = speed["labkit"][key] / speed["art"][key]
            print(f"stock ART: {speed['art']['class_steps_per_second']:.2f} class-steps/s "
                  f"(learning rate after reset: {speed['art']['learning_rate_after_reset']}) | labkit: "
                  f"{speed['labkit']['class_steps_per_second']:.0f} class-steps/s | ratio "
                  f"{speed['ratio_class_steps_per_second']:.0f}x (per image processed: "
                  f"{speed['ratio_class_images_per_second']:.0f}x)", flush=True)
        rows.append(evaluate_seed(seed, models, cfg))
        row = rows[-1]
        print(f"seed {seed}: backdoored ASR {row['poisoned']['attack_success_rate']:.3f}, flagged "
              f"{row['poisoned']['flagged_classes']} (target index {row['target_anomaly_index']:.2f}) | clean model "
              f"flagged {row['clean']['flagged_classes']} | unlearning ASR "
              f"{row['unlearning']['attack_success_rate']:.3f}",
              flush=True)
    result = {
        "setting": "fast" if args.fast else "full", "settings": cfg, "target_class": TARGET_CLASS,
        "poison_fraction": POISON_FRACTION, "trigger": "square:size=3,value=1.0,corner=bottom-right",
        "detection_rate": float(np.mean([r["target_flagged"] for r in rows])),
        "false_positive_rate": float(np.mean([r["clean_model_flagged"] for r in rows])),
        "detection_seconds_max": max(max(r["poisoned"]["detection_seconds"], r["clean"]["detection_seconds"])
                                     for r in rows),
        "speed": speed, "speed_ratio": speed["ratio_class_steps_per_second"], "seeds": rows,
        "total_seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "load_average": list(os.getloadavg()), "python": platform.python_version(),
                    "note": "timings on a shared CPU are noisy"},
    }
    out = args.out or labkit.out_dir() / "neural_cleanse_eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"detection rate {result['detection_rate']:.2f}, false-positive rate {result['false_positive_rate']:.2f}, "
          f"slowest detection {result['detection_seconds_max']:.1f} s, speed ratio {result['speed_ratio']:.0f}x "
          f"-> {out}")
    return result


if __name__ == "__main__":
    main()
