"""Self-checks for the lab's exercises: ``labkit.check.<exercise>(...)`` after each exercise cell.

Each check recomputes the pair's result independently (shapes, ranges, the number itself within a
tolerance), prints one verdict line, ``[PASSED] <check>`` when it agrees and ``[NOT YET] <check>. Hint: ...``
when it does not (what to look at, never the answer), and returns a ``Verdict`` (true when it passed, shown as
nothing in a notebook): a failing check never stops the notebook. With ``strict=True``
(or the environment variable ``LABKIT_STRICT_CHECKS=1``) a failing check raises ``CheckFailed`` instead,
which is what the tests and a teacher's automated run want.

One submodule per part of the lab; every check is reached as ``labkit.check.<name>``. The student edition's
unfilled exercises call ``labkit.check.todo``, and a check run before its exercise says the exercise is not done
(``labkit.check._notebook``).
"""

from labkit.check._base import *  # noqa: F401,F403
from labkit.check._base import __all__ as _base_all
from labkit.check.availability import *  # noqa: F401,F403
from labkit.check.availability import __all__ as _availability_all
from labkit.check.clean_label import *  # noqa: F401,F403
from labkit.check.clean_label import __all__ as _clean_label_all
from labkit.check.evasion import *  # noqa: F401,F403
from labkit.check.evasion import __all__ as _evasion_all
from labkit.check.extraction import *  # noqa: F401,F403
from labkit.check.extraction import __all__ as _extraction_all
from labkit.check.membership import *  # noqa: F401,F403
from labkit.check.membership import __all__ as _membership_all
from labkit.check.poisoning import *  # noqa: F401,F403
from labkit.check.poisoning import __all__ as _poisoning_all
from labkit.check.tournament import *  # noqa: F401,F403
from labkit.check.tournament import __all__ as _tournament_all

__all__ = [*_base_all, *_evasion_all, *_poisoning_all, *_membership_all, *_extraction_all, *_clean_label_all,
           *_availability_all, *_tournament_all]

from labkit.check._notebook import install as _install_not_done_handler

_install_not_done_handler()   # in a notebook, a check run before its exercise says so instead of a NameError
