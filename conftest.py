"""One pytest session for the unit tests and nbval (make test): `pytest -n 2 --dist loadfile ... tests notebooks`.

* Scheduling: with ``--dist loadfile`` each test file is one unit of work (its module fixtures are built once, on
  one worker), and here all the notebooks together are one unit, run in order on one worker, as each notebook needs
  the models and metrics of the ones before it. Both workers stay busy to the end, instead of nbval running alone
  after the unit tests. (``--dist loadgroup`` cannot do it here: pytest-xdist 3.8 names the group in the node id
  through an attribute pytest 9.2 no longer reads.)
* Environment: the notebooks' kernels start with the fast (smoke) setting, strict self-checks and a store of their
  own (``build/nbval``), unless the caller set these; the unit tests' environment is not touched.
"""

from __future__ import annotations

import os

import pytest

NBVAL_UNIT = "notebooks"
NBVAL_ENV = {"LABKIT_FAST": "1", "LABKIT_STRICT_CHECKS": "1"}


def scope(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or NBVAL_UNIT for every notebook's cells."""
    path = nodeid.split("::", 1)[0]
    return NBVAL_UNIT if path.endswith(".ipynb") else path


@pytest.hookimpl(optionalhook=True)   # a pytest-xdist hook: without xdist, never called
def pytest_xdist_make_scheduler(config: pytest.Config, log):   # noqa: ANN001, ANN201 (xdist's hook signature)
    """``--dist loadfile``, with the notebooks as one unit (see the module's docstring); other modes as they are."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class _LoadFileNotebooksTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope(nodeid)

    return _LoadFileNotebooksTogether(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):   # noqa: ANN201 (a hook wrapper)
    """Start a notebook's kernel (nbval does, in the setup of its first cell) with the notebooks' environment."""
    if item.path.suffix != ".ipynb":
        yield
        return
    env = {**NBVAL_ENV, "LABKIT_OUT": str(item.config.rootpath / "build" / "nbval")}
    added = [name for name in env if os.environ.get(name) is None]
    os.environ.update({name: env[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
