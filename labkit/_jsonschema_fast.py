"""Let jsonschema skip its "iri" format checker: ``import nbformat`` 3.4 s -> 0.3 s. Importing this module does it.

jsonschema (under nbformat) imports ``rfc3987_syntax`` for that one format checker, and that import builds ~35
Earley parsers, ~3 s (python-jsonschema/jsonschema#1392, #1521). No notebook or Jupyter schema uses the "iri"
format; a ``None`` in ``sys.modules`` makes that import fail, and jsonschema then leaves the checker out (nbformat
still validates). It must happen before jsonschema is first imported:

- the ``labkit`` command imports this module first (``labkit.cli``);
- ``make test`` loads it as an early pytest plugin (``-p labkit._jsonschema_fast``), before the entry-point plugins:
  nbval imports nbformat when pytest loads it, in the main process and in each worker.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("rfc3987_syntax", None)
