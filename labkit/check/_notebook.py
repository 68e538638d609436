"""What a pair sees when a check cell runs before its exercise is done: a sentence, not a ``NameError`` traceback.

A check cell such as ``labkit.check.predictions(predictions, classifier, data.x_test)`` names what the exercise
above creates. Run before that exercise, Python raises ``NameError`` before the check is even called. Importing
``labkit.check`` in an IPython kernel installs a handler (IPython's ``set_custom_exc``) that, for a ``NameError``
raised in a cell that calls ``labkit.check``, shows "The exercise above is not done yet: ..." instead of the
traceback. The cell still ends in an error (so "Run all" stops there and a strict run still fails); any other
``NameError`` keeps IPython's usual traceback.
"""

from __future__ import annotations

import linecache
import re
from types import TracebackType
from typing import Any

NOT_DONE = "is not done yet"
_CHECK_CALL = re.compile(r"\blabkit\.check\.\w+\(|\bcheck\.\w+\(")


def not_done_message(name: str) -> str:
    """Return what a check cell says when ``name``, which the exercise above creates, does not exist yet.

    :param name: the missing name.
    """
    return (f"The exercise above {NOT_DONE}: `{name}` does not exist. Fill in the exercise cell above and run it, "
            "then run this check again.")


def _cell_source(tb: TracebackType | None) -> str:
    """Return the source of the notebook cell the innermost user frame of ``tb`` belongs to ('' if unknown)."""
    filename = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "<module>":
            filename = code.co_filename
        tb = tb.tb_next
    return "".join(linecache.getlines(filename)) if filename else ""


def _handler(shell: Any, etype: type, value: BaseException, tb: TracebackType,
             tb_offset: int | None = None) -> list[str]:
    """IPython custom exception handler: a missing name in a check cell means the exercise is not done.

    IPython leaves showing the error to the handler; the kernel then replies with the error as usual."""
    name = getattr(value, "name", None)
    if name and _CHECK_CALL.search(_cell_source(tb)):
        stb = [not_done_message(name)]
    else:
        stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
    shell._showtraceback(etype, value, stb)
    return stb


def install() -> bool:
    """Install the handler in the running IPython shell, if any and if no other custom handler is set; return
    whether it is installed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or shell.custom_exceptions not in ((), (NameError,)):
        return False
    shell.set_custom_exc((NameError,), _handler)
    return True
