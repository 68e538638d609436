"""The class tournament, the teacher's side: ``labkit tournament challenge`` and ``labkit tournament SUBMISSIONS``.

``make_challenge`` writes the public ``challenge.npz`` (images a pair attacks, their labels, eps, the clean
floor, the seed) and a private ``private/heldback.npz`` (the rest of the lab's test split: what the defences
are scored on). ``run_tournament`` takes a folder of handed-in files (``<group>.keras`` and
``<group>_attack.npz``, nested folders allowed), refuses what fails the intake with the reason, scores every
valid model in its own child process (``_tournament_worker``: load, the attack suite on the held-back images,
every valid attack file on the challenge images) and writes the leaderboard: ``index.html`` (sanitised, no
script), ``blue.csv``, ``red.csv``, ``matrix.csv``, ``matrix.png`` and ``results.json``. The teacher's
process never imports TensorFlow and never loads a submitted model. See docs/tournament.md.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from labkit._tournament_score import BLUE_COLUMNS, SATURATED, Suite
from labkit.classroom._intake import Found, check_out, display, find_entries, printable, write_file
from labkit.classroom._model_intake import Refused, check_attack_file, check_model_file
from labkit.tournament import CHALLENGE_FILE, CLASS_EPS, CLEAN_FLOOR, N_CHALLENGE, Challenge, _read_challenge

__all__ = ["make_challenge", "run_tournament", "Entry", "TournamentResult", "HELDBACK_FILE", "TIMEOUT", "MEMORY"]

HELDBACK_FILE = "private/heldback.npz"
TIMEOUT = 300.0
"""Seconds one model's child may take (load and the whole suite) before it is stopped and the model refused."""
MEMORY = 4 * 2**30
"""The address space one model's child may use (TensorFlow itself maps about 1.5 GiB)."""
ATTACK_SUFFIX = "_attack.npz"
N_HELDBACK = 200
"""Held-back images a defence is scored on by default (the robust accuracy's standard error is at most 3.5
points; every model is scored on the same images, so differences between models are measured more closely)."""


def make_challenge(out: str | Path, *, eps: float = CLASS_EPS, n: int = N_CHALLENGE, seed: int = 0,
                   clean_floor: float = CLEAN_FLOOR, n_heldback: int | None = N_HELDBACK, lab_seed: int = 0,
                   name: str = "class tournament") -> Path:
    """Write ``<out>/challenge.npz`` (publish it) and ``<out>/private/heldback.npz`` (keep it); return ``out``.

    :param out: the folder to write into (created).
    :param eps: the class budget, L-infinity in pixel units of [0, 1] images.
    :param n: challenge images; the rest of the lab's test split is held back.
    :param seed: seed of the choice of images and of the scoring.
    :param clean_floor: the clean accuracy a model needs to be ranked, in [0, 1].
    :param n_heldback: held-back images kept (stratified) from the rest of the test split; None keeps all
        (350 with the defaults). The suite's cost per model grows with it.
    :param lab_seed: the ``SEED`` the class ran the notebooks with (the train/test split the models saw).
    :param name: the challenge's name, shown on the leaderboard.
    """
    from labkit.evasion import check_eps
    from labkit.tournament import split_challenge

    eps = check_eps(eps)
    if not 0.0 <= float(clean_floor) <= 1.0:
        raise ValueError(f"clean_floor must be in [0, 1] (a share of the held-back images), got {clean_floor!r}")
    x, y, x_hb, y_hb = split_challenge(n, seed=seed, lab_seed=lab_seed)
    if n_heldback is not None and n_heldback < len(x_hb):
        from sklearn.model_selection import train_test_split

        x_hb, _, y_hb, _ = train_test_split(x_hb, y_hb, train_size=int(n_heldback), stratify=y_hb,
                                            random_state=seed)
    out = Path(out)
    (out / "private").mkdir(parents=True, exist_ok=True)
    meta = {"eps": eps, "clean_floor": float(clean_floor), "seed": int(seed), "name": str(name)}
    np.savez_compressed(out / CHALLENGE_FILE, x=x, y=y, **meta)
    np.savez_compressed(out / HELDBACK_FILE, x=x_hb, y=y_hb, **meta)
    return out


@dataclass
class Entry:
    """One handed-in file and what became of it."""

    group: str
    file: str
    kind: str                                  # "model" or "attack"
    path: Path | None = None                   # what is read (a model: the private copy of the checked bytes)
    reason: str | None = None                  # why it was refused (None: taken in)
    scores: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = math.nan
    rank: int | None = None

    @property
    def valid(self) -> bool:
        """Taken in and, for a model, scored."""
        return self.reason is None


@dataclass
class TournamentResult:
    """Everything the leaderboard shows: the entries, the cross matrix and the settings."""

    models: list[Entry]
    attacks: list[Entry]
    skipped: list[Entry]
    matrix: dict[str, dict[str, float]]        # attack group -> model group -> success rate
    challenge: Challenge
    suite: Suite
    out: Path
    seconds: float = 0.0

    def ranked_models(self) -> list[Entry]:
        """The valid models at or above the clean floor, best first."""
        return sorted((m for m in self.models if m.rank is not None), key=lambda m: m.rank)


def _classify(found: Found) -> Entry:
    name = found.rel.rsplit("/", 1)[-1]
    if found.path is None:
        return Entry(name, found.rel, "other", reason=found.reason or "skipped")
    if name.endswith(".keras"):
        return Entry(name[:-len(".keras")], found.rel, "model", found.path)
    if name.endswith(ATTACK_SUFFIX):
        return Entry(name[:-len(ATTACK_SUFFIX)], found.rel, "attack", found.path)
    return Entry(name, found.rel, "other", reason="not a tournament file (expected <group>.keras or "
                                           "<group>_attack.npz): skipped")


def _intake(source: Path, out: Path, challenge: Challenge, copies: Path) -> tuple[list[Entry], dict[str, np.ndarray]]:
    """List every entry under ``source``; check attack files and models statically; return entries and attacks.

    A model's checked bytes are copied into ``copies``, and the copy is what its child loads (the file in the
    submissions folder could change between the check and the load).
    """
    entries, attacks, seen = [], {}, set()
    for found in find_entries(source, skip=out):
        entry = _classify(found)
        entries.append(entry)
        if entry.reason is not None:
            continue
        if (entry.kind, entry.group) in seen:
            entry.reason = f"a second {entry.kind} file of group {entry.group!r}: only the first is scored"
            continue
        seen.add((entry.kind, entry.group))
        try:
            if entry.kind == "attack":
                attacks[entry.group] = check_attack_file(entry.path, challenge.x, challenge.eps)
            else:
                raw = check_model_file(entry.path)["raw"]
                entry.path = copies / f"{len(seen):04d}.keras"
                entry.path.write_bytes(raw)
        except Refused as err:
            entry.reason = f"refused: {err}"
        except Exception as err:  # noqa: BLE001 - a hostile file may raise anything; it must not stop the class
            entry.reason = f"refused: it could not be read ({type(err).__name__})"
    return entries, attacks


def _child(conn: Any, task: dict[str, Any]) -> None:
    """Fork-server child entry point (this light module is what the parent pickles a reference to)."""
    from labkit.classroom._tournament_worker import child_main

    child_main(conn, task)


def _isolated(task: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one model's evaluation in a fresh child; return its JSON result, or a refusal on crash or timeout."""
    context = multiprocessing.get_context("forkserver")
    # both modules preloaded: every child runs the code the run started with, even if the files change meanwhile
    context.set_forkserver_preload(["labkit.classroom._tournament_worker", "labkit.classroom.tournament"])
    for attempt in range(2):  # a fork server that died is started again by the second attempt
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(send, task), daemon=True)
        try:
            child.start()
            break
        except OSError as err:
            receive.close()
            send.close()
            if attempt:
                return {"ok": False, "reason": f"not scored: the scoring process could not start ({err})"}
    send.close()
    result: dict[str, Any] | None = None
    try:
        if receive.poll(timeout):
            result = json.loads(receive.recv_bytes(maxlength=10_000_000).decode())
        else:
            result = {"ok": False, "reason": f"refused: loading and scoring it took longer than {timeout:g} s"}
    except (EOFError, OSError, ValueError):
        pass
    child.join(5)
    if child.is_alive():
        child.kill()
        child.join()
    if result is None:
        result = {"ok": False, "reason": f"refused: it crashed the process that loaded it (exit code "
                                         f"{child.exitcode}; e.g. over the memory limit)"}
    receive.close()
    return result


def _score_models(models: list[Entry], task: dict[str, Any], timeout: float, progress: bool,
                  matrix: dict[str, dict[str, float]]) -> None:
    from tqdm.auto import tqdm

    todo = [m for m in models if m.valid]
    for entry in tqdm(todo, desc="tournament", unit="model", disable=not progress):
        result = _isolated({**task, "path": str(entry.path)}, timeout)
        if not result.get("ok"):
            entry.reason = str(result.get("reason", "refused"))[:400]
            continue
        entry.scores = {k: float(result["blue"][k]) for k in (*BLUE_COLUMNS, "saturated")}
        entry.cpu_seconds = float(result.get("cpu_seconds", math.nan))
        for group, (rate, _) in result["red"].items():
            matrix.setdefault(group, {})[entry.group] = math.nan if rate is None else float(rate)


def _rank(result: TournamentResult) -> None:
    """Rank the models at or above the clean floor by robust accuracy, the attack files by mean success."""
    floor = result.challenge.clean_floor
    ok = [m for m in result.models if m.valid and m.scores["clean_accuracy"] >= floor]
    for i, m in enumerate(sorted(ok, key=lambda m: (-m.scores["robust_accuracy"], -m.scores["clean_accuracy"],
                                                     m.group)), 1):
        m.rank = i
    targets = [m.group for m in ok] or [m.group for m in result.models if m.valid]
    for attack in result.attacks:
        if attack.valid:
            rates = [result.matrix.get(attack.group, {}).get(t, math.nan) for t in targets]
            rates = [r for r in rates if not math.isnan(r)]
            attack.scores = {"mean_success": float(np.mean(rates)) if rates else math.nan,
                             "models": float(len(rates))}
    scored = [a for a in result.attacks if a.valid and not math.isnan(a.scores["mean_success"])]
    for i, a in enumerate(sorted(scored, key=lambda a: (-a.scores["mean_success"], a.group)), 1):
        a.rank = i


def _status(entry: Entry, floor: float) -> str:
    if entry.reason is not None:
        return entry.reason
    if entry.kind == "model" and entry.rank is None:
        return f"listed, not ranked: clean accuracy under the floor of {floor:.0%}"
    if entry.kind == "model" and entry.scores.get("saturated", 0.0) >= SATURATED:
        return (f"ok, but its outputs are saturated on {entry.scores['saturated']:.0%} of the images: the "
                f"gradient-free attack sees no signal either, so its robust accuracy may be overstated (check its "
                f"column of the cross matrix)")
    return "ok"


def _write_tables(result: TournamentResult) -> None:
    import pandas as pd

    floor = result.challenge.clean_floor
    blue = pd.DataFrame([{"rank": m.rank, "group": m.group, "file": m.file,
                          **{k: m.scores.get(k, math.nan) for k in BLUE_COLUMNS}, "cpu_seconds": m.cpu_seconds,
                          "status": _status(m, floor)} for m in _ordered(result.models)],
                        columns=["rank", "group", "file", *BLUE_COLUMNS, "cpu_seconds", "status"])
    red = pd.DataFrame([{"rank": a.rank, "group": a.group, "file": a.file,
                         "mean_success": a.scores.get("mean_success", math.nan), "status": _status(a, floor)}
                        for a in _ordered(result.attacks)], columns=["rank", "group", "file", "mean_success", "status"])
    models = [m.group for m in _ordered(result.models) if m.valid]
    attacks = [a.group for a in _ordered(result.attacks) if a.valid]
    matrix = pd.DataFrame([[result.matrix.get(a, {}).get(m, math.nan) for m in models] for a in attacks],
                          index=pd.Index(attacks, name="attack \\ model"), columns=models)
    for frame, name in ((blue, "blue.csv"), (red, "red.csv")):
        frame["rank"] = frame["rank"].astype("Int64")  # 1, 2 ... and empty for unranked rows, not 1.0
        write_file(result.out / name, _csv_safe(frame).to_csv(index=False))
    write_file(result.out / "matrix.csv", _csv_safe(matrix).to_csv())
    entries = [{"group": e.group, "file": e.file, "kind": e.kind, "rank": e.rank, "scores": e.scores,
                "cpu_seconds": None if math.isnan(e.cpu_seconds) else e.cpu_seconds, "status": _status(e, floor)}
               for e in result.models + result.attacks + result.skipped]
    write_file(result.out / "results.json", json.dumps(
        {"challenge": {"name": result.challenge.name, "eps": result.challenge.eps, "seed": result.challenge.seed,
                       "clean_floor": floor}, "suite": result.suite.as_dict(), "entries": entries,
         "matrix": result.matrix, "seconds": result.seconds}, indent=1, default=str))


def _csv_safe(frame: Any) -> Any:
    """Prefix text cells a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) with a quote."""
    def safe(value: Any) -> Any:
        return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value

    frame = frame.map(safe)
    frame.index = [safe(i) for i in frame.index]
    frame.columns = [safe(c) for c in frame.columns]
    return frame


def _ordered(entries: list[Entry]) -> list[Entry]:
    """Ranked first (by rank), then listed (valid, unranked), then refused; by group within each."""
    return sorted(entries, key=lambda e: (e.rank is None, e.rank or 0, not e.valid, e.group))


def run_tournament(submissions: str | Path, out: str | Path, *, challenge: str | Path,
                   heldback: str | Path | None = None, suite: Suite | None = None, timeout: float = TIMEOUT,
                   memory: int = MEMORY, progress: bool = True,
                   echo: Callable[[str], Any] | None = print) -> TournamentResult:
    """Score a class's tournament files and write the leaderboard into ``out``.

    :param submissions: the folder of handed-in files (``<group>.keras``, ``<group>_attack.npz``).
    :param out: the output folder (index.html, blue.csv, red.csv, matrix.csv, matrix.png, results.json).
    :param challenge: the challenge folder ``make_challenge`` wrote (or its ``challenge.npz``).
    :param heldback: the held-back file (default: ``<challenge folder>/private/heldback.npz``).
    :param suite: the attacks' settings (default: ``Suite()``; ``Suite.fast()`` under ``LABKIT_FAST=1``).
    :param timeout: seconds one model may take.
    :param memory: bytes of address space one model's child may use.
    :param progress: draw a progress bar over the models.
    :param echo: where the summary goes (None: nowhere).
    """
    from labkit.classroom._tournament_page import write_page
    from labkit.paths import is_fast

    start = time.perf_counter()
    source = Path(submissions).resolve()
    if not source.exists():
        raise FileNotFoundError(f"no submissions at {display(str(source))}")
    folder = Path(challenge)
    folder = folder.parent if folder.is_file() else folder
    public = _read_challenge(folder / CHALLENGE_FILE)
    held = _read_challenge(Path(heldback) if heldback else folder / HELDBACK_FILE)
    suite = suite or (Suite.fast() if is_fast() else Suite())
    out = check_out(source, out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labkit-tournament-") as copies:
        entries, attacks = _intake(source, out, public, Path(copies))
        result = TournamentResult([e for e in entries if e.kind == "model"],
                                  [e for e in entries if e.kind == "attack"],
                                  [e for e in entries if e.kind == "other"], {}, public, suite, out)
        task = {"x": public.x, "y": public.y, "x_hb": held.x, "y_hb": held.y, "eps": public.eps,
                "seed": public.seed, "suite": suite.as_dict(), "attacks": attacks, "memory": int(memory)}
        _score_models(result.models, task, timeout, progress, result.matrix)
    _rank(result)
    result.seconds = time.perf_counter() - start
    _write_tables(result)
    write_page(result)
    if echo is not None:
        echo(summary(result))
    return result


def summary(result: TournamentResult) -> str:
    """Return the lines printed at the end of a tournament: counts, the top of each ranking, every refusal."""
    ranked = result.ranked_models()
    lines = [f"labkit tournament: {len(result.models)} model(s), {len(result.attacks)} attack file(s); "
             f"{len(ranked)} model(s) ranked; leaderboard in {result.out}/index.html ({result.seconds:.0f} s)"]
    if ranked:
        best = ranked[0]
        lines.append(f"  blue team first: {best.group} (robust accuracy {best.scores['robust_accuracy']:.2f})")
    red = sorted((a for a in result.attacks if a.rank), key=lambda a: a.rank)
    if red:
        lines.append(f"  red team first: {red[0].group} (mean success {red[0].scores['mean_success']:.2f})")
    for entry in result.models + result.attacks + result.skipped:
        if entry.reason:
            lines.append(f"  {entry.file}: {entry.reason}")
    return "\n".join(printable(line) for line in lines)
