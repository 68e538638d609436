"""What labkit's LabClassifier (labkit/_fast_keras.py) saves over ART's KerasClassifier, call by call.

The same trained model is wrapped both ways; each call the lab makes repeatedly is timed (wall and process CPU
seconds, best of ``--repeats``): the input gradient of the 450 test digits, FGSM and 20-step PGD on them, one epoch of
ART's AdversarialTrainer (FGSM, ratio 0.5, batch 128) and one of AdversarialTrainerMadryPGD (5 steps). Writes
``<build>/fast_classifier.json``. Run it on a quiet machine: ``.venv/bin/python benchmarks/fast_classifier.py``.
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

os.environ.setdefault("TQDM_DISABLE", "1")


def _timed(call: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Best wall and CPU seconds of ``call`` over ``repeats`` runs, after one warm-up run (tracing)."""
    call()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall_seconds": round(min(walls), 3), "cpu_seconds": round(min(cpus), 3)}


def _calls(classifier: Any, data: Any, eps: float) -> dict[str, Callable[[], Any]]:
    """The lab's repeated calls on ``classifier``, each as a no-argument function."""
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.defences.trainer import AdversarialTrainer, AdversarialTrainerMadryPGD

    onehot_test = np.eye(data.nb_classes, dtype=np.float32)[data.y_test]
    onehot_train = np.eye(data.nb_classes, dtype=np.float32)[data.y_train]
    model = classifier.model
    weights = model.get_weights()

    def restored(call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            result = call()
            model.set_weights(weights)  # training calls leave the model as they found it
            return result
        return run

    madry = AdversarialTrainerMadryPGD(classifier, nb_epochs=1, batch_size=128, eps=eps, eps_step=eps / 4,
                                       max_iter=5, num_random_init=1)
    madry.attack.set_params(batch_size=128)
    return {
        "loss_gradient_450": lambda: classifier.loss_gradient(data.x_test, onehot_test),
        "fgsm_450": lambda: FastGradientMethod(classifier, eps=eps, batch_size=256).generate(data.x_test,
                                                                                            y=onehot_test),
        "pgd20_450": lambda: ProjectedGradientDescent(classifier, eps=eps, eps_step=2.5 * eps / 20, max_iter=20,
                                                      batch_size=256, verbose=False).generate(data.x_test,
                                                                                              y=onehot_test),
        "adversarial_trainer_epoch": restored(lambda: AdversarialTrainer(
            classifier, attacks=FastGradientMethod(classifier, eps=eps), ratio=0.5).fit(
                data.x_train, onehot_train, nb_epochs=1, batch_size=128)),
        "madry_epoch": restored(lambda: madry.fit(data.x_train, onehot_train)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="default: <build>/fast_classifier.json")
    args = parser.parse_args(argv)

    import labkit
    from art.estimators.classification import KerasClassifier

    labkit.set_seed(0)
    data = labkit.load_dataset("digits", seed=0)
    lab = labkit.train_model(data.x_train, data.y_train, nb_classes=data.nb_classes, progress=False)
    art = KerasClassifier(model=lab.model, clip_values=(0.0, 1.0), use_logits=False)
    results: dict[str, dict[str, Any]] = {}
    for name, classifier in (("art_keras_classifier", art), ("labkit_lab_classifier", lab)):
        results[name] = {call: _timed(fn, args.repeats) for call, fn in _calls(classifier, data, 0.11).items()}
        print(name, json.dumps(results[name]))
    speedup = {call: round(results["art_keras_classifier"][call]["wall_seconds"]
                           / max(results["labkit_lab_classifier"][call]["wall_seconds"], 1e-9), 2)
               for call in results["labkit_lab_classifier"]}
    out = args.out or labkit.paths.out_dir() / "fast_classifier.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(), "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(), "repeats": args.repeats, "results": results,
        "speedup_wall": speedup}, indent=2))
    print("speed-up (wall):", speedup, "->", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
