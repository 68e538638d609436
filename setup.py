"""Build hook: the wheel carries the lab. ``notebooks/`` (the solution key) and ``data/README.md`` stay the source
of truth at the top of the checkout; building copies them into the package as ``labkit/_lab/``, so that an
installed labkit finds its notebooks from any folder (``labkit.paths.notebooks_dir``). Everything else about the
package is in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
LAB_FILES = {"notebooks": "[0-9][0-9]_*.ipynb", "data": "README.md"}
"""What the wheel carries of the lab: top-level folder -> file pattern, copied under ``labkit/_lab/<folder>``."""


class BuildPyWithLab(build_py):
    """``build_py`` that also copies the lab (``LAB_FILES``) into the built package."""

    def run(self) -> None:
        """Build the package as usual, then copy the lab into ``<build_lib>/labkit/_lab``."""
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install finds the checkout's own notebooks/
        target = Path(self.build_lib) / "labkit" / "_lab"
        for folder, pattern in LAB_FILES.items():
            files = sorted((HERE / folder).glob(pattern))
            if not files:
                raise FileNotFoundError(f"setup.py: no {folder}/{pattern} in {HERE}: build from a checkout or sdist")
            (target / folder).mkdir(parents=True, exist_ok=True)
            for source in files:
                shutil.copyfile(source, target / folder / source.name)


setup(cmdclass={"build_py": BuildPyWithLab})
