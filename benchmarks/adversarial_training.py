"""Benchmark adversarial training: plain training, ART's trainers and labkit's compiled FGSM trainer.

On the same data (default digits, 16x16) and with the settings of notebook 02 (eps 0.11, ratio 0.5, batch size
128, learning rate 3e-3, 15 epochs; Madry: 10 epochs of 5 PGD steps), for each seed this trains from scratch:

1. plain training (Keras ``fit``, what ``labkit.train_model`` does);
2. ART's ``AdversarialTrainer`` with ``FastGradientMethod`` (ratio 0.5);
3. labkit's ``FastAdversarialTrainer`` (the same recipe compiled into one ``tf.function`` step);
4. ART's ``AdversarialTrainerMadryPGD`` (first seed only: it is the slowest and only its time is compared).

It reports the wall time of each and its ratio to plain training (the goal: labkit's path <= 3x plain), and the
clean, FGSM and PGD test accuracy of each model. "Equal robustness" is checked on the FGSM accuracy at eps
averaged over the seeds: labkit's mean and ART's must agree within ``--tolerance`` (the two differ only by
chance: which images each batch attacks).

Writes ``<build>/adversarial_training_bench.json`` (``labkit.out_dir()``). Usage::

    .venv/bin/python benchmarks/adversarial_training.py            # full setting: seeds 0-2, default data
    .venv/bin/python benchmarks/adversarial_training.py --fast     # smoke setting: 1 seed, small data, 2 epochs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

EPS = 0.11  # notebook 01's EPS (evasion.eps) for the default data
os.environ.setdefault("TQDM_DISABLE", "1")  # ART's trainers draw progress bars; keep the printed summary readable


def settings(fast: bool, seeds: list[int] | None) -> dict[str, Any]:
    """The benchmark's settings: notebook 02's full setting, or a small smoke setting."""
    cfg = {"eps": EPS, "ratio": 0.5, "batch_size": 128, "learning_rate": 3e-3, "pgd_steps": 20}
    if fast:
        cfg.update(seeds=[0], n_train=400, n_test=200, epochs=2, madry_epochs=1, madry_steps=3, pgd_steps=5)
    else:
        cfg.update(seeds=[0, 1, 2], n_train=None, n_test=None, epochs=15, madry_epochs=10, madry_steps=5)
    if seeds:
        cfg["seeds"] = seeds
    return cfg


def timed(train: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``train()`` and return its result with the wall time in seconds."""
    start = time.perf_counter()
    result = train()
    return result, time.perf_counter() - start


def evaluate(classifier: Any, data: Any, cfg: dict[str, Any]) -> dict[str, float]:
    """Return clean, FGSM and PGD accuracy of ``classifier`` on the test split at the benchmark's eps."""
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent

    import labkit
    from labkit.evasion import accuracy_under_attack

    eps, steps = cfg["eps"], cfg["pgd_steps"]
    pgd = ProjectedGradientDescent(classifier, eps=eps, eps_step=2.5 * eps / steps, max_iter=steps, batch_size=256,
                                   verbose=False)
    return {"clean_accuracy": labkit.accuracy(classifier, data.x_test, data.y_test),
            "fgsm_accuracy": accuracy_under_attack(classifier, FastGradientMethod(classifier, eps=eps, batch_size=256),
                                                   data.x_test, data.y_test),
            "pgd_accuracy": accuracy_under_attack(classifier, pgd, data.x_test, data.y_test)}


def run_seed(seed: int, cfg: dict[str, Any], madry: bool) -> dict[str, Any]:
    """Train every method once on this seed's split; return times and accuracies."""
    import keras
    from art.attacks.evasion import FastGradientMethod
    from art.defences.trainer import AdversarialTrainer, AdversarialTrainerMadryPGD

    import labkit
    from labkit.models import build_model, wrap_model
    from labkit.robust import FastAdversarialTrainer

    data = labkit.load_dataset(seed=seed, n_train=cfg["n_train"], n_test=cfg["n_test"])
    y_onehot = keras.utils.to_categorical(data.y_train, data.nb_classes)
    eps, epochs, batch, lr = cfg["eps"], cfg["epochs"], cfg["batch_size"], cfg["learning_rate"]

    def fresh() -> Any:
        labkit.set_seed(seed)
        return wrap_model(build_model(data.input_shape, data.nb_classes, learning_rate=lr))

    def plain() -> Any:
        labkit.set_seed(seed)
        return labkit.train_model(data.x_train, data.y_train, epochs=epochs, batch_size=batch, learning_rate=lr,
                                  progress=False)

    def art_fgsm() -> Any:
        clf = fresh()
        AdversarialTrainer(clf, FastGradientMethod(clf, eps=eps), ratio=cfg["ratio"]).fit(
            data.x_train, y_onehot, nb_epochs=epochs, batch_size=batch)
        return clf

    def labkit_fast() -> Any:
        clf = fresh()
        FastAdversarialTrainer(clf, eps=eps, ratio=cfg["ratio"]).fit(data.x_train, data.y_train, nb_epochs=epochs,
                                                                     batch_size=batch, progress=False)
        return clf

    def art_madry() -> Any:
        clf = fresh()
        trainer = AdversarialTrainerMadryPGD(clf, nb_epochs=cfg["madry_epochs"], batch_size=batch, eps=eps,
                                             eps_step=eps / 4, max_iter=cfg["madry_steps"], num_random_init=1)
        trainer.attack.set_params(batch_size=batch)
        trainer.fit(data.x_train, y_onehot)
        return clf

    methods = {"plain": plain, "art_adversarial_trainer": art_fgsm, "labkit_fast": labkit_fast}
    if madry:
        methods["art_madry_pgd"] = art_madry
    row: dict[str, Any] = {"seed": seed}
    for name, train in methods.items():
        classifier, seconds = timed(train)
        row[name] = {"seconds": round(seconds, 2), **evaluate(classifier, data, cfg)}
        print(f"  seed {seed} {name:<24} {seconds:7.1f} s | " + " | ".join(
            f"{k.replace('_accuracy', '')} {v:.3f}" for k, v in row[name].items() if k.endswith("accuracy")),
            flush=True)
    return row


def summarise(rows: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """Mean times, ratios to plain training and the equal-robustness check over the seeds."""
    def mean(method: str, key: str) -> float:
        values = [r[method][key] for r in rows if method in r]
        return float(np.mean(values)) if values else float("nan")

    methods = [m for m in ("plain", "art_adversarial_trainer", "labkit_fast", "art_madry_pgd") if m in rows[0]]
    summary: dict[str, Any] = {m: {k: mean(m, k) for k in ("seconds", "clean_accuracy", "fgsm_accuracy",
                                                           "pgd_accuracy")} for m in methods}
    plain = summary["plain"]["seconds"]
    for m in methods:
        summary[m]["x_plain"] = summary[m]["seconds"] / plain
    gap = summary["labkit_fast"]["fgsm_accuracy"] - summary["art_adversarial_trainer"]["fgsm_accuracy"]
    summary["fgsm_accuracy_gap_labkit_minus_art"] = gap
    summary["equal_robustness"] = bool(abs(gap) <= tolerance)
    summary["speed_goal_met"] = bool(summary["labkit_fast"]["x_plain"] <= 3.0)
    summary["speedup_labkit_vs_art"] = summary["art_adversarial_trainer"]["seconds"] / summary["labkit_fast"]["seconds"]
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the ratios and write the JSON file; return what was written."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="smoke setting: 1 seed, small data, 2 epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: 0 1 2; fast: 0)")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="how far labkit's and ART's mean FGSM accuracies may differ (default 0.05)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output file (default <build>/adversarial_training_bench.json)")
    args = parser.parse_args(argv)

    import labkit

    cfg = settings(args.fast, args.seeds)
    started, load_before = time.perf_counter(), list(os.getloadavg())
    rows = []
    for k, seed in enumerate(cfg["seeds"]):
        print(f"seed {seed} ({k + 1}/{len(cfg['seeds'])})", flush=True)
        rows.append(run_seed(seed, cfg, madry=k == 0))
    summary = summarise(rows, args.tolerance)
    result = {
        "setting": "fast" if args.fast else "full", "settings": cfg, "tolerance": args.tolerance,
        "summary": summary, "seeds": rows, "total_seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": list(os.getloadavg()), "python": platform.python_version(),
                    "note": "timings on a shared CPU are noisy; the ratios, measured back to back, less so"},
    }
    out = args.out or labkit.out_dir() / "adversarial_training_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nmean over seeds {cfg['seeds']} ({cfg['epochs']} epochs, batch {cfg['batch_size']}, eps {cfg['eps']}):")
    for method in ("plain", "art_adversarial_trainer", "labkit_fast", "art_madry_pgd"):
        if method in summary:
            s = summary[method]
            print(f"  {method:<24} {s['seconds']:7.1f} s  {s['x_plain']:5.1f}x plain | clean {s['clean_accuracy']:.3f}"
                  f" | FGSM {s['fgsm_accuracy']:.3f} | PGD {s['pgd_accuracy']:.3f}")
    print(f"labkit fast path: {summary['labkit_fast']['x_plain']:.1f}x plain training (goal <= 3x: "
          f"{'met' if summary['speed_goal_met'] else 'NOT met'}), {summary['speedup_labkit_vs_art']:.1f}x faster "
          f"than ART's AdversarialTrainer; FGSM accuracy labkit - ART = "
          f"{summary['fgsm_accuracy_gap_labkit_minus_art']:+.3f} (equal robustness within {args.tolerance}: "
          f"{'yes' if summary['equal_robustness'] else 'NO'}) -> {out}")
    return result


if __name__ == "__main__":
    main()
