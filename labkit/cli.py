"""The ``labkit`` command: ``labkit notebooks`` copies the lab into a folder for a class, ``labkit run`` executes
the lab's notebooks headlessly, ``labkit student`` writes the student edition, ``labkit export`` exports reports,
``labkit tournament`` runs the class tournament."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import labkit._jsonschema_fast  # noqa: F401  (first: nbformat's jsonschema then skips its slow "iri" checker)

__all__ = ["main"]


def _run(args: argparse.Namespace) -> int:
    from labkit.classroom.runner import KernelStartFailed, NotebookFailed, RunLocked, run_notebooks

    try:
        timings = run_notebooks(args.notebooks, out=args.out, fast=args.fast, cell_timeout=args.cell_timeout)
    except (NotebookFailed, FileNotFoundError, RunLocked, KernelStartFailed) as err:
        print(f"labkit run: {err}", file=sys.stderr)
        return 1
    width = max(map(len, timings))
    for name, seconds in timings.items():
        print(f"{name:<{width}}  {seconds:8.1f} s")
    print(f"wrote {args.out}/metrics.json, {args.out}/timings.json and the executed notebooks in {args.out}/notebooks/")
    print(f"the student edition (exercises blanked) of every notebook: {args.out}/student/")
    if any(name.endswith("_report.ipynb") for name in timings):
        print(f"the teacher's view of the report: {args.out}/report/index.html and {args.out}/report/gradebook.csv")
    return 0


def _export(args: argparse.Namespace) -> int:
    from labkit.classroom.export import export_submissions

    try:
        result = export_submissions(args.submissions, args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f"labkit export: {err}", file=sys.stderr)
        return 1
    if not result.exported:
        print("labkit export: nothing could be exported (see the problems above)", file=sys.stderr)
        return 1
    return 0


def _student(args: argparse.Namespace) -> int:
    import nbformat

    from labkit.classroom.runner import _resolve, lab_notebooks
    from labkit.classroom.student import MarkerError, check_markers, write_student_edition

    try:
        paths = _resolve(args.notebooks) if args.notebooks else lab_notebooks()
        written = write_student_edition(paths, args.out)
    except (MarkerError, FileNotFoundError) as err:
        print(f"labkit student: {err}", file=sys.stderr)
        return 1
    if not written:
        print("labkit student: no notebooks to write", file=sys.stderr)
        return 1
    for source, path in zip(paths, written):
        count = check_markers(nbformat.read(source, as_version=4), source.name)
        print(f"{path}  ({count} exercise{'s' * (count != 1)})")
    return 0


def _notebooks(args: argparse.Namespace) -> int:
    from labkit.classroom.workspace import MANIFEST, copy_lab

    try:
        result = copy_lab(args.out, key=args.key, force=args.force)
    except OSError as err:  # no lab found, edited files, or an unwritable folder
        print(f"labkit notebooks: {err}", file=sys.stderr)
        return 1
    edition = "solution key" if args.key else "student edition"
    for name in result.written:
        print(result.folder / name)
    print(f"wrote {len(result.written)} file(s) of the lab ({edition}) into {result.folder}"
          + (f"; {len(result.unchanged)} already up to date" if result.unchanged else "")
          + f". Run there, a notebook writes its results to {result.folder / 'build'}; "
          f"{result.folder / MANIFEST} records what labkit wrote, so a pair's edits are never overwritten.")
    return 0


def _tournament(args: argparse.Namespace) -> int:
    from labkit.classroom.tournament import make_challenge, run_tournament

    try:
        if args.submissions == "challenge":
            out = make_challenge(args.out or "tournament-challenge", eps=args.eps, n=args.n, seed=args.seed,
                                 clean_floor=args.clean_floor)
            print(f"wrote {out}/challenge.npz (publish it to the class) and {out}/private/heldback.npz (keep it: "
                  f"the defences are scored on it); score with: labkit tournament SUBMISSIONS --challenge {out}")
            return 0
        run_tournament(args.submissions, args.out or "build/tournament", challenge=args.challenge,
                       timeout=args.timeout)
    except (FileNotFoundError, ValueError) as err:
        print(f"labkit tournament: {err}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``labkit`` command."""
    parser = argparse.ArgumentParser(prog="labkit", description="A Jupyter lab kit on machine-learning security.")
    commands = parser.add_subparsers(dest="command", required=True)
    notebooks = commands.add_parser(
        "notebooks", help="copy the lab into a folder for a class (the student edition; --key: the solution key)",
        description="Copy the lab's notebooks (the student edition: exercises blanked) and data/README.md into a "
        "folder where a pair works. Safe to repeat (e.g. at every start of a hub server): files are brought up to "
        "date, but a file the pair has edited is never overwritten without --force.")
    notebooks.add_argument("--out", required=True, help="the folder to copy the lab into (created)")
    notebooks.add_argument("--key", action="store_true", help="copy the solution key instead of the student edition")
    notebooks.add_argument("--force", action="store_true", help="overwrite files edited since labkit wrote them")
    notebooks.set_defaults(handler=_notebooks)
    run = commands.add_parser("run", help="execute the lab's notebooks headlessly and keep metrics and timings")
    run.add_argument("notebooks", nargs="*",
                     help="notebooks to run (default: all, in order), e.g. 00 or 01_evasion_fgsm")
    setting = run.add_mutually_exclusive_group()
    setting.add_argument("--fast", dest="fast", action="store_const", const=True, default=None,
                         help="the smoke setting CI uses: fewer epochs and samples (default: what LABKIT_FAST says)")
    setting.add_argument("--full", dest="fast", action="store_const", const=False,
                         help="the full setting, even when LABKIT_FAST=1 is set")
    run.add_argument("--out", default=os.environ.get("LABKIT_OUT") or "build",
                     help="build folder (default: $LABKIT_OUT if set, else build)")
    run.add_argument("--cell-timeout", type=int, default=1800, help="seconds one cell may run (default: 1800)")
    run.set_defaults(handler=_run)
    student = commands.add_parser("student", help="write the student edition: exercises blanked, outputs stripped",
                                  description="Write the student edition of the lab's notebooks: every nbgrader "
                                  "solution region becomes '# YOUR CODE HERE' and a labkit.check.todo(...) line that says "
                                  "what to write there, "
                                  "every solution markdown cell a placeholder, every output stripped.")
    student.add_argument("notebooks", nargs="*", help="notebooks (default: all), e.g. 01 or 03_backdoor_poisoning")
    student.add_argument("--out", default="build/student", help="output folder (default: build/student)")
    student.set_defaults(handler=_student)
    export = commands.add_parser("export", help="export handed-in report notebooks to sanitised HTML and a gradebook",
                                 description="Read handed-in notebooks (never run, never modified) and write one HTML "
                                 "page per group of its cells tagged 'report', index.html and gradebook.csv. Exits "
                                 "non-zero only when nothing could be exported.")
    export.add_argument("submissions", help="folder of handed-in notebooks (nested folders allowed), or one notebook")
    export.add_argument("--out", default="build/export", help="output folder (default: build/export)")
    export.set_defaults(handler=_export)
    tournament = commands.add_parser(
        "tournament", help="the class tournament: write the challenge, or score a folder of handed-in files",
        description="'labkit tournament challenge --out DIR' writes the public challenge.npz and the private "
        "held-back images; 'labkit tournament SUBMISSIONS --out DIR' scores every <group>.keras and "
        "<group>_attack.npz under SUBMISSIONS (never running code from them) and writes the leaderboard. "
        "See docs/tournament.md.")
    tournament.add_argument("submissions", help="'challenge', or the folder of handed-in files")
    tournament.add_argument("--out", help="output folder (default: tournament-challenge for 'challenge', "
                            "build/tournament for scoring)")
    tournament.add_argument("--challenge", default="tournament-challenge",
                            help="the folder 'labkit tournament challenge' wrote (default: tournament-challenge)")
    tournament.add_argument("--eps", type=float, default=0.11, help="the class budget, L-infinity (default: 0.11)")
    tournament.add_argument("--n", type=int, default=100, help="challenge images (default: 100)")
    tournament.add_argument("--seed", type=int, default=0, help="seed of the images and the scoring (default: 0)")
    tournament.add_argument("--clean-floor", type=float, default=0.8,
                            help="clean accuracy a model needs to be ranked (default: 0.8)")
    tournament.add_argument("--timeout", type=float, default=300.0,
                            help="seconds one model may take to load and score (default: 300)")
    tournament.set_defaults(handler=_tournament)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labkit`` command."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
