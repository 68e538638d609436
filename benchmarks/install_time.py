"""Benchmark CI's venv install: pip (``make venv``) against uv (``make venv INSTALLER=uv``, what .ci/run uses).

Each installer builds a fresh venv from ``requirements.txt`` with an empty cache of its own (a fresh CI machine
downloads everything), as the Makefile does: uv installed into the venv by pip, then uv with bytecode compiled at
install (pip compiles it too; without it every kernel recompiles TensorFlow, as CI runs with
PYTHONDONTWRITEBYTECODE). uv gets pip's index settings the way .ci/run hands them over. Writes the wall and CPU
seconds of each step (CPU: what the step costs when other work shares the machine; CI's limit is on the wall time
of a quiet one) to ``<build>/install_time.json`` (``labkit.out_dir()``). Usage::

    .venv/bin/python benchmarks/install_time.py               # both installers
    .venv/bin/python benchmarks/install_time.py --only uv
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / ".ci" / "run"


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _step(name: str, args: list[str], env: dict[str, str]) -> dict[str, float | str]:
    """Run one install step; return its wall and CPU seconds (children's user + system)."""
    wall, cpu = time.perf_counter(), _cpu()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"step": name, "wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(_cpu() - cpu, 1)}


def _uv_env(base: dict[str, str]) -> dict[str, str]:
    """The UV_* settings .ci/run exports (its pip_setting loop), read by running that part of the script."""
    script = RUN.read_text()
    part = script[script.index("pip_setting() {"):script.index("make venv INSTALLER=uv")]
    out = subprocess.run(["bash", "-c", part + "\nenv -0"], env=base, capture_output=True, check=True).stdout
    pairs = (item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return {k: v for k, v in pairs if k.startswith("UV_")}


def install(installer: str, folder: Path) -> list[dict[str, float | str]]:
    """Build a venv in ``folder`` with ``installer`` ("pip" or "uv"), cold caches; return the timed steps."""
    venv, cache = folder / "venv", folder / "cache"
    env = {**os.environ, "PIP_CACHE_DIR": str(cache / "pip"), "UV_CACHE_DIR": str(cache / "uv")}
    python = str(venv / "bin" / "python")
    steps = [_step("venv", [sys.executable, "-m", "venv", str(venv)], env)]
    if installer == "uv":
        env.update(_uv_env(env))
        steps.append(_step("pip install uv", [python, "-m", "pip", "install", "-q", "uv"], env))
        run = [str(venv / "bin" / "uv"), "pip", "install", "-q", "--python", python, "--compile-bytecode"]
    else:
        run = [python, "-m", "pip", "install", "-q"]
    steps.append(_step("upgrade pip", [*run, "--upgrade", "pip"], env))
    steps.append(_step("requirements.txt", [*run, "-r", str(ROOT / "requirements.txt")], env))
    steps.append(_step("labkit (editable)", [*run, "--no-deps", "-e", str(ROOT)], env))
    return steps


def main() -> None:
    """Time the installers and write ``install_time.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["pip", "uv"], help="time one installer only")
    args = parser.parse_args()
    results = {}
    for installer in [args.only] if args.only else ["uv", "pip"]:
        with tempfile.TemporaryDirectory(prefix=f"install-{installer}-") as folder:
            steps = install(installer, Path(folder))
        results[installer] = {"steps": steps, "wall_s": round(sum(s["wall_s"] for s in steps), 1),
                              "cpu_s": round(sum(s["cpu_s"] for s in steps), 1)}
        print(installer, json.dumps(results[installer]))
    import labkit

    path = labkit.out_dir() / "install_time.json"
    path.write_text(json.dumps({"installers": results, "load_average": os.getloadavg(), "cpus": os.cpu_count(),
                                "python": platform.python_version(), "machine": platform.platform()}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
