"""Quiet notebooks: an executed notebook that imports labkit, trains a model and runs an ART attack has nothing
on stderr (TensorFlow's start-up lines, cuInit, NodeDef use_unbounded_threadpool, ART's "PyTorch not found"),
and ``labkit.quiet.stderr_lines`` counts what a run's executed notebooks kept on stderr."""

from __future__ import annotations

import json
import os
import sys

import nbformat
import pytest

from labkit.quiet import main, silenced_fd2, stderr_lines

CELLS = [
    "import labkit  # first, as every lab notebook does\nfrom art.attacks.evasion import FastGradientMethod",
    "labkit.set_seed(0)\ndata = labkit.load_dataset('digits', n_train=100, n_test=40)\n"
    "clf = labkit.train_model(data.x_train, data.y_train, epochs=1, progress=False)",
    "x_adv = FastGradientMethod(clf, eps=0.1).generate(data.x_test)\n"
    "print('accuracy under FGSM', labkit.accuracy(clf, x_adv, data.y_test))",
    "import logging\nlogging.getLogger('labkit.neural_cleanse').warning('filtering did not remove the backdoor')",
]


def _notebook(cells: list[str]) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


def test_executed_notebook_has_no_stderr(tmp_path):
    from nbclient import NotebookClient

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as in class: nobody sets it
    env["LABKIT_OUT"] = str(tmp_path / "build")
    nb = _notebook(CELLS)
    NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path)}}).execute(
        env=env)
    path = tmp_path / "quiet.ipynb"
    nbformat.write(nb, path)
    assert "accuracy under FGSM" in "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert stderr_lines(path) == {"quiet.ipynb": []}
    assert "filtering did not remove the backdoor" in "".join(o.get("text", "") for o in nb.cells[3].outputs)


def _executed(path, streams: list[tuple[str, str]]) -> None:
    nb = _notebook(["print(1)"])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name=name, text=text) for name, text in streams]
    nbformat.write(nb, path)


def test_stderr_lines_counts_only_stderr(tmp_path, capsys):
    _executed(tmp_path / "00_setup.ipynb", [("stdout", "fine\n"), ("stderr", "E0000 cuInit\nWARNING: absl\n")])
    _executed(tmp_path / "01_evasion_fgsm.ipynb", [("stdout", "a\nb\n")])
    found = stderr_lines(tmp_path)
    assert found == {"00_setup.ipynb": ["E0000 cuInit", "WARNING: absl"], "01_evasion_fgsm.ipynb": []}
    assert main([str(tmp_path)]) == 1
    assert "2 stderr line(s) in 2 notebook(s)" in capsys.readouterr().out
    (tmp_path / "00_setup.ipynb").unlink()
    assert main([str(tmp_path)]) == 0


def test_stderr_lines_reads_list_form_and_says_what_to_do(tmp_path):
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stderr",
                                                        "text": ["one\n", "two\n"]}]}]}
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    assert stderr_lines(tmp_path / "x.ipynb") == {"x.ipynb": ["one", "two"]}
    with pytest.raises(FileNotFoundError, match="labkit run --out"):
        stderr_lines(tmp_path / "empty")


def test_silenced_fd2_hides_fd2_and_restores_it(capfd):
    os.write(2, b"before\n")
    with silenced_fd2():
        os.write(2, b"hidden\n")
    os.write(2, b"after\n")
    with pytest.raises(RuntimeError):
        with silenced_fd2():
            raise RuntimeError("still raised")
    os.write(2, b"restored after an error\n")
    err = capfd.readouterr().err
    assert "before" in err and "after" in err and "restored after an error" in err
    assert "hidden" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="fd 2 juggling is POSIX-only")
def test_import_labkit_outside_a_kernel_does_not_import_tensorflow():
    import subprocess

    code = "import sys, labkit; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


_KERNEL_LIKE = ("import sys, types\n"
                "sys.modules.setdefault('ipykernel', types.ModuleType('ipykernel'))  # as inside a kernel\n")


def _run(code: str) -> tuple[str, str]:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def test_in_a_kernel_import_labkit_leaves_tensorflow_unloaded_until_used_and_its_first_import_is_silent():
    out, _ = _run(_KERNEL_LIKE + "import labkit\nfrom labkit.classroom import report\n"
                  "print('tensorflow' in sys.modules)")
    assert out.split() == ["False"]  # 05 (the report) never pays for TensorFlow
    # TensorFlow's own start prints on fd 2 (absl, oneDNN ...): the control shows there is something to silence
    _, noisy = _run(_KERNEL_LIKE + "import tensorflow as tf\ntf.constant(0.0)\n"
                    "for _ in tf.data.Dataset.range(2).map(lambda x: x + 1, num_parallel_calls=-1): pass")
    if not noisy.strip():
        pytest.skip("this TensorFlow build prints nothing at start-up: nothing to silence")
    out, quiet = _run(_KERNEL_LIKE + "import labkit\nimport tensorflow as tf\nprint(tf.constant(2.0).numpy())\n"
                      "for _ in tf.data.Dataset.range(2).map(lambda x: x + 1, num_parallel_calls=-1): pass\n"
                      "import sys; print('after', file=sys.stderr)")
    assert out.split() == ["2.0"]
    assert quiet.splitlines() == ["after"]  # fd 2 silenced for TensorFlow's start only, then given back
