"""The pair's report: who the pair is, one table of every scenario, and the trade-off figure.

``report_table`` reads the metrics store (``<build>/metrics.json``) and builds one row per scenario:
the baseline, the baseline under FGSM and PGD, each adversarially trained model and the reactive
defence under both attacks, the backdoored model, each Neural Cleanse mitigation, and the extension
labs. A missing number never crashes the report: its row says which notebook to run.

The report notebook displays the group and the table through objects that carry a machine-readable
copy next to the HTML (``GROUP_MIME``, ``METRICS_MIME``); the teacher's export (``labkit.classroom.export``)
reads the group and the metrics back from there, so the gradebook holds exactly the recorded numbers. The
display and the trade-off figure (``show_table``, ``ReportTable``, ``tradeoff_plot``) live in
``labkit.classroom._report_view`` and are served from here, where the notebook calls them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from labkit.classroom._report_view import ReportTable, show_table, tradeoff_plot
from labkit.classroom.group import (DEMO_GROUP, GROUP_ENV, GROUP_MIME, Group, GroupMissingError, check_group,
                                    parse_group, split_members)
from labkit.provenance import OWN_RUN

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Group", "GroupMissingError", "ReportTable", "check_group", "parse_group", "report_table",
           "show_table", "tradeoff_plot", "notebook_for", "metric_order", "missing_notebooks", "CORE_KEYS",
           "GROUP_ENV", "DEMO_GROUP", "GROUP_MIME", "METRICS_MIME", "REPORT_TAG", "ANSWER_TAG",
           "ANSWER_PLACEHOLDER", "split_members", "table_points", "origin_problems", "CORE_ROWS", "TABLE_POINTS"]

REPORT_TAG = "report"
"""Cell tag of everything the teacher grades; ``labkit export`` shows only these cells."""
ANSWER_TAG = "answer"
"""Extra tag of the answer cells, so the export can tell unanswered questions."""
ANSWER_PLACEHOLDER = "*Your answer here.*"
METRICS_MIME = "application/vnd.labkit.metrics+json"

NOTEBOOKS = {
    "baseline.clean_accuracy": "00_setup.ipynb",
    "baseline.": "01_evasion_fgsm.ipynb",
    "evasion.": "01_evasion_fgsm.ipynb",
    "adversarial_training.": "02_adversarial_training.ipynb",
    "madry.": "02_adversarial_training.ipynb",
    "reactive.": "02_adversarial_training.ipynb",
    "backdoor.": "03_backdoor_poisoning.ipynb",
    "neural_cleanse.": "04_neural_cleanse.ipynb",
    "extraction.": "06_model_extraction.ipynb",
    "membership.": "07_membership_inference.ipynb",
    "clean_label.": "08_clean_label_poisoning.ipynb",
    "availability.": "09_availability_poisoning.ipynb",
}
"""Which notebook records which metric (exact key first, then by prefix)."""

COLUMNS = ["notebook", "clean accuracy", "accuracy under attack", "attack success", "Δ clean vs baseline",
           "Δ attack success vs undefended", "notes", "status", "run"]
"""``run``: whether the pair's own run produced the row's numbers (``own run``), else whose run did."""


def notebook_for(key: str) -> str:
    """Return the notebook that records the metric ``key`` (``"?"`` for keys of no lab notebook)."""
    if key in NOTEBOOKS:
        return NOTEBOOKS[key]
    for prefix, notebook in NOTEBOOKS.items():
        if prefix.endswith(".") and key.startswith(prefix):
            return notebook
    return "?"


@dataclass(frozen=True)
class Scenario:
    """One row of the report: where its numbers come from in the metrics store."""

    name: str
    clean: str | None = None           # key of the model's clean accuracy
    under_attack: str | None = None    # key of the accuracy under an evasion attack
    success: str | None = None         # key of an attack success rate (backdoor, extensions)
    drop: str | None = None            # key of a recorded drop of clean accuracy (availability poisoning)
    reference: str | None = None       # the undefended scenario this one's attack success is compared with
    family: str = "baseline"           # colour in the trade-off figure
    attack: str = "none"               # marker in the trade-off figure
    notes: tuple[str, ...] = field(default=())  # keys whose values go into the notes column

    @property
    def keys(self) -> list[str]:
        """Return the metric keys this row needs."""
        return [k for k in (self.clean, self.under_attack, self.success, self.drop) if k]


def _evasion(name: str, prefix: str, family: str, reference: bool) -> list[Scenario]:
    clean = "baseline.clean_accuracy" if prefix == "baseline" else f"{prefix}.clean_accuracy"
    return [Scenario(f"{name} · {attack.upper()}", clean=clean, under_attack=f"{prefix}.{attack}_accuracy",
                     reference=f"baseline · {attack.upper()}" if reference else None, family=family,
                     attack=attack.upper(), notes=("evasion.eps",)) for attack in ("fgsm", "pgd")]


_MITIGATION = "neural_cleanse.mitigations.{}.{}"
_NC_NOTES = {"pruning": (_MITIGATION.format("pruning", "backdoor_removed"),),
             "filtering": (_MITIGATION.format("filtering", "clean_abstain_rate"),
                           _MITIGATION.format("filtering", "triggered_abstain_rate"),
                           _MITIGATION.format("filtering", "backdoor_removed"))}
"""Notes of the Neural Cleanse rows: whether pruning and filtering removed the backdoor by their own check, and
the share of honest inputs filtering refuses (shown wherever filtering's ASR is)."""
_REFUSES = "refuses honest inputs"
_NOT_REMOVED = "stopped WITHOUT removing the backdoor"
CORE_SCENARIOS: tuple[Scenario, ...] = (
    Scenario("baseline", clean="baseline.clean_accuracy", notes=("neural_cleanse.clean_model_flagged_classes",)),
    *_evasion("baseline", "baseline", "baseline", False),
    *_evasion("adversarial training (FGSM)", "adversarial_training", "adversarial training", True),
    *_evasion("Madry PGD training", "madry", "Madry PGD training", True),
    *_evasion("reactive defence", "reactive", "reactive defence", True),
    Scenario("backdoored model · trigger", clean="backdoor.clean_accuracy", success="backdoor.attack_success_rate",
             family="backdoor", attack="trigger",
             notes=("backdoor.poison_fraction", "backdoor.target_class", "neural_cleanse.flagged_classes")),
    *(Scenario(f"Neural Cleanse {m} · trigger", clean=_MITIGATION.format(m, "clean_accuracy"),
               success=_MITIGATION.format(m, "attack_success_rate"), reference="backdoored model · trigger",
               family="Neural Cleanse", attack="trigger",
               notes=_NC_NOTES.get(m, ()))
      for m in ("unlearning", "pruning", "filtering")),
)
CORE_KEYS: tuple[str, ...] = tuple(dict.fromkeys(
    k for s in CORE_SCENARIOS for k in (*s.keys, *s.notes)))
"""Every metric the core rows show, in table order: the gradebook always has these columns."""


def _extension_scenarios(metrics: dict[str, Any]) -> list[Scenario | tuple[str, str]]:
    """Return the extension rows whose numbers exist, and ``(name, notebook)`` for labs not run."""
    rows: list[Scenario | tuple[str, str]] = []

    def each(prefix: str, title: str, make: Any) -> None:
        names = sorted({k.split(".")[1] for k in metrics if k.startswith(prefix + ".") and k.count(".") == 2})
        rows.extend([make(name, f"{prefix}.{name}.") for name in names] or [(title, notebook_for(prefix + "."))])

    each("extraction", "model extraction", lambda name, key: Scenario(
        f"model extraction ({name}) · transfer FGSM", clean="baseline.clean_accuracy",
        under_attack=key + "transfer_attack_accuracy", family="model extraction", attack="transfer",
        notes=(key + "agreement", key + "queries")))
    each("membership", "membership inference", lambda name, key: Scenario(
        f"membership inference ({name})", clean=key + "model_accuracy", success=key + "attack_accuracy",
        family="membership inference", attack="membership", notes=(key + "auc",)))
    title = "clean-label poisoning (Poison Frogs)"
    if any(k.startswith("clean_label.") for k in metrics):
        rows.append(Scenario(title, success="clean_label.success_rate", family="extensions", attack="extension",
                             notes=("clean_label.n_targets", "clean_label.mean_perturbation_linf")))
    else:
        rows.append((title, notebook_for("clean_label.")))
    each("availability", "availability poisoning", lambda name, key: Scenario(
        f"availability poisoning ({name})", clean=key + "accuracy", drop=key + "accuracy_drop", family="extensions",
        attack="extension", notes=(key + "accuracy_drop", "availability.poison_fraction", "availability.classes")))
    return rows


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


_NOTE_LABELS = {"eps": "eps", "poison_fraction": "poison", "target_class": "target class",
                "flagged_classes": "Neural Cleanse flags", "clean_model_flagged_classes": "Neural Cleanse flags",
                "clean_abstain_rate": _REFUSES, "triggered_abstain_rate": "refuses triggered inputs",
                "agreement": "agreement with the victim", "queries": "queries", "auc": "AUC",
                "n_targets": "targets", "mean_perturbation_linf": "mean L∞ perturbation",
                "accuracy_drop": "drop vs its own clean SVM", "classes": "SVM on digits"}
_PERCENT = {"poison_fraction", "clean_abstain_rate", "triggered_abstain_rate"}


def _note(key: str, value: Any) -> str:
    """Return one short note like ``eps 0.15`` or ``poison 10%`` for the notes column."""
    field_name = key.rsplit(".", 1)[-1]
    label = _NOTE_LABELS.get(field_name, field_name.replace("_", " "))
    if field_name == "backdoor_removed":
        return "backdoor removed (its own check)" if value else f"{_NOT_REMOVED} (its own check)"
    if isinstance(value, list) and field_name.endswith("flagged_classes"):
        value = ("class " if len(value) == 1 else "classes ") + ", ".join(map(str, value)) if value else "none"
    elif isinstance(value, list):
        value = ", ".join(map(str, value)) if value else "none"
    elif isinstance(value, float):
        value = f"{value:.0%}" if field_name in _PERCENT else f"{value:.3g}"
    return f"{label} {value}"


def _row(s: Scenario, metrics: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in s.keys if k not in metrics]
    row = {"scenario": s.name, "notebook": notebook_for(s.keys[-1]),
           "clean accuracy": _number(metrics.get(s.clean)) if s.clean else math.nan,
           "accuracy under attack": _number(metrics.get(s.under_attack)) if s.under_attack else math.nan,
           "attack success": _number(metrics.get(s.success)) if s.success else math.nan,
           "notes": "; ".join(_note(k, metrics[k]) for k in s.notes if k in metrics),
           "status": "ok" if not missing else "missing: run " + ", ".join(dict.fromkeys(map(notebook_for, missing))),
           "_family": s.family, "_attack": s.attack, "_reference": s.reference}
    if s.under_attack and not math.isnan(row["accuracy under attack"]):
        row["attack success"] = 1.0 - row["accuracy under attack"]
    row["_drop"] = _number(metrics.get(s.drop)) if s.drop else math.nan
    return row


def _row_origin(keys: Sequence[str], provenance: dict[str, Any], edition: str, group_id: str | None) -> str:
    """Return ``own run`` when every key's provenance matches the report's run, else the other origins."""
    from labkit.provenance import origin

    found = dict.fromkeys(origin(provenance.get(k), edition=edition, group_id=group_id) for k in keys)
    others = [where for where in found if where != OWN_RUN]
    return "; ".join(others) if others else OWN_RUN if found else ""


def report_table(metrics: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None, *,
                 group_id: str | None = None, edition: str | None = None) -> pd.DataFrame:
    """Return the report table: one row per scenario, indexed by the scenario's name.

    Columns: the notebook that measures it, clean accuracy, accuracy under attack (evasion), attack
    success (1 - accuracy under attack for evasion; the attack success rate for the backdoor and the
    extensions), the change of clean accuracy against the baseline, the change of attack success
    against the undefended model under the same attack, notes (eps, poison fraction ...) and a status
    that names the notebook to run when a number is missing (``"not run"`` for extension labs), and ``run``:
    ``own run`` when the numbers' provenance matches this report's edition and group, else whose run produced
    them (``the key's run``, ``group G03's run``, ``no run`` for numbers without provenance).

    :param metrics: a flat ``{dotted key: value}`` dict; default: the current build's metrics store.
    :param provenance: ``{key: provenance entry}`` of those numbers; default: the store's (none when ``metrics``
        is given without it).
    :param group_id: the report's group id (rows of another group's run are named); None: not compared.
    :param edition: the report's edition (``key`` or ``student``); default: the running notebook's.
    """
    import pandas as pd

    from labkit.metrics import load_store
    from labkit.provenance import edition as current_edition

    if metrics is None:
        store = load_store()
        metrics, provenance = store.metrics, store.provenance if provenance is None else provenance
    provenance = provenance if isinstance(provenance, dict) else {}
    edition = edition or current_edition()
    rows = []
    for s in (*CORE_SCENARIOS, *_extension_scenarios(metrics)):
        if isinstance(s, tuple):
            rows.append({"scenario": s[0], "notebook": s[1], "status": f"not run ({s[1]})", "_family": "extensions"})
        else:
            row = _row(s, metrics)
            row["run"] = _row_origin([k for k in (*s.keys, *s.notes) if k in metrics], provenance, edition,
                                     group_id)
            rows.append(row)
    table = pd.DataFrame(rows).set_index("scenario")
    base = _number(metrics.get("baseline.clean_accuracy"))
    # availability poisoning records its drop against its own unpoisoned model: shown as it is
    table["Δ clean vs baseline"] = (-table["_drop"].astype(float)).fillna(table["clean accuracy"] - base)
    success = table["attack success"].to_dict()
    reference = table["_reference"].map(lambda r: success.get(r, math.nan) if isinstance(r, str) else math.nan)
    table["Δ attack success vs undefended"] = table["attack success"] - reference.astype(float)
    for column in COLUMNS:
        if column not in table:
            table[column] = math.nan
    table.attrs["family"] = table["_family"].fillna("extensions").to_dict()
    table.attrs["attack"] = table["_attack"].fillna("extension").to_dict()
    table.attrs.update(provenance=_Shared((k, v) for k, v in provenance.items() if k in metrics), edition=edition,
                       group_id=group_id)
    return table[COLUMNS].fillna({"notes": "", "status": "ok", "run": ""})


class _Shared(dict):
    """A dict that pandas does not deep-copy with the table's attrs on every operation (it is never modified)."""

    def __deepcopy__(self, memo: dict) -> _Shared:
        return self


CORE_ROWS: tuple[str, ...] = tuple(s.name for s in CORE_SCENARIOS)
TABLE_POINTS = 2
"""Points of the rubric's table item, autograded by the report's grade cell (``table_points``)."""


def table_points(table: pd.DataFrame) -> int:
    """Return the table's points: 2 when every core row is ``ok`` from the pair's own run, 1 when at least half
    of them are, else 0. The report's grade cell shows it, and nbgrader's autograde takes it as the score.

    :param table: the DataFrame from ``report_table``.
    """
    core = table.loc[[name for name in CORE_ROWS if name in table.index]]
    own = int(((core["status"] == "ok") & (core["run"] == OWN_RUN)).sum())
    return TABLE_POINTS if own == len(CORE_ROWS) else 1 if 2 * own >= len(CORE_ROWS) else 0


def origin_problems(table: pd.DataFrame) -> list[str]:
    """Return one problem per origin other than the pair's own run, naming its rows (for the export).

    :param table: the DataFrame from ``report_table``.
    """
    by_origin: dict[str, list[str]] = {}
    for name, run in table["run"].items():
        for where in filter(None, str(run).split("; ")):
            if where != OWN_RUN:
                by_origin.setdefault(where, []).append(str(name))
    return [f"numbers from {where} ({len(rows)} row{'s' * (len(rows) != 1)}): {', '.join(rows)}"
            for where, rows in by_origin.items()]


def missing_notebooks(table: pd.DataFrame) -> list[str]:
    """Return the core notebooks to run for the table's missing numbers, in lab order."""
    names = set()
    for status in table["status"]:
        if status.startswith("missing: run "):
            names.update(n.strip() for n in status[len("missing: run "):].split(","))
    return sorted(names)


def metric_order(keys: Sequence[str]) -> list[str]:
    """Return metric keys in report order: the core keys first, then the others by notebook and name."""
    core = [k for k in CORE_KEYS if k in set(keys)]
    rest = sorted(set(keys) - set(core), key=lambda k: (notebook_for(k).replace("?", "~"), k))  # unknown: last
    return core + rest
