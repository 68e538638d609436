"""The lab travels with the package: a wheel built from the checkout carries the notebooks and the Jupyter
configuration, and from an empty folder, with only that wheel installed, ``labkit notebooks`` copies the lab and
``labkit student`` writes the student edition; where no notebooks exist, the commands fail and say why."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import nbformat
import pytest

from labkit.classroom.runner import lab_notebooks
from labkit.classroom.workspace import MANIFEST, copy_lab

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in lab_notebooks(ROOT / "notebooks"))


def _build(kind: str, out: Path) -> Path:
    """Build the wheel or the sdist of the checkout into ``out`` (no network: the venv's setuptools)."""
    if kind == "wheel":
        args = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                str(ROOT)]
    else:
        code = ("import sys, os; from setuptools import build_meta as b; os.chdir(sys.argv[1]); "
                "print(b.build_sdist(sys.argv[2]))")
        args = [sys.executable, "-c", code, str(ROOT), str(out)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [built] = out.glob("*.whl" if kind == "wheel" else "*.tar.gz")
    return built


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build("wheel", tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed alone (no dependencies: the test venv's are used) into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return target


def _labkit(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the installed wheel's ``labkit`` command in ``cwd``, outside the checkout."""
    env = {**os.environ, "PYTHONPATH": str(installed)}
    env.pop("LABKIT_OUT", None)
    env.pop("LABKIT_DATA_DIR", None)
    return subprocess.run([sys.executable, "-m", "labkit.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_wheel_carries_the_notebooks_and_the_jupyter_configuration(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert wheel.name.startswith("labkit_mlsec-")
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("labkit/_lab/notebooks/")) == NOTEBOOKS
    assert "labkit/_lab/data/README.md" in names
    data = [n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n]
    assert sorted(data) == ["etc/jupyter/jupyter_server_config.json",
                            "share/jupyter/lab/settings/overrides.d/labkit.json"]
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    import labkit

    assert f"Version: {labkit.__version__}" in text and "Requires-Python: <3.14,>=3.10" in text


def test_the_sdist_carries_notebooks_docs_license_and_the_data_readme(tmp_path):
    sdist = _build("sdist", tmp_path)
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    assert {"LICENSE", "README.md", "CHANGELOG.md", "data/README.md", "docs/teacher.md", "docs/deploy.md",
            "setup.py", "requirements.txt", "runtime.txt", "jupyter-config/jupyter_server_config.json"} <= names
    assert {f"notebooks/{n}" for n in NOTEBOOKS} <= names


def test_from_an_empty_folder_the_installed_wheel_copies_the_lab_and_writes_the_student_edition(installed, tmp_path):
    where = subprocess.run([sys.executable, "-c", "import labkit; print(labkit.__file__)"], capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(installed)}, cwd=tmp_path, check=True)
    assert where.stdout.strip().startswith(str(installed)), "the test must run the wheel, not the checkout"
    copied = _labkit(installed, tmp_path, "notebooks", "--out", "lab")
    assert copied.returncode == 0, copied.stderr
    assert sorted(p.name for p in (tmp_path / "lab").glob("*.ipynb")) == NOTEBOOKS
    assert (tmp_path / "lab" / "data" / "README.md").is_file()
    assert f"wrote {len(NOTEBOOKS) + 1} file(s)" in copied.stdout
    student = _labkit(installed, tmp_path, "student", "--out", "s")
    assert student.returncode == 0, student.stderr
    assert sorted(p.name for p in (tmp_path / "s").glob("*.ipynb")) == NOTEBOOKS
    assert "### BEGIN SOLUTION" not in (tmp_path / "s" / "01_evasion_fgsm.ipynb").read_text()
    assert "### BEGIN SOLUTION" in (ROOT / "notebooks" / "01_evasion_fgsm.ipynb").read_text()


def test_without_notebooks_the_commands_fail_and_say_why(installed, tmp_path):
    """A wheel that lost its lab (here: the packaged copy removed) must not succeed silently."""
    broken = tmp_path / "site"
    shutil.copytree(installed, broken, ignore=shutil.ignore_patterns("_lab"))
    for args in (["student", "--out", "s"], ["run", "--fast", "00"]):
        done = _labkit(broken, tmp_path, *args)
        assert done.returncode != 0, args
        assert "no lab notebooks found" in done.stderr and "labkit checkout" in done.stderr, done.stderr
    assert not (tmp_path / "s").exists()


def test_copying_again_updates_untouched_files_and_keeps_a_pairs_edits(tmp_path):
    first = copy_lab(tmp_path)
    assert len(first.written) == len(NOTEBOOKS) + 1 and (tmp_path / MANIFEST).is_file()
    assert copy_lab(tmp_path).written == []
    old = tmp_path / "00_setup.ipynb"
    nb = nbformat.read(old, as_version=4)
    nb.cells[0].source += "\n\nan older release of the lab"
    nbformat.write(nb, old)       # as labkit wrote it then: recorded in the manifest
    digests = json.loads((tmp_path / MANIFEST).read_text())
    digests["00_setup.ipynb"] = hashlib.sha256(old.read_bytes()).hexdigest()
    (tmp_path / MANIFEST).write_text(json.dumps(digests))
    assert copy_lab(tmp_path).written == ["00_setup.ipynb"]      # untouched by the pair: brought up to date
    edited = tmp_path / "01_evasion_fgsm.ipynb"
    edited.write_text(edited.read_text().replace("YOUR CODE HERE", "a pair's answer"))
    with pytest.raises(FileExistsError, match="01_evasion_fgsm.ipynb.*--force"):
        copy_lab(tmp_path)
    assert "a pair's answer" in edited.read_text()
    assert copy_lab(tmp_path, force=True).written == ["01_evasion_fgsm.ipynb"]


def test_the_key_edition_copies_the_solutions(tmp_path):
    copy_lab(tmp_path, key=True)
    key = ROOT / "notebooks" / "01_evasion_fgsm.ipynb"
    assert (tmp_path / "01_evasion_fgsm.ipynb").read_bytes() == key.read_bytes()
