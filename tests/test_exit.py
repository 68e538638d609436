"""labkit's quick exit (labkit/_exit.py): the exit's last garbage collection skips the objects alive then."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = """
import sys
{imports}

class Node:
    def __del__(self):
        sys.stdout.write("cycle collected at exit\\n")

a, b = Node(), Node()
a.other, b.other = b, a            # a reference cycle alive at exit: only the collector can free it
del a, b
import gc, weakref
gc.disable()                       # nothing collects it before the exit starts
box = type("Box", (), {{}})()
box.me = box
weakref.finalize(box, sys.stdout.write, "finalizer ran\\n")
"""


def _exit_output(imports: str) -> str:
    """Run a child Python holding a garbage cycle at exit; return what it printed while exiting."""
    done = subprocess.run([sys.executable, "-c", CHILD.format(imports=imports)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_plain_python_collects_the_cycle_at_exit() -> None:
    """The baseline the next test departs from: without labkit, the final collection visits the cycle."""
    assert "cycle collected at exit" in _exit_output("")


@pytest.mark.parametrize("imports", ["import labkit", "import labkit\nimport labkit._exit as e\ne.quick_exit_gc()"])
def test_labkit_exit_skips_live_objects_but_runs_finalizers(imports: str) -> None:
    """After ``import labkit`` the final collection skips objects alive at exit (the 2 s it took after
    TensorFlow's import) while ``weakref.finalize`` callbacks still run; registering twice changes nothing."""
    out = _exit_output(imports)
    assert "cycle collected at exit" not in out
    assert "finalizer ran" in out
