"""Copy the lab into a folder where a pair works: ``labkit notebooks --out DIR``.

The folder gets the numbered notebooks (the student edition by default, the solution key with ``key=True``)
and ``data/README.md``; run there, a notebook writes its numbers to ``DIR/build`` and reads local data from
``DIR/data`` (``labkit.paths``). The copy can be repeated safely, e.g. at every start of a pair's JupyterHub
server: ``DIR/.labkit-lab.json`` keeps a digest of every file as labkit wrote it, so a file the pair has since
edited is never overwritten (unless ``force=True``), while untouched files are brought up to date.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["copy_lab", "CopyResult", "EditedFilesError", "MANIFEST"]

MANIFEST = ".labkit-lab.json"
"""The file in the copied folder that records the digest of every file as labkit last wrote it."""


class EditedFilesError(FileExistsError):
    """Files in the target folder differ from what labkit wrote there: a pair's work, not to be overwritten."""


@dataclass
class CopyResult:
    """What ``copy_lab`` did, file by file (paths relative to the target folder)."""

    folder: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lab_files(*, key: bool = False) -> dict[str, bytes]:
    """Return the lab's files as ``{relative path: content}``: the notebooks and ``data/README.md``.

    :param key: the solution key instead of the student edition (exercises blanked, outputs stripped).
    """
    import nbformat

    from labkit.classroom.runner import lab_notebooks
    from labkit.classroom.student import student_notebook

    files: dict[str, bytes] = {}
    notebooks = lab_notebooks()
    for path in notebooks:
        if key:
            files[path.name] = path.read_bytes()
        else:
            files[path.name] = nbformat.writes(student_notebook(nbformat.read(path, as_version=4), path.name)).encode()
    readme = notebooks[0].parent.parent / "data" / "README.md"
    if readme.is_file():
        files["data/README.md"] = readme.read_bytes()
    return files


def _read_manifest(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def edited_files(folder: Path, files: dict[str, bytes]) -> list[str]:
    """Return the files in ``folder`` that would change and were not written by labkit as they are now.

    :param folder: the target folder.
    :param files: what is about to be written (``lab_files``).
    """
    written_before = _read_manifest(folder)
    edited = []
    for name, data in files.items():
        target = folder / name
        if target.exists():
            current = _digest(target.read_bytes()) if target.is_file() else "not a file"
            if current != _digest(data) and current != written_before.get(name):
                edited.append(name)
    return edited


def copy_lab(out: str | Path, *, key: bool = False, force: bool = False) -> CopyResult:
    """Copy the lab into ``out`` and return what was written.

    :param out: the folder to write into (created).
    :param key: copy the solution key instead of the student edition.
    :param force: overwrite files edited since labkit wrote them (a pair's work is then lost).
    :raises EditedFilesError: when files were edited and ``force`` is not set; nothing is written then.
    :raises labkit.paths.LabNotFoundError: when no lab notebooks are found.
    """
    folder = Path(out)
    files = lab_files(key=key)
    edited = [] if force else edited_files(folder, files)
    if edited:
        raise EditedFilesError(
            f"{len(edited)} file(s) in {folder} were changed since labkit wrote them (a pair's work?): "
            f"{', '.join(edited)}. Nothing was written. Move them away, copy into another folder, or pass --force "
            "to overwrite them."
        )
    result = CopyResult(folder)
    manifest = _read_manifest(folder)
    for name, data in files.items():
        target = folder / name
        if target.is_file() and target.read_bytes() == data:
            result.unchanged.append(name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            result.written.append(name)
        manifest[name] = _digest(data)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return result
