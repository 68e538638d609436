"""Benchmark ``labkit tournament`` on a class of 30 models and 30 attack files (issue 16: <= 10 min, <= 10 s a model).

The class is made cheaply: three models trained as the lab trains them (baseline, FGSM-trained, Madry-trained,
with the tournament test's small settings), then 30 models that are copies of those three with Gaussian noise
added to their weights (every copy is a separate file and is loaded and attacked in full, as a pair's), and 30
attack files (FGSM and PGD at the class eps against the copies, each a separate .npz). The tournament runs
once with the class's suite (``Suite()``) and the default held-back set, into a scratch folder.

Writes ``<build>/tournament_bench.json`` (``labkit.out_dir()``): the wall and CPU seconds of the whole run (the
teacher's process plus every model's child), the CPU seconds of each model's child (load, the suite, the 30
attack files), the goals and whether they were met, and the machine (with its load average, since timings on a
shared machine are not claims). Usage::

    .venv/bin/python benchmarks/tournament.py              # 30 models, 30 attack files
    .venv/bin/python benchmarks/tournament.py --n 6        # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

GOAL_TOTAL_S = 600.0
GOAL_PER_MODEL_S = 10.0


def _class(folder: Path, n: int, challenge_x: np.ndarray, eps: float) -> None:
    """Write ``n`` models and ``n`` attack files into ``folder``."""
    import keras
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent

    import labkit
    from labkit.models import wrap_model
    from test_tournament import _fgsm_trained, _madry

    data = labkit.load_dataset("digits", seed=0)
    labkit.set_seed(0)
    trained = [labkit.train_model(data.x_train, data.y_train, epochs=8, progress=False), _fgsm_trained(data),
               _madry(data)]
    rng = np.random.default_rng(0)
    for i in range(n):
        source = trained[i % 3].model
        copy = keras.models.clone_model(source)
        copy.set_weights([w + rng.normal(0, 0.01 * (i // 3), w.shape).astype(w.dtype) for w in source.get_weights()])
        copy.save(folder / f"pair{i:02d}.keras")
        classifier = wrap_model(labkit.models.copy_keras_model(copy))
        attack = (FastGradientMethod(classifier, eps=eps) if i % 2 else
                  ProjectedGradientDescent(classifier, eps=eps, eps_step=eps / 4, max_iter=10, verbose=False))
        np.savez_compressed(folder / f"pair{i:02d}_attack.npz", x_adv=attack.generate(challenge_x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=30, help="models and attack files (default: 30)")
    args = parser.parse_args()

    import labkit
    from labkit._tournament_score import Suite
    from labkit.classroom.tournament import make_challenge, run_tournament
    from labkit.tournament import load_challenge

    with tempfile.TemporaryDirectory(prefix="labkit-tournament-bench-") as scratch:
        root = Path(scratch)
        make_challenge(root / "challenge")
        challenge = load_challenge(root / "challenge" / "challenge.npz")
        (root / "class").mkdir()
        _class(root / "class", args.n, challenge.x, challenge.eps)
        load = os.getloadavg()
        wall, cpu = time.perf_counter(), time.process_time()
        result = run_tournament(root / "class", root / "out", challenge=root / "challenge", suite=Suite(),
                                progress=True)
        wall, parent_cpu = time.perf_counter() - wall, time.process_time() - cpu
        with np.load(root / "challenge" / "private" / "heldback.npz") as held:
            heldback = len(held["y"])
    per_model = {m.group: m.cpu_seconds for m in result.models}
    children = float(np.nansum(list(per_model.values())))
    report = {
        "models": len(result.models), "attack_files": len(result.attacks),
        "scored": sum(m.valid for m in result.models), "refused": [m.reason for m in result.models if not m.valid],
        "heldback_images": heldback, "suite": Suite().as_dict(),
        "wall_s": round(wall, 1), "cpu_s": round(parent_cpu + children, 1), "parent_cpu_s": round(parent_cpu, 1),
        "per_model_cpu_s": {k: round(v, 2) for k, v in per_model.items()},
        "per_model_cpu_mean_s": round(float(np.nanmean(list(per_model.values()))), 2),
        "per_model_cpu_max_s": round(float(np.nanmax(list(per_model.values()))), 2),
        "per_model_wall_s": round(wall / max(len(result.models), 1), 2),
        "goals": {"total_s": GOAL_TOTAL_S, "per_model_s": GOAL_PER_MODEL_S},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average_at_start": load,
                    "platform": platform.platform()},
        "note": "CPU seconds of each model's child: loading, the suite on the held-back images and every attack "
                "file; wall seconds on a shared machine are not claims (rerun on a quiet one)",
    }
    report["goals_met"] = {"total": report["wall_s"] <= GOAL_TOTAL_S,
                           "per_model": report["per_model_cpu_max_s"] <= GOAL_PER_MODEL_S}
    path = Path(labkit.out_dir()) / "tournament_bench.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"{len(result.models)} models x {len(result.attacks)} attack files: {report['wall_s']} s wall, "
          f"{report['cpu_s']} s CPU; per model {report['per_model_cpu_mean_s']} s CPU on average, "
          f"{report['per_model_cpu_max_s']} s at most (goals: {GOAL_TOTAL_S:.0f} s, {GOAL_PER_MODEL_S:.0f} s); "
          f"wrote {path}")


if __name__ == "__main__":
    main()
