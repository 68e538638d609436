"""Progress bars that read the same in a saved notebook as at the end of a live run.

In a live JupyterLab, ``tqdm.auto`` (labkit's bars and ART's) draws widgets. A notebook executed headlessly
keeps a widget without its state: JupyterLab then shows every bar at "0%", nbconvert's copies say "Loading
widget...". So a headless run (``labkit run``) sets ``LABKIT_TEXT_PROGRESS=1`` and imports labkit first in each
kernel; labkit then puts ``TextProgress`` in ``tqdm.auto``'s place, before ART or a notebook imports it. A
``TextProgress`` bar is silent while it runs and writes one plain line with its final state to stdout when it
closes (``eps sweep: 100%|##########| 33/33 [00:12<00:00, 2.71attack/s]``); bars made with ``leave=False``
(inner bars that vanish in a live notebook) write nothing.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any

from tqdm.std import tqdm as std_tqdm

__all__ = ["TEXT_PROGRESS_ENV", "TextProgress", "text_progress_wanted", "use_text_progress"]

TEXT_PROGRESS_ENV = "LABKIT_TEXT_PROGRESS"


class TextProgress(std_tqdm):
    """A tqdm bar that prints only its final state, as one line on stdout, when it closes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["file"] = io.StringIO()   # nothing is drawn while the bar runs
        kwargs["ascii"] = True if kwargs.get("ascii") is None else kwargs["ascii"]
        super().__init__(*args, **kwargs)

    def close(self) -> None:
        """Write the bar's final state to stdout (unless it is disabled or made with ``leave=False``)."""
        if self.disable:
            return
        line = None if self.leave is False else self.__str__()
        super().close()
        if line:
            sys.stdout.write(line.rstrip() + "\n")
            sys.stdout.flush()


def _text_trange(*args: Any, **kwargs: Any) -> TextProgress:
    return TextProgress(range(*args), **kwargs)


def text_progress_wanted() -> bool:
    """Return True when ``LABKIT_TEXT_PROGRESS`` asks for text bars (``labkit run`` sets it)."""
    return os.environ.get(TEXT_PROGRESS_ENV, "0").strip().lower() in ("1", "true", "yes")


def use_text_progress() -> None:
    """Make ``tqdm.auto`` and ``tqdm.autonotebook`` hand out ``TextProgress`` bars from now on.

    Modules that import ``tqdm.auto`` later (ART's attacks, the notebooks, labkit's functions) get them.
    """
    import tqdm.auto
    import tqdm.autonotebook

    tqdm.auto.tqdm = tqdm.autonotebook.tqdm = TextProgress
    tqdm.autonotebook.trange = _text_trange   # tqdm.auto.trange builds on tqdm.auto.tqdm
