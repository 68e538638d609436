"""The teacher's page (``docs/teacher.md``), generated from a run, the benchmarks' JSON and the prose parts.

The page holds the 90-minute plan with the measured time of each notebook, the exercises (read from the
solution notebooks), the expected numbers (the report table of that run), the numbers behind the key and the
Neural Cleanse benchmark over seeds, the grading rubric of the report cells and how to export a class folder.
Nothing on it is written by hand: the prose is in ``docs/_teacher_parts/*.md`` (``PARTS``, in page order; a
``{{field}}`` marker in a part is filled by the generator), the tables and numbers come from these files of the
build folder (``INPUTS``), each named on the page next to its numbers:

- ``build/timings.json`` and ``build/metrics.json``: a full ``make lab`` (or ``labkit run --out build``);
- ``build/key_claims.json``: ``benchmarks/key_claims.py`` (``--stages evasion``, ``--stages backdoor``,
  ``--summarise``);
- ``build/neural_cleanse_eval*.json`` (full setting only): ``benchmarks/neural_cleanse.py``, once at the
  defaults and once with ``--target 7 --trigger pattern``;
- ``build/export_hostile_bench.json``: ``benchmarks/export_hostile.py``.

A missing notebook is shown as *pending*, a missing benchmark file as "Not measured yet: run benchmarks/X.py",
never as a made-up or stale number. After those runs, regenerate the page with (``--note``: a sentence about the
machine and its load, shown with the times)::

    .venv/bin/python -m labkit.classroom.teacher build --out docs/teacher.md --note "..."
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from labkit.classroom.claims_page import BENCHMARKS, KEY_CLAIMS_TITLE, NEURAL_CLEANSE_TITLE, neural_cleanse_section
from labkit.classroom.gradebook import RUBRIC as RUBRIC_ITEMS

__all__ = ["PLAN", "PARTS", "PARTS_DIR", "INPUTS", "plan_table", "exercise_table", "expected_table",
           "neural_cleanse_section", "render_page", "write_page", "main"]

PARTS_DIR = Path(__file__).resolve().parents[2] / "docs" / "_teacher_parts"
"""Where the page's prose lives in a checkout (the page is generated there, not from an installed wheel)."""
PARTS: tuple[str, ...] = ("material", "plan", "fast_setting", "exercises", "expected", "export", "export_hardening",
                          "tournament", "gradebook", "provenance", "nbgrader")
"""The prose parts (``PARTS_DIR/<name>.md``) in page order; a test checks every file there is on the page."""
INPUTS: tuple[tuple[str, str], ...] = (
    ("timings.json", "make lab (seconds per notebook)"),
    ("metrics.json", "make lab (the expected numbers)"),
    *((pattern, f"{script} ({how})" if how else script) for pattern, script, how in BENCHMARKS.values()),
)
"""The build folder's files the page is generated from: (file name or pattern, what writes it)."""

PLAN: tuple[tuple[str, int, str], ...] = (
    ("00_setup", 10, "environment check, the data, train the baseline, predictions and clean accuracy"),
    ("01_evasion_fgsm", 20, "FGSM and PGD against the baseline, accuracy against eps"),
    ("02_adversarial_training", 15, "FGSM and Madry PGD adversarial training, a reactive defence"),
    ("03_backdoor_poisoning", 15, "a trigger, poisoning with ART, the attack success rate"),
    ("04_neural_cleanse", 15, "Neural Cleanse detection, three mitigations, choosing one"),
    ("05_report", 15, "the report table, the trade-off figure, four written answers (graded)"),
)
"""The 90-minute plan: (notebook stem, minutes in class, what the pair does)."""

RUBRIC = """\
| part (nbgrader grade id) | 0 points | 1 point | 2 points |
| --- | --- | --- | --- |
| group cell and table, Steps 1-3 (`report-table`, autograded) | names or student ids missing, or fewer than half of the 13 core rows `ok` from the pair's own run | at least half of the core rows `ok` from the pair's own run | group checked, every core row `ok` and from the pair's own run (the table's `run` column) |
| Question 1: evasion defences (`report-q1`) | no comparison, or FGSM only | compares the defences with numbers, but under FGSM only | compares clean accuracy and accuracy **under PGD** at the same eps for both models, explains why the stronger attack decides (FGSM flatters the FGSM-trained model: it loses far more from FGSM to PGD than Madry's); either choice, if argued from both numbers |
| Question 2: reactive defence (`report-q2`) | restates the number | says the evaluation is not adaptive | compares the non-adaptive and adaptive numbers with the seed spread (on these digits the gap is about a point: small), explains why the report still quotes the adaptive one and names an adaptive attack (BPDA/EOT, attack through the transform) |
| Question 3: Neural Cleanse (`report-q3`) | picks a mitigation without a reason | argues from the ASR only | argues from ASR **and** clean accuracy (and abstentions for filtering), names a way to evade detection (large/spread trigger, several targets) |
| Question 4: one number (`report-q4`) | gives one number | gives two numbers without the caveat | gives clean accuracy and accuracy under the strongest attack (or ASR) with its eps, and says that a gap of a few points between two models may be seed noise |

Total {total} points: the report notebook's nbgrader grade cells, one per row (a test keeps them equal). The first
row is computed (`report.table_points`) by the report's grade cell and again by `labkit export` from the saved
table; the written answers are graded by hand. The solution notebook's answer cells (the teacher's key, blanked in
the student edition) list what a full-mark answer contains; numbers differ between pairs and seeds, the reasoning
should not.
""".format(total=sum(item.points for item in RUBRIC_ITEMS))

def _seconds(value: float | None) -> str:
    if value is None:
        return "pending"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def plan_table(timings: Mapping[str, float], plan: Sequence[tuple[str, int, str]] = PLAN) -> str:
    """Return the 90-minute plan as a Markdown table, with each notebook's measured run time or *pending*.

    :param timings: ``{notebook file name: seconds}`` as ``labkit run`` writes to ``timings.json``.
    :param plan: (notebook stem, minutes in class, what the pair does) rows.
    """
    rows = ["| notebook | minutes in class | headless run time (full setting) | what the pair does |",
            "| --- | ---: | ---: | --- |"]
    start = 0
    for stem, minutes, what in plan:
        measured = timings.get(f"{stem}.ipynb")
        rows.append(f"| `{stem}` | {start}-{start + minutes} | {_seconds(measured)} | {what} |")
        start += minutes
    extensions = sorted(name for name in timings if name.split(".")[0] not in {p[0] for p in plan})
    for name in extensions:
        rows.append(f"| `{name.removesuffix('.ipynb')}` (extension) | homework | {_seconds(timings[name])} | |")
    return "\n".join(rows)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _first_clause(markdown: str, label: str) -> str:
    """Return the first clause of the paragraph that starts with ``**label**`` in ``markdown`` ("" if none)."""
    for paragraph in markdown.split("\n\n"):
        if paragraph.strip().startswith(f"**{label}**"):
            text = " ".join(paragraph.strip()[len(label) + 4:].split())
            return re.split(r"(?<=[^.])[.:?](?:\s|$)", text, maxsplit=1)[0].strip()
    return ""


def exercise_table(notebooks: Sequence[Path]) -> str:
    """Return every exercise of the solution notebooks as a Markdown table, read from the notebooks themselves.

    An exercise is a code cell with solution markers (shown with the self-check that follows it) or a markdown
    solution cell (a written answer, shown with its question).

    :param notebooks: the solution notebooks, in lab order.
    """
    import nbformat

    from labkit.classroom.student import is_exercise

    rows = ["| notebook | exercise | self-check |", "| --- | --- | --- |"]
    for path in notebooks:
        cells = nbformat.read(path, as_version=4).cells
        for i, cell in enumerate(cells):
            if not is_exercise(cell):
                continue
            before = next((c.source for c in reversed(cells[:i]) if c.cell_type == "markdown" and (
                "**Exercise" in c.source or "**Question" in c.source)), "")
            label = re.findall(r"\*\*((?:Exercise|Question) \d+\.)\*\*", before)
            what = f"{label[-1]} {_first_clause(before, label[-1])}" if label else ""
            if cell.cell_type == "markdown":
                check = "written answer (graded with the rubric)"
            else:
                later = next((c.source for c in cells[i + 1:] if c.cell_type == "code" and "labkit.check." in c.source),
                             "")
                found = re.search(r"labkit\.check\.(\w+)", later)
                check = f"`labkit.check.{found.group(1)}`" if found else ""
            rows.append(f"| `{path.stem}` | {what.replace('|', '/')} | {check} |")
    return "\n".join(rows)


def expected_table(metrics: Mapping[str, Any]) -> str:
    """Return the report table of a run as a Markdown table (the numbers a pair should come close to).

    :param metrics: the run's metrics store (``metrics.json``).
    """
    from labkit.classroom.report import report_table

    table = report_table(dict(metrics))
    columns = ["clean accuracy", "accuracy under attack", "attack success", "notes", "status"]
    rows = ["| scenario | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * 3 + " --- | --- |"]
    for name, row in table.iterrows():
        status = row["status"] if row["status"] == "ok" else f"pending ({row['status']})"
        rows.append(f"| {name} | " + " | ".join(_cell(row[c]) for c in columns[:-1]) + f" | {status} |")
    return "\n".join(rows)


def _part(name: str, parts: Path, **fields: str) -> str:
    """Return the prose part ``<parts>/<name>.md`` with its ``{{field}}`` markers filled in.

    :param name: the part's name (a file of ``PARTS``).
    :param parts: the folder of the parts.
    :param fields: the values of the part's markers; a marker left without one is an error.
    """
    path = parts / f"{name}.md"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: the teacher's page's prose lives in a labkit checkout's "
                                f"docs/_teacher_parts/; run this from the checkout (or pass --parts DIR)")
    text = path.read_text().strip()
    for field_name, value in fields.items():
        text = text.replace("{{" + field_name + "}}", value)
    left = re.findall(r"\{\{(\w+)\}\}", text)
    if left:
        raise ValueError(f"{path}: no value for {', '.join(left)}; the generator fills only "
                         f"{', '.join(fields) or 'no markers'}")
    return text


def _header(source: str, note: str) -> str:
    """Return the page's header comment: how to regenerate it and from which inputs."""
    command = f"python -m labkit.classroom.teacher {source} --out docs/teacher.md"
    if note:
        command += " --note " + shlex.quote(note)
    inputs = "\n".join(f"  {source}/{name}: {producer}" for name, producer in INPUTS)
    text = (f"Generated by labkit/classroom/teacher.py: edit the prose in docs/_teacher_parts/*.md or the\n"
            f"generator, never this page (a regeneration overwrites it).\nRegenerate after a full `make lab` and the "
            f"benchmarks:\n  .venv/bin/{command}\nInputs (a missing benchmark file shows as 'Not measured yet'):\n"
            f"{inputs}\n  notebooks/*.ipynb: the exercise table\n  docs/_teacher_parts/*.md: the prose")
    return "<!--\n" + text.replace("-->", "-- >") + "\n-->"


def render_page(timings: Mapping[str, float], metrics: Mapping[str, Any], *, source: str = "build",
                note: str = "", benchmarks: Sequence[Mapping[str, Any]] = (), benchmark_files: Sequence[str] = (),
                benchmarks_why: str = "", claims: Mapping[str, Any] | None = None,
                hostile: Mapping[str, Any] | None = None, parts: str | Path = PARTS_DIR) -> str:
    """Return the teacher's page as Markdown.

    :param timings: the run's ``timings.json``.
    :param metrics: the run's ``metrics.json``.
    :param source: the build folder the numbers come from, named on the page.
    :param note: a sentence about the run (machine, load) printed under the plan's heading.
    :param benchmarks: Neural Cleanse benchmark results to show (see ``neural_cleanse_section``).
    :param benchmark_files: their files, named under the table.
    :param benchmarks_why: why there are none to show, when files were found but none of the full setting.
    :param claims: ``key_claims.json`` of ``benchmarks/key_claims.py``, quoted in its own section.
    :param hostile: ``export_hostile_bench.json`` of ``benchmarks/export_hostile.py``, quoted in the export section.
    :param parts: the folder of the prose parts (``docs/_teacher_parts``).
    """
    from labkit.classroom.claims_page import export_hostile_sentence, key_claims_section, not_measured
    from labkit.classroom.runner import lab_notebooks

    parts = Path(parts)
    fields = {"source": source, "export_hostile_benchmark": export_hostile_sentence(hostile or {}, source)}
    text = {name: _part(name, parts, **fields) for name in PARTS}
    missing = [stem for stem, _, _ in PLAN if f"{stem}.ipynb" not in timings]
    pending = (f"\n**Pending:** {', '.join(f'`{m}`' for m in missing)} did not run in `{source}`; their times and "
               f"numbers appear after a full run (`make lab`) and `python -m labkit.classroom.teacher build`.\n"
               if missing else "")
    claims_text = (key_claims_section(claims or {}, source) or
                   f"## {KEY_CLAIMS_TITLE}\n\n{not_measured('key_claims', source)}\n")
    nc_text = (neural_cleanse_section(benchmarks, benchmark_files) or
               f"## {NEURAL_CLEANSE_TITLE}\n\n{not_measured('neural_cleanse', source, benchmarks_why)}\n")
    return f"""{_header(source, note)}

# Teacher's guide

This page is generated by `python -m labkit.classroom.teacher {source} --out docs/teacher.md` from
`{source}/timings.json` and `{source}/metrics.json` (default data, seed 0) and the benchmarks' files under
`{source}/`, each named next to its numbers. Regenerate it after `make lab` to show your machine's numbers.

## Material

{text["material"]}

## The 90-minute plan

{text["plan"]}{(chr(10) + chr(10) + note) if note else ""}
{pending}
{plan_table(timings)}

{text["fast_setting"]}

## Exercises

{text["exercises"]}

{exercise_table(lab_notebooks())}

## Expected numbers

{text["expected"]}

{expected_table(metrics)}

{claims_text}
{nc_text}
## Grading rubric (report cells)

{RUBRIC}
## Exporting a class folder

{text["export"]}

{text["export_hardening"]}

{text["tournament"]}

{text["gradebook"]}

{text["provenance"]}

{text["nbgrader"]}
"""


def _load(path: Path) -> dict[str, Any]:
    """Return the parsed JSON file at ``path`` ({} when it does not exist)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON ({err}): rerun what writes it, or remove it") from None
    return data if isinstance(data, dict) else {}


def write_page(build: str | Path = "build", out: str | Path = "docs/teacher.md", *, note: str = "",
               parts: str | Path = PARTS_DIR) -> Path:
    """Render the page from the build folder's files (``INPUTS``) and write it to ``out``.

    :param build: the build folder of a ``labkit run``.
    :param out: the Markdown file to write.
    :param note: a sentence about the run (machine, load) printed under the plan's heading.
    :param parts: the folder of the prose parts (``docs/_teacher_parts``).
    """
    build, out = Path(build), Path(out)
    if not (build / "timings.json").exists():
        raise FileNotFoundError(f"no {build / 'timings.json'}: run `labkit run --out {build}` (or `make lab`) first")
    from labkit.metrics import load_metrics

    paths = sorted(build.glob("neural_cleanse_eval*.json"),
                   key=lambda path: (path.name != "neural_cleanse_eval.json", path.name))  # the default first
    full = [(path, result) for path, result in ((p, _load(p)) for p in paths) if result.get("setting") == "full"]
    why = f"only FAST runs in {', '.join(f'`{p}`' for p in paths)}" if paths and not full else ""
    page = render_page(_load(build / "timings.json"), load_metrics(build / "metrics.json"), source=str(build),
                       note=note, benchmarks=[r for _, r in full], benchmark_files=[str(p) for p, _ in full],
                       benchmarks_why=why, claims=_load(build / "key_claims.json"),
                       hostile=_load(build / "export_hostile_bench.json"), parts=parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m labkit.classroom.teacher [BUILD] [--out FILE] [--note TEXT]``: regenerate the teacher's page."""
    parser = argparse.ArgumentParser(prog="python -m labkit.classroom.teacher", description=main.__doc__)
    parser.add_argument("build", nargs="?", default="build", help="build folder of a labkit run (default: build)")
    parser.add_argument("--out", default="docs/teacher.md", help="page to write (default: docs/teacher.md)")
    parser.add_argument("--note", default="", help="a sentence about the run (machine, load) shown with the times")
    parser.add_argument("--parts", default=str(PARTS_DIR), help=f"the prose parts (default: {PARTS_DIR})")
    args = parser.parse_args(argv)
    try:
        print("wrote", write_page(args.build, args.out, note=args.note, parts=args.parts))
    except (FileNotFoundError, ValueError) as err:
        print(f"labkit.classroom.teacher: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
