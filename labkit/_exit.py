"""A quick process exit: the interpreter's last garbage collection skips the objects alive at exit.

When Python exits it runs a full garbage collection over every object still alive. After TensorFlow, Keras and
ART are imported that is millions of objects: the collection took about 2 s of a 2-core machine's time at every
exit of a kernel, a CLI call or a test's child process, while the operating system frees the memory anyway
(benchmarks/process_exit.py measures it into build/process_exit.json). ``quick_exit_gc`` (called by
``import labkit``) registers ``gc.freeze`` with ``atexit``: the objects alive when the exit starts move to the
collector's permanent generation, which that last collection does not traverse.

What it changes: a ``__del__`` of an object caught in a reference cycle does not run at exit (Python never
promised it would); ``atexit`` handlers, ``weakref.finalize`` callbacks registered for exit, and objects freed by
their reference count run as before.
"""

from __future__ import annotations

import atexit
import gc

__all__ = ["quick_exit_gc"]


def quick_exit_gc() -> None:
    """Register ``gc.freeze`` to run at exit, so the final collection skips live objects (once, however often)."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
