"""`labkit run`'s guards, on 1-cell notebooks (never the lab's): LABKIT_FAST is honoured unless --fast/--full
says otherwise, a second run on the same --out stops at once naming the first, and a kernel that cannot start
is one line and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labkit.classroom import runner
from labkit.classroom._runguard import INFO_NAME, run_lock
from labkit.cli import main


def _notebook(path: Path, source: str) -> Path:
    nb = new_notebook(cells=[new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _printed(out: Path, name: str) -> str:
    executed = nbformat.read(out / "notebooks" / name, as_version=4)
    return executed.cells[0].outputs[0]["text"].strip()


def _error_line(capsys) -> str:
    """The one line ``labkit run`` wrote about its error (besides its progress bars), after checking it is one."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "labkit run" in line or "Error" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("env, flags, kernel_sees", [
    ("1", [], "1"),            # the environment's smoke setting is kept ...
    ("1", ["--full"], "0"),    # ... unless --full says otherwise
    ("0", ["--fast"], "1"),
    (None, [], "0"),
])
def test_labkit_run_honours_LABKIT_FAST_unless_a_flag_says_otherwise(tmp_path, monkeypatch, capsys, env, flags,
                                                                    kernel_sees):
    notebook = _notebook(tmp_path / "20_fast.ipynb", "import os; print(os.environ['LABKIT_FAST'])")
    if env is not None:
        monkeypatch.setenv("LABKIT_FAST", env)
    out = tmp_path / "out"
    assert main(["run", str(notebook), "--out", str(out), *flags]) == 0, capsys.readouterr().err
    assert _printed(out, "20_fast.ipynb") == kernel_sees


def test_fast_and_full_together_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--fast", "--full"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_second_run_on_the_same_out_refuses_at_once_naming_the_first(tmp_path, capsys):
    """The first run is another process holding the folder; the second stops before starting any kernel."""
    notebook = _notebook(tmp_path / "21_second.ipynb", "print('ran')")
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from labkit.classroom._runguard import run_lock\n"
         "with run_lock(Path(sys.argv[1]), ['00_setup.ipynb', '01_evasion_fgsm.ipynb']):\n"
         "    print('holding', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert main(["run", str(notebook), "--out", str(out)]) == 1
        err = capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"labkit run: another labkit run is using {out.resolve()} (pid {holder.pid} on ")
    assert "running 00_setup.ipynb, 01_evasion_fgsm.ipynb" in lines[0] and "another --out" in lines[0]
    assert not (out / "notebooks" / "21_second.ipynb").exists()   # refused before any kernel (benchmarks/guards.py
    # measures how soon)
    # the holder is gone: the folder is free again, with no stale lock (the OS released it)
    assert main(["run", str(notebook), "--out", str(out)]) == 0
    assert _printed(out, "21_second.ipynb") == "ran" and not (out / INFO_NAME).exists()


def test_the_lock_is_released_when_a_run_fails(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"), run_lock(out, ["x.ipynb"]):
        raise RuntimeError("boom")
    with run_lock(out, ["y.ipynb"]):
        assert json.loads((out / INFO_NAME).read_text())["notebooks"] == ["y.ipynb"]


def test_a_kernel_that_is_not_installed_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    notebook = _notebook(tmp_path / "22_kernel.ipynb", "print('never')")
    monkeypatch.setattr(runner, "KERNEL_NAME", "no_such_kernel_labkit")
    assert main(["run", str(notebook), "--out", str(tmp_path / "out")]) == 1
    assert _error_line(capsys).startswith("labkit run: could not start the no_such_kernel_labkit kernel: No such "
                                          "kernel named no_such_kernel_labkit. Check that it is installed")


def test_a_kernel_that_dies_at_start_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    """A python3 kernelspec whose process exits at once (found first on JUPYTER_PATH)."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-c", "import sys; sys.exit(3)", "{connection_file}"],
        "display_name": "Python 3 (dies)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = _notebook(tmp_path / "23_dies.ipynb", "print('never')")
    assert main(["run", str(notebook), "--out", str(tmp_path / "out")]) == 1
    assert _error_line(capsys).startswith("labkit run: could not start the python3 kernel: Kernel died before "
                                          "replying to kernel_info")


def test_an_error_inside_the_notebook_is_still_a_notebook_failure(tmp_path, capsys):
    notebook = _notebook(tmp_path / "24_bad.ipynb", "raise ValueError('inside the notebook')")
    assert main(["run", str(notebook), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "24_bad.ipynb failed" in err and "could not start" not in err


def test_the_command_writes_the_student_edition_without_jsonschemas_slow_iri_parsers(tmp_path):
    """``labkit student`` reads and writes notebooks through nbformat (and so jsonschema) without importing
    rfc3987_syntax, which builds ~35 Earley parsers in ~3 s for a format no notebook schema uses; nbformat's
    validation of what it writes still works."""
    import subprocess

    code = ("import sys\nfrom labkit.cli import main\nrc = main(['student', '00', '--out', sys.argv[1]])\n"
            "import nbformat\nnbformat.validate(nbformat.read(sys.argv[1] + '/00_setup.ipynb', as_version=4))\n"
            "print(rc, sys.modules.get('rfc3987_syntax', 'never imported'))\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "0 None"
