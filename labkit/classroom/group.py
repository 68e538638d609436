"""Who the pair is: the report's group cell (``GROUP_ID``, ``MEMBERS``) checked, shown, and read back by the export.

``MEMBERS`` lists each member as ``("Full Name", "student id")``; plain names (``"Ada Lovelace"``) are still
accepted, with an empty student id, so reports handed in before ids were asked for read as they did. The
gradebook writes one row per member, keyed by the student id that an LMS matches on.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from typing import Any, Sequence

from labkit.paths import is_fast

__all__ = ["Group", "GroupMissingError", "check_group", "parse_group", "split_members", "GROUP_ENV", "DEMO_GROUP",
           "GROUP_MIME"]

GROUP_MIME = "application/vnd.labkit.group+json"
GROUP_ENV = "LABKIT_GROUP"
"""Environment variable with a group for headless runs, as ``"ID: first name (id); second name (id)"``."""
DEMO_GROUP = "demo: Demo Student A; Demo Student B"
"""The group that ``labkit run`` (and the fast setting) use when nobody can type names."""
_EXAMPLE = 'MEMBERS = [("Ada Lovelace", "s1234567"), ("Alan Turing", "s7654321")]'


class GroupMissingError(ValueError):
    """The group cell of the report is not filled in."""


@dataclass(frozen=True)
class Group:
    """A pair of students: the group id from the class list, the members' names and their student ids."""

    group_id: str
    members: tuple[str, ...]
    demo: bool = False
    ids: tuple[str, ...] = ()   # one student id per member ("" when not given), padded to the members

    def __post_init__(self) -> None:
        padded = tuple(self.ids[:len(self.members)]) + ("",) * (len(self.members) - len(self.ids))
        object.__setattr__(self, "ids", padded)

    def as_dict(self) -> dict[str, Any]:
        """Return the machine-readable form the export reads back."""
        return {"group_id": self.group_id, "members": list(self.members), "ids": list(self.ids), "demo": self.demo}

    def __str__(self) -> str:
        named = [f"{m} ({i})" if i else m for m, i in zip(self.members, self.ids)]
        text = f"Group {self.group_id}: {' and '.join(named)}"
        return text + (" (demo group: fill in your own names)" if self.demo else "")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        members = " and ".join(f"<b>{html.escape(m)}</b>" + (f" ({html.escape(i)})" if i else "")
                               for m, i in zip(self.members, self.ids))
        note = " <i>(demo group for headless runs: fill in your own names)</i>" if self.demo else ""
        return {"text/plain": str(self),
                "text/html": f"<p>Group <b>{html.escape(self.group_id)}</b>: {members}{note}</p>",
                GROUP_MIME: self.as_dict()}


def split_members(members: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return (names, student ids) of ``MEMBERS``: entries ``("Name", "id")`` or plain ``"Name"`` (id ``""``).

    Entries of any other shape are skipped; the caller decides whether that is an error.

    :param members: the value of ``MEMBERS`` (a list or tuple).
    """
    names, ids = [], []
    for entry in members if isinstance(members, (list, tuple)) else ():
        if isinstance(entry, (list, tuple)) and len(entry) == 2:
            name, student_id = entry
        elif isinstance(entry, (str, int)):
            name, student_id = entry, ""
        else:
            continue
        if isinstance(name, (str, int)) and isinstance(student_id, (str, int)):
            names.append(str(name).strip())
            ids.append(str(student_id).strip())
    return tuple(names), tuple(ids)


_NAMED = re.compile(r"^(?P<name>.*?)\s*(?:\((?P<id>[^()]*)\))?$")


def parse_group(text: str) -> Group:
    """Parse a group written as ``"ID: first name (id); second name (id)"`` (ids optional, ``,`` also separates).

    :param text: the value of ``LABKIT_GROUP``, e.g. ``"G07: Ada Lovelace (s1234567); Alan Turing (s7654321)"``.
    """
    group_id, sep, names = str(text).partition(":")
    entries = [m.strip() for m in names.replace(",", ";").split(";") if m.strip()]
    if not sep or not group_id.strip() or not entries:
        raise ValueError(f"{GROUP_ENV} must look like 'G07: Ada Lovelace (s1234567); Alan Turing (s7654321)', "
                         f"got {text!r}")
    parsed = [_NAMED.match(e) for e in entries]
    return Group(group_id.strip(), tuple(m["name"] for m in parsed), demo=True,
                 ids=tuple((m["id"] or "").strip() for m in parsed))


def _shape_problem(members: Any) -> str | None:
    if isinstance(members, str) or not isinstance(members, (list, tuple)):
        return f"MEMBERS must be a list like {_EXAMPLE}, got {members!r}"
    for entry in members:
        pair = isinstance(entry, (list, tuple)) and len(entry) == 2 and all(isinstance(v, str) for v in entry)
        if not (pair or isinstance(entry, str)):
            return f"each member is (\"Full Name\", \"student id\"), like {_EXAMPLE}; got {entry!r}"
    return None


def check_group(group_id: str, members: Sequence[Any]) -> Group:
    """Check the report's group cell and return the group; raise a clear error when it is not filled in.

    Headless runs cannot type names: when the cell is empty, the group in ``$LABKIT_GROUP`` (set by
    ``labkit run``) is used, else in the fast setting (CI, ``LABKIT_FAST=1``) the demo group. Both are
    marked as demo groups, and the teacher's export lists them as a problem. A group that passes claims the
    metrics store (``labkit.metrics.claim_group``): the numbers in it are this group's from now on.

    :param group_id: the group's id from the class list, e.g. ``"G07"``.
    :param members: each member as ``("Full Name", "student id")`` (a plain name is accepted, without an id).
    """
    problem = _shape_problem(members)
    if problem:
        raise GroupMissingError(problem)
    group_id = str(group_id or "").strip()
    names, ids = split_members(members)
    no_id = [n for m, n, i in zip(members, names, ids) if n and isinstance(m, (list, tuple)) and not i]
    if group_id and names and all(names) and not no_id:
        return _claimed(Group(group_id, names, ids=ids))
    if os.environ.get(GROUP_ENV, "").strip():
        return _claimed(parse_group(os.environ[GROUP_ENV]))
    if is_fast():
        return _claimed(parse_group(DEMO_GROUP))
    empty = []
    if not group_id:
        empty.append('GROUP_ID (your group\'s id from the class list, e.g. "G07")')
    if not names or not all(names):
        empty.append("MEMBERS (each member's full name and student id; drop an empty entry if you work alone)")
    elif no_id:
        empty.append("the student id of " + ", ".join(no_id))
    raise GroupMissingError("Fill in " + " and ".join(empty) + " in this cell, then run it again: "
                            "the teacher's export reads your group from here.")


def _claimed(group: Group) -> Group:
    """Claim the current metrics store for ``group`` and return it."""
    from labkit.metrics import claim_group

    claim_group(group.group_id)
    return group
