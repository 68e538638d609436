"""The teacher's page (``docs/teacher.md``), rendered from a run's ``timings.json`` and ``metrics.json``.

The page holds the 90-minute plan with the measured time of each notebook, the expected numbers (the
report table of that run), the grading rubric of the report cells and how to export a class folder. After
``make lab`` (or any ``labkit run``), regenerate it with::

    python -m labkit.classroom.teacher build --out docs/teacher.md

Notebooks missing from the run are shown as *pending*, never as made-up numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from labkit.classroom.gradebook import RUBRIC as RUBRIC_ITEMS

__all__ = ["PLAN", "plan_table", "exercise_table", "expected_table", "neural_cleanse_section", "render_page",
           "write_page", "main"]

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

EXPORT = """\
Pairs hand in their executed `05_report.ipynb` (the student edition from `labkit student`, filled in and run).
Collect them in one folder (sub-folders per session are fine), then:

```bash
labkit export SUBMISSIONS --out DIR
```

It reads every notebook as data (never runs or changes it) and writes `DIR/index.html` (links to one sanitised
HTML page per group: its cells tagged `report`, tables and figures, no scripts), `DIR/gradebook.csv` and
`DIR/metrics.csv`. Read the `problems` column first: corrupt file, no names, no report cells, duplicate group,
never run, answers left empty, and numbers that are not the pair's own (below). A headless run (`labkit run`,
`make lab`) takes the group from `LABKIT_GROUP` (e.g. `LABKIT_GROUP="G07: Ada Lovelace (s1234567); Alan Turing
(s7654321)"`), else a demo group that the gradebook marks as such.

**`gradebook.csv`: one row per student.** The report's group cell asks each member's name and student id
(`MEMBERS = [("Ada Lovelace", "s1234567"), ...]`; reports with plain names still read, with an empty id). Columns:
`Student`, `ID` (Canvas's own user id: left empty), `SIS User ID` (the student id), `SIS Login ID`, `Section`
(empty), `group`, `file`, `page`; one column per rubric item, `report-table (2 pts)` (computed from the saved table
and where its numbers came from, as the report's grade cell does) and `report-q1 (2 pts)` ... `report-q4 (2 pts)`
(empty: yours to grade); one `check <name>` column per exercise's self-check: `pass`, `hint` or `not run`, as the
pair's checks recorded them (with the origin in brackets when it was not the pair's own run); `total (10 pts)`, the
sum of the graded items so far; `problems`. **`metrics.csv`: one row per group**, the raw numbers of the report
table under a fixed, quoted header of the lab's known keys (a submission cannot add columns).

**Importing into an LMS.** Canvas (Grades > Import): Canvas matches rows on `ID`, `SIS User ID` or `SIS Login ID`,
and every other column it does not know becomes a new assignment, so first delete the columns you do not want
graded there (`group`, `file`, `page`, the `check` columns, `problems`), or copy the `total (10 pts)` column into
the column of your assignment in a gradebook exported from Canvas (its header reads `Lab report (12345)`).
Moodle (Grades > Import > CSV file): under *Identify user by* map `SIS User ID` to *ID number* (or use the email
column of your class list), map `total (10 pts)` (or each rubric column) to the lab's grade item, and set the other
columns to *Ignore*. Text cells that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`) start with `'`.

**Where a number came from, and what that proves.** Every number a notebook records carries its provenance: the
edition (`key` for the solution notebooks in the checkout's `notebooks/`, `student` for every other copy), the run
id (one per `labkit run`, one per kernel session), the notebook, the time, labkit's version and, once known, the
group (the report's group cell claims its store for the group). The student edition records into its own store,
`build/student-run/metrics.json` (the key's is `build/metrics.json`), so a pair in a checkout where `make lab` ran
never reads the key's numbers. The report's `run` column and the export's `problems` column name every row that
came from the key's run, from another group's run, or from no run (a number without provenance). This catches
honest mistakes (the wrong store, the key's notebooks run by a pair), a copied build folder (another group's claimed
store, or the key's), and a report that was never run. It cannot catch a pair that forges its store or the saved
outputs by hand: provenance is written by the pair's own kernel, and nothing in a notebook can prove where it ran.
Treat it as a guard against mistakes, not as proof.

**nbgrader.** The notebooks work with nbgrader 0.9.6 (`pip install "labkit-mlsec[grading]"`, an optional extra).
Put the lab's notebooks in `course/source/lab/` (never run them there: a store written in `source/` would be
copied over the pairs'), and in `nbgrader_config.py` give the kernels time to import TensorFlow
(`c.Execute.timeout = 600` and `c.Execute.startup_timeout = 300`; the defaults, 30 s and 60 s, can fail on a
loaded machine). `nbgrader generate_assignment lab`
releases the same student notebooks as `labkit student`. Pairs hand in the whole assignment folder, including
`build/student-run/metrics.json` (their numbers; keep the released folder outside any labkit checkout, so that the
store sits there). `nbgrader autograde lab` re-runs the report in a fresh folder with that store copied beside it:
the table and its `report-table` grade cell read the pair's own numbers (2 points when every core row is `ok` from
the pair's own run); the four written answers wait for manual grading in the formgrader. `nbgrader
generate_feedback lab` then writes each pair's feedback page. (Tested end to end in `tests/test_nbgrader.py`.)
"""


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


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


def _rates(values: Sequence[Any]) -> str:
    shown = [v for v in values if isinstance(v, (int, float))]
    return "—" if not shown else (f"{min(shown):.0%}" if min(shown) == max(shown) else
                                  f"{min(shown):.0%}-{max(shown):.0%}")


def _seeds(result: Mapping[str, Any]) -> str:
    planned = result.get("settings", {}).get("seeds", [])
    return ", ".join(map(str, planned)) or "?"


def neural_cleanse_section(results: Sequence[Mapping[str, Any]]) -> str:
    """Return the Markdown section on Neural Cleanse's benchmark runs (``benchmarks/neural_cleanse.py``), "" if none.

    :param results: the JSON files the benchmark wrote (``<build>/neural_cleanse_eval*.json``), one per setting.
    """
    if not results:
        return ""
    rows = ["| data set · target · trigger | seeds | target's anomaly index per seed | target flagged | clean model "
            "flagged | passes run (backdoored; clean) | pruning: ASR left, removed by its own check | filtering: "
            "ASR left, honest inputs refused |", "| --- | --- | --- | ---: | ---: | --- | --- | --- |"]
    for r in results:
        seeds = [s["seed"] for s in r.get("seeds", [])]
        pruning, filtering = r.get("pruning", {}), r.get("filtering", {})
        removed = pruning.get("backdoor_removed_by_its_own_check", [])
        rows.append(
            f"| {r.get('dataset')} · {r.get('target_class')} · `{r.get('trigger')}` | {', '.join(map(str, seeds))}"
            f"{'' if r.get('complete', True) else ' (incomplete run: planned ' + _seeds(r) + ')'} | "
            f"{', '.join(f'{i:.2f}' for i in r.get('target_anomaly_index_per_seed', []))} | "
            f"{r.get('detection_rate', math.nan):.0%} | {r.get('false_positive_rate', math.nan):.0%} | "
            f"{'; '.join(f'{a}, {b}' for a, b in r.get('search_epochs', []))} | "
            f"{_rates(pruning.get('attack_success_rate', []))}, {sum(map(bool, removed))}/{len(removed)} | "
            f"{_rates(filtering.get('attack_success_rate', []))}, {_rates(filtering.get('clean_abstain_rate', []))} |")
    budget = results[0].get("settings", {}).get("steps")
    return f"""## Neural Cleanse over seeds (benchmark)

Measured by `benchmarks/neural_cleanse.py` (one clean and one backdoored model per seed, 10% poison, the
defender holding 15% of the clean training images, the trigger search's default budget of {budget} passes over
them with early stopping). A class is flagged above an anomaly index of 2; the target should stand well clear
of it. Pruning's and filtering's ASR is the real trigger's on the test images, next to whether the mitigation
itself reported the backdoor removed and, for filtering, the share of honest test inputs it refuses.

{chr(10).join(rows)}
"""


def render_page(timings: Mapping[str, float], metrics: Mapping[str, Any], *, source: str = "build",
                note: str = "", benchmarks: Sequence[Mapping[str, Any]] = (),
                claims: Mapping[str, Any] | None = None) -> str:
    """Return the teacher's page as Markdown.

    :param timings: the run's ``timings.json``.
    :param metrics: the run's ``metrics.json``.
    :param source: the build folder the numbers come from, named on the page.
    :param note: a sentence about the run (machine, load) printed under the plan's heading.
    :param benchmarks: Neural Cleanse benchmark results to show (see ``neural_cleanse_section``).
    :param claims: ``key_claims.json`` of ``benchmarks/key_claims.py``, quoted in its own section when given.
    """
    from labkit.classroom.claims_page import key_claims_section
    from labkit.classroom.runner import lab_notebooks

    missing = [stem for stem, _, _ in PLAN if f"{stem}.ipynb" not in timings]
    pending = (f"\n**Pending:** {', '.join(f'`{m}`' for m in missing)} did not run in `{source}`; their times and "
               f"numbers appear after a full run (`make lab`) and `python -m labkit.classroom.teacher build`.\n"
               if missing else "")
    return f"""# Teacher's guide

This page is generated by `python -m labkit.classroom.teacher {source} --out docs/teacher.md` from `{source}/timings.json`
and `{source}/metrics.json` (default data, seed 0). Regenerate it after
`make lab` to show your machine's numbers.

## Material

- `notebooks/` are the **solution key**: every exercise is filled in and marked with nbgrader's markers
  (`### BEGIN SOLUTION` / `### END SOLUTION` in code cells, solution markdown cells for the report's answers),
  so the notebooks also work with nbgrader: `nbgrader generate_assignment` (checked with nbgrader 0.9.6) releases
  the same student notebooks as `labkit student`; the report's table is an autograded grade cell and its written
  answers are grade cells, 2 points each, as in the rubric below. The self-checks are not graded cells: they help the
  pair, they do not score (the gradebook lists whether each passed).
- `labkit student --out DIR` (default `build/student`) writes the **student edition**: each marked region becomes
  `# YOUR CODE HERE` / `labkit.check.todo("Exercise N: ...")` (run unfilled, it says what to write), each
  answer a placeholder, outputs stripped, all else
  identical. `labkit run` writes it to `build/student/` too. Hand out that folder.
- After every exercise a self-check cell (`labkit.check.<exercise>(...)`) recomputes the result independently
  and prints **[PASSED]**, or **[NOT YET]** with a hint (what to look at, never the answer).
  A failed check never stops a pair's notebook;
  `labkit run` (and so `make lab`) runs the solution key strictly, where a failed check is an error.

## The 90-minute plan

Run times are headless wall times of the solution notebooks from `{source}/timings.json` (CPU only; in class
add the time to read and write the exercises). Run `make lab` on the classroom machine beforehand: it also checks
the installation.{(chr(10) + chr(10) + note) if note else ""}
{pending}
{plan_table(timings)}

The FAST setting (`LABKIT_FAST=1`, `labkit run --fast`) runs the same code on fewer images and epochs: a quick
way to check a classroom machine, not numbers to grade against.

## Exercises

Read from the solution notebooks: what each exercise asks, and the self-check that follows it.

{exercise_table(lab_notebooks())}

## Expected numbers

The report table of the same run: pairs using the default data and seed 0 should land close. Another seed
moves the numbers by as much as the spread in the next section (several points for the trained defences): judge a
pair's reasoning against their own table, not against these digits.

{expected_table(metrics)}

{key_claims_section(claims or {})}
{neural_cleanse_section(benchmarks)}
## Grading rubric (report cells)

{RUBRIC}
## Exporting a class folder

{EXPORT}"""


def write_page(build: str | Path = "build", out: str | Path = "docs/teacher.md", *, note: str = "") -> Path:
    """Render the page from ``<build>/timings.json`` and ``<build>/metrics.json`` and write it to ``out``.

    :param build: the build folder of a ``labkit run``.
    :param out: the Markdown file to write.
    :param note: a sentence about the run (machine, load) printed under the plan's heading.
    """
    build, out = Path(build), Path(out)
    if not (build / "timings.json").exists():
        raise FileNotFoundError(f"no {build / 'timings.json'}: run `labkit run --out {build}` (or `make lab`) first")
    from labkit.metrics import load_metrics

    paths = sorted(build.glob("neural_cleanse_eval*.json"),
                   key=lambda path: (path.name != "neural_cleanse_eval.json", path.name))
    benchmarks = [_load(path) for path in paths]  # the default setting first
    page = render_page(_load(build / "timings.json"), load_metrics(build / "metrics.json"), source=str(build),
                       note=note, benchmarks=[b for b in benchmarks if b.get("setting") == "full"],
                       claims=_load(build / "key_claims.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m labkit.classroom.teacher [BUILD] [--out FILE]``: regenerate the teacher's page from a run."""
    parser = argparse.ArgumentParser(prog="python -m labkit.classroom.teacher", description=main.__doc__)
    parser.add_argument("build", nargs="?", default="build", help="build folder of a labkit run (default: build)")
    parser.add_argument("--out", default="docs/teacher.md", help="page to write (default: docs/teacher.md)")
    parser.add_argument("--note", default="", help="a sentence about the run (machine, load) shown with the times")
    args = parser.parse_args(argv)
    try:
        print("wrote", write_page(args.build, args.out, note=args.note))
    except FileNotFoundError as err:
        print(f"labkit.classroom.teacher: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
