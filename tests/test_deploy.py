"""A class on shared infrastructure: TensorFlow's threads follow the CPU quota, the shipped Jupyter configuration
(idle kernels culled, no news prompt) is what Jupyter actually loads, repo2docker builds on the tested Python and
installs the package, and the pins give the CPU-only TensorFlow where its wheels exist."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from labkit import _threads

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "jupyter-config"
BIN = Path(sys.executable).parent


def _cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "50000 100000"}, 0.5),
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
    ({"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, None),
    ({"cpu.max": "garbage"}, None),
    ({}, None),
])
def test_cgroup_quota_reads_v2_then_v1(tmp_path, files, expected):
    assert _threads.cgroup_quota(_cgroup(tmp_path, files)) == expected


def test_cgroup_v2_wins_over_v1(tmp_path):
    root = _cgroup(tmp_path, {"cpu.max": "100000 100000", "cpu/cpu.cfs_quota_us": "400000",
                              "cpu/cpu.cfs_period_us": "100000"})
    assert _threads.cgroup_quota(root) == 1.0


def test_cpu_limit_rounds_the_quota_up_within_the_affinity(tmp_path, monkeypatch):
    monkeypatch.setattr(_threads, "_schedulable_cpus", lambda: 4)
    assert _threads.cpu_limit(_cgroup(tmp_path / "a", {"cpu.max": "150000 100000"})) == 2
    assert _threads.cpu_limit(_cgroup(tmp_path / "b", {"cpu.max": "50000 100000"})) == 1
    assert _threads.cpu_limit(_cgroup(tmp_path / "c", {"cpu.max": "1600000 100000"})) == 4
    assert _threads.cpu_limit(_cgroup(tmp_path / "d", {"cpu.max": "max 100000"})) == 4


def test_limit_threads_keeps_what_a_user_set(monkeypatch):
    environ = {"OMP_NUM_THREADS": "3"}
    monkeypatch.setattr(os, "environ", environ)   # this test process's own settings stay as they are
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    assert _threads.limit_threads(1) == 1
    assert environ == {"OMP_NUM_THREADS": "3", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


THREAD_PROBE = """
import collections, json, os, sys
if sys.argv[1] == "tf-first":
    import tensorflow as tf
import labkit
import tensorflow as tf
x = tf.random.normal((128, 128))
tf.function(lambda a: tf.linalg.matmul(a, a))(x)
names = collections.Counter(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
intra = tf.config.threading.get_intra_op_parallelism_threads()
print(json.dumps({"inter_op_threads": names["tf_Compute"], "intra": intra,
                  "env": os.environ.get("TF_NUM_INTRAOP_THREADS")}))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir() or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux's /proc and at least 2 CPUs to tell a 1-CPU quota from the default")
@pytest.mark.parametrize("order", ["labkit-first", "tf-first"])
def test_tensorflow_threads_follow_a_one_cpu_quota(tmp_path, order):
    """A real kernel-like process under a (fake) 1-CPU cgroup quota: TensorFlow starts one inter-op thread, not one
    per host core, whether labkit or TensorFlow is imported first."""
    env = {k: v for k, v in os.environ.items() if k not in _threads.THREAD_ENV}
    env[_threads.CGROUP_ROOT_ENV] = str(_cgroup(tmp_path, {"cpu.max": "100000 100000\n"}))
    out = subprocess.run([sys.executable, "-c", THREAD_PROBE, order], env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["inter_op_threads"] == 1, seen
    assert seen["env"] == "1"
    if order == "tf-first":
        assert seen["intra"] == 1, seen


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


def test_jupyter_server_loads_the_shipped_kernel_culling(tmp_path):
    """Jupyter itself reads the file where the package installs it (<prefix>/etc/jupyter)."""
    etc = tmp_path / "etc" / "jupyter"
    etc.mkdir(parents=True)
    shutil.copy(CONFIG / "jupyter_server_config.json", etc)
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(etc), "JUPYTER_CONFIG_DIR": str(tmp_path / "user")}
    shown = _run([str(BIN / "jupyter"), "server", "--show-config-json"], env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    culling = json.loads(shown.stdout)["MappingKernelManager"]
    assert culling["cull_idle_timeout"] == 900 and culling["cull_interval"] == 60
    assert culling["cull_connected"] is True and culling["cull_busy"] is False


def test_jupyterlab_never_asks_about_news(tmp_path):
    """JupyterLab's own settings code, reading the overrides.d file where the package installs it, makes the
    notification plugin's fetchNews "false" (Never) instead of the default "none" (Ask)."""
    from jupyterlab import labapp
    from jupyterlab_server.settings_utils import get_settings

    plugin = "@jupyterlab/apputils-extension:notification"
    schemas = str(Path(labapp.__file__).parent / "schemas")
    settings_dir = tmp_path / "settings"
    default, _ = get_settings(str(tmp_path / "none"), schemas, str(settings_dir), plugin)
    app_settings = tmp_path / "app-settings"
    shutil.copytree(CONFIG / "lab" / "overrides.d", app_settings / "overrides.d")
    shipped, _ = get_settings(str(app_settings), schemas, str(settings_dir), plugin)
    assert default["schema"]["properties"]["fetchNews"]["default"] == "none"
    assert shipped["schema"]["properties"]["fetchNews"]["default"] == "false"
    assert shipped["schema"]["properties"]["checkForUpdates"]["default"] is False


def test_the_package_installs_the_jupyter_configuration_where_jupyter_reads_it():
    import tomllib

    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert data_files["etc/jupyter"] == ["jupyter-config/jupyter_server_config.json"]
    assert data_files["share/jupyter/lab/settings/overrides.d"] == ["jupyter-config/lab/overrides.d/labkit.json"]
    for files in data_files.values():
        assert all((ROOT / f).is_file() for f in files)


ENVIRONMENTS = {  # (platform_system, platform_machine, sys_platform) -> the TensorFlow distribution to install
    ("Linux", "x86_64", "linux"): "tensorflow-cpu",
    ("Windows", "AMD64", "win32"): "tensorflow-cpu",
    ("Darwin", "arm64", "darwin"): "tensorflow",
    ("Linux", "aarch64", "linux"): "tensorflow",
}


def _tensorflow_for(requirements: list[str], system: str, machine: str, platform: str) -> list[str]:
    env = {"platform_system": system, "platform_machine": machine, "sys_platform": platform,
           "python_version": "3.11", "python_full_version": "3.11.7"}
    chosen = []
    for line in requirements:
        req = Requirement(line)
        if req.name in {"tensorflow", "tensorflow-cpu"} and (req.marker is None or req.marker.evaluate(env)):
            chosen.append(req.name)
    return chosen


@pytest.mark.parametrize("where, expected", ENVIRONMENTS.items())
def test_pins_and_dependencies_choose_one_tensorflow(where, expected):
    import tomllib

    pins = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    pins = [line for line in pins if line]
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert _tensorflow_for(pins, *where) == [expected]
    assert _tensorflow_for(deps, *where) == [expected]
    assert any(Requirement(p).name == expected and str(Requirement(p).specifier) == "==2.21.0" for p in pins)


# LABKIT_REPO2DOCKER: a repo2docker installed elsewhere (its own venv: pip install jupyter-repo2docker), else this
# environment's (pip install 'labkit-mlsec[deploy]'), else the PATH's
REPO2DOCKER = (os.environ.get("LABKIT_REPO2DOCKER") or shutil.which("repo2docker", path=str(BIN))
               or shutil.which("repo2docker"))


@pytest.mark.skipif(REPO2DOCKER is None, reason="repo2docker is not installed: pip install 'labkit-mlsec[deploy]' "
                    "or set LABKIT_REPO2DOCKER")
def test_repo2docker_builds_on_the_tested_python_and_installs_the_package(tmp_path):
    """repo2docker's generated Dockerfile (--no-build: nothing is built or pulled) uses runtime.txt's Python,
    installs the pins, then the package (which carries the Jupyter configuration)."""
    runtime = (ROOT / "runtime.txt").read_text().strip()
    assert runtime == "python-3.11", "runtime.txt pins the Python that CI tests"
    done = _run([REPO2DOCKER, "--no-build", "--no-run", "--debug", str(ROOT)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    generated = done.stdout + done.stderr
    assert "Building conda environment for python=3.11" in generated
    assert 'bin/pip install --no-cache-dir -r "requirements.txt"' in generated
    assert generated.index('-r "requirements.txt"') < generated.index("bin/pip install --no-cache-dir .\n")


@pytest.mark.skipif(REPO2DOCKER is None, reason="repo2docker is not installed: pip install 'labkit-mlsec[deploy]' "
                    "or set LABKIT_REPO2DOCKER")
def test_the_image_gets_the_lab_but_not_local_build_products(tmp_path):
    """repo2docker filters the copied repository with .dockerignore (docker's own matcher): a teacher's local .venv
    (2 GB) and build/ stay out of the image, the notebooks and the package go in."""
    from docker.utils.build import exclude_paths

    for folder in (".venv", "build"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "big.bin").write_bytes(b"0")
    for name in (".dockerignore", "setup.py", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "00_setup.ipynb").write_text("{}")
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copied = set(exclude_paths(str(tmp_path), patterns))
    assert {"setup.py", "pyproject.toml", "notebooks/00_setup.ipynb"} <= copied
    assert not any(path.startswith((".venv", "build")) for path in copied)
