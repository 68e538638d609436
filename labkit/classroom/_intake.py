"""How ``labkit export`` takes in a submissions folder it cannot trust, and where it may write.

Every entry under the folder is listed with what happened to it: read, or skipped with the reason
(hidden, a Jupyter checkpoint folder, the export's own output, a dangling symlink, a symlink loop, a
symlink leading out of the folder, a fifo ...). Nothing is followed out of the folder and no fifo or
device is ever opened. A file's size is checked with ``fstat`` before it is read, and at most
``cap + 1`` bytes are read. The JSON is parsed so that no value can stop the export: integers past
Python's digit limit become infinity, lone surrogates become U+FFFD, and each is reported.
Output files are replaced, never written through: a symlink planted under ``--out`` is removed
(the link, never its target) before the export writes there.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import sys
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Found", "IntakeError", "find_entries", "read_capped", "load_notebook", "display", "printable",
           "scrub", "check_out", "prepare_out", "write_file", "MAX_BYTES"]

MAX_BYTES = 50_000_000
"""The largest file read (a report notebook with its figures is well under 5 MB)."""
SKIPPED_DIRS = {".ipynb_checkpoints": "Jupyter's autosave copies", "__MACOSX": "macOS archive metadata",
                "__pycache__": "Python byte code"}
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


class IntakeError(Exception):
    """A file that cannot be read as a notebook; the message is the row's problem."""


@dataclass
class Found:
    """One entry under the submissions folder: the file to read (None: skipped) and why it was skipped."""

    rel: str                       # shown name, relative to the submissions folder ("/" ends a folder)
    path: Path | None              # the regular file to read (a symlink's target inside the folder)
    reason: str | None = None      # why the entry was not read


def display(text: str) -> str:
    """Return ``text`` with undecodable bytes of a file name and lone surrogates shown as U+FFFD.

    :param text: a file name (``os.fsdecode`` keeps non-UTF-8 bytes as lone surrogates) or any text.
    """
    return _SURROGATE.sub("\ufffd", text)


def printable(text: str) -> str:
    """Return ``text`` safe for a terminal: control, format (bidi) and escape characters removed.

    :param text: a line built from submission names and problems.
    """
    return "".join(c for c in display(text) if unicodedata.category(c) not in {"Cc", "Cf", "Cs"})


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a regular file"


def _symlink(path: Path, rel: str, root_real: Path) -> Found:
    """Return what to do with a symlink: read its target only when it is a regular file inside the folder."""
    try:
        target = Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:
        return Found(rel, None, "dangling symbolic link (its target does not exist): skipped")
    except OSError as err:
        why = "symbolic link loop" if err.errno == errno.ELOOP else f"symbolic link unreadable ({err.strerror})"
        return Found(rel, None, f"{why}: skipped")
    mode = target.stat().st_mode
    if stat.S_ISDIR(mode):
        return Found(rel + "/", None, "symbolic link to a folder: not followed")
    if not target.is_relative_to(root_real):
        return Found(rel, None, "symbolic link to a file outside the submissions folder: refused, not read "
                                "(ask for the file itself)")
    if not stat.S_ISREG(mode):
        return Found(rel, None, f"symbolic link to {_kind(mode)}: skipped")
    return Found(rel, target)


def _folder(path: Path, name: str, rel: str, skip: Path | None) -> Found | None:
    """Return why a folder is not entered, or None to enter it."""
    if skip is not None and os.path.realpath(path) == str(skip):
        return Found(rel + "/", None, "the export's own output folder (--out): skipped")
    if name in SKIPPED_DIRS:
        return Found(rel + "/", None, f"folder of {SKIPPED_DIRS[name]}: skipped")
    if name.startswith("."):
        return Found(rel + "/", None, "hidden folder (name starts with '.'): skipped")
    return None


def find_entries(root: Path, skip: Path | None = None) -> list[Found]:
    """Return every entry under ``root`` in name order, each read or skipped with its reason.

    Symlinks are never followed out of ``root`` nor into folders, so the walk always ends.

    :param root: the submissions folder, or one notebook.
    :param skip: the export's output folder (resolved), listed but not entered.
    """
    root = Path(root)
    if not root.is_dir():
        return [Found(display(root.name), root)]
    root_real = Path(os.path.realpath(root))
    found: list[Found] = []
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            found.append(Found(display(prefix or "."), None, f"folder could not be listed ({err.strerror})"))
            continue
        subfolders = []
        for entry in entries:
            rel = display(prefix + entry.name)
            path = Path(entry.path)
            if entry.is_symlink():
                found.append(_symlink(path, rel, root_real))
            elif entry.is_dir(follow_symlinks=False):
                refused = _folder(path, entry.name, rel, skip)
                if refused is None:
                    subfolders.append((path, prefix + entry.name + "/"))
                else:
                    found.append(refused)
            elif not entry.is_file(follow_symlinks=False):
                found.append(Found(rel, None, f"{_kind(entry.stat(follow_symlinks=False).st_mode)}: skipped"))
            elif entry.name.startswith("."):
                found.append(Found(rel, None, "hidden file (name starts with '.'): skipped"))
            else:
                found.append(Found(rel, path))
        stack.extend(reversed(subfolders))
    return sorted(found, key=lambda f: f.rel)


def read_capped(path: Path, cap: int = MAX_BYTES) -> bytes:
    """Return the bytes of the regular file ``path``, checking its size before reading it.

    Opened without following a symlink and without blocking (a fifo swapped in cannot hang the export).

    :param path: the file.
    :param cap: the largest size read, in bytes.
    :raises IntakeError: not a regular file, or larger than ``cap``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise IntakeError(f"could not be opened ({err.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise IntakeError(f"{_kind(info.st_mode)}: skipped")
        if info.st_size > cap:
            raise IntakeError(f"too large to read ({info.st_size / 1e6:.0f} MB; the limit is {cap / 1e6:.0f} MB)")
        raw = handle.read(cap + 1)
    if len(raw) > cap:
        raise IntakeError(f"too large to read (more than {cap / 1e6:.0f} MB)")
    return raw


def scrub(data: Any) -> int:
    """Replace lone surrogates in every string of parsed JSON (keys too), in place; return how many strings.

    Iterative, so no nesting depth can exhaust the stack.

    :param data: what ``json.loads`` returned.
    """
    changed = 0
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                value = node[key]
                if isinstance(key, str) and _SURROGATE.search(key):
                    del node[key]
                    key, changed = display(key), changed + 1
                    node[key] = value
                if isinstance(value, str) and _SURROGATE.search(value):
                    node[key], changed = display(value), changed + 1
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, str) and _SURROGATE.search(value):
                    node[i], changed = display(value), changed + 1
                elif isinstance(value, (dict, list)):
                    stack.append(value)
    return changed


def _parse(raw: bytes) -> tuple[Any, list[str]]:
    """Return the JSON in ``raw`` and notes on what had to be replaced to read it."""
    huge: list[int] = []
    limit = sys.get_int_max_str_digits() or 4300

    def parse_int(digits: str) -> int | float:
        if len(digits) > limit:
            huge.append(len(digits))
            return float("-inf") if digits.startswith("-") else float("inf")
        return int(digits)

    try:
        data = json.loads(raw.decode("utf-8-sig"), parse_int=parse_int)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise IntakeError(f"not JSON: {printable(str(err).splitlines()[0] if str(err) else type(err).__name__)[:120]}")
    notes = [f"{len(huge)} integer(s) longer than {limit} digits read as infinity"] if huge else []
    bad = scrub(data) if _ESCAPED_SURROGATE.search(raw) else 0   # only a JSON escape can make a lone surrogate
    if bad:
        notes.append(f"{bad} text(s) held invalid Unicode (lone surrogates), shown as \ufffd")
    return data, notes


def _prune(data: dict) -> int:
    """Drop cells and outputs that are not objects, and malformed fields nbformat would trip on; return how many."""
    dropped = 0
    cells = data["cells"]
    data["cells"] = [c for c in cells if isinstance(c, dict)]
    dropped += len(cells) - len(data["cells"])
    for cell in data["cells"]:
        for key, kind in (("metadata", dict), ("attachments", dict), ("outputs", list)):
            if key in cell and not isinstance(cell[key], kind):
                del cell[key]
                dropped += 1
        if not isinstance(cell.get("source", ""), (str, list)):
            cell["source"], dropped = str(cell["source"]), dropped + 1
        outputs = cell.get("outputs")
        if outputs is not None:
            cell["outputs"] = [o for o in outputs if isinstance(o, dict)]
            dropped += len(outputs) - len(cell["outputs"])
    return dropped


def load_notebook(raw: bytes) -> tuple[Any, list[str]]:
    """Return the nbformat 4 notebook in ``raw`` (never validated by running anything) and notes.

    :param raw: the file's bytes.
    :raises IntakeError: not JSON, not a notebook, or an nbformat older than 4 (with what to do).
    """
    from nbformat.v4 import to_notebook_json

    data, notes = _parse(raw)
    if not isinstance(data, dict) or "nbformat" not in data:
        raise IntakeError("not a notebook: JSON without 'nbformat' and 'cells'")
    version = data.get("nbformat")
    if version in (1, 2, 3) or "worksheets" in data:
        raise IntakeError(f"nbformat {version} notebook: open it in Jupyter and save it again to convert it "
                          "to nbformat 4")
    if version != 4 or not isinstance(data.get("cells"), list):
        raise IntakeError(f"not a notebook: nbformat {printable(str(version))[:20]} without a list of 'cells'")
    if not isinstance(data.get("metadata"), dict):
        data["metadata"] = {}
    dropped = _prune(data)
    if dropped:
        notes.append(f"{dropped} malformed cell(s), output(s) or field(s) ignored")
    return to_notebook_json(data), notes


def check_out(source: Path, out: str | Path) -> Path:
    """Return the resolved output folder, refusing one reached through a symlink inside the submissions.

    :param source: the resolved submissions folder.
    :param out: the ``--out`` the teacher gave.
    :raises ValueError: ``--out`` equals or contains the submissions, or passes a symlink inside them.
    """
    absolute = Path(os.path.abspath(out))
    resolved = absolute.resolve()
    if source.is_dir() and (resolved == source or source.is_relative_to(resolved)):
        raise ValueError(f"--out {display(str(resolved))} would mix the export with the submissions; "
                         "choose another folder")
    for inside in (absolute, resolved):
        if inside.is_relative_to(source):
            step = source
            for part in inside.relative_to(source).parts:
                step = step / part
                if step.is_symlink():
                    raise ValueError(f"--out passes through the symbolic link {display(str(step))} inside the "
                                     "submissions folder; choose an --out outside the submissions")
    return resolved


def prepare_out(out: Path, names: tuple[str, ...]) -> None:
    """Create ``out`` and remove symlinks (the links, never their targets) where the export will write.

    :param out: the resolved output folder.
    :param names: the files and folders the export writes directly under ``out``.
    """
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (out / name).is_symlink():
            (out / name).unlink()


def write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` by replacing it (a symlink there is replaced, never written through).

    :param path: the output file.
    :param text: its content (lone surrogates shown as U+FFFD).
    """
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".labkit-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
