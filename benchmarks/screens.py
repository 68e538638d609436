"""Screenshots of the lab as a pair sees it: JupyterLab in headless Chromium at a 1,400 px window.

Starts JupyterLab (this environment's, with its installed settings) on a free localhost port with a fresh
user-settings and workspaces folder, opens the student edition of 00 and an executed notebook (04 from a
fast ``labkit run`` into a temporary build, unless ``--executed`` names one) and saves, for each, a
screenshot of the first screen and a tall one of the rest, into ``build/screens/``; ``build/screens/screens.json``
lists them with what the page's DOM showed (stderr outputs, error outputs, the Jupyter news prompt).

    .venv/bin/python benchmarks/screens.py                       # runs 00, 03, 04 fast first (minutes)
    .venv/bin/python benchmarks/screens.py --executed build/notebooks/04_neural_cleanse.ipynb

Needs Chromium (``apt-get install -y chromium``). Every browser gets its own new profile, no network but
localhost, and is stopped with the server when the script ends.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions", "--mute-audio",
         "--hide-scrollbars"]
WIDTH = 1400
BROWSER_TIMEOUT = 900   # seconds for one page (JupyterLab loads slowly on a busy machine)
SCREENS = {"first": 1000, "tall": 4000}   # window heights: the first screen, and most of a notebook
NEWS_PROMPT = "official Jupyter news"
STDERR_MIME = 'data-mime-type="application/vnd.jupyter.stderr"'
ERROR_MIME = 'data-mime-type="application/vnd.jupyter.error"'


def find_chromium() -> str | None:
    """Return the Chromium (or Chrome) binary on PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def free_port() -> int:
    """Return a localhost TCP port nobody listens on (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_settings(scratch: Path) -> tuple[list[str], str]:
    """Return (JupyterLab arguments, a note) that give the lab the settings a ``pip install`` of labkit ships.

    An environment where labkit's ``jupyter-config/lab`` is installed already reads it; elsewhere (a venv made
    before it was shipped) a scratch application-settings folder holds the same files.
    """
    installed = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"
    shipped = ROOT / "jupyter-config" / "lab"
    if not shipped.is_dir() or (installed / "overrides.d" / "labkit.json").is_file():
        return [], f"this environment's settings ({installed})"
    shutil.copytree(shipped, scratch / "app-settings")
    return [f"--LabApp.app_settings_dir={scratch / 'app-settings'}"], "labkit's jupyter-config/lab (not installed here)"


def start_lab(root: Path, scratch: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    """Start JupyterLab on ``root`` at a free port; return (process, base URL with its token)."""
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(scratch / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "workspaces"), "JUPYTER_RUNTIME_DIR": str(scratch / "runtime")}
    log = open(scratch / "jupyter.log", "w")
    process = subprocess.Popen([str(BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                                f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
                                "--ServerApp.open_browser=False", *(["--allow-root"] if os.geteuid() == 0 else []),
                                *extra],
                               env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                return process, f"{base}|{token}"
        except OSError:
            if process.poll() is not None:
                tail = (scratch / "jupyter.log").read_text()[-2000:]
                raise RuntimeError(f"JupyterLab stopped at start:\n{tail}") from None
            time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"JupyterLab did not answer within 120 s; see {scratch / 'jupyter.log'}")


def browse(chromium: str, url: str, profile: Path, height: int, *, screenshot: Path | None = None,
           dom: bool = True, budget_ms: int = 30000) -> str:
    """Load ``url`` in headless Chromium at ``WIDTH`` x ``height``; save a screenshot and/or return the DOM
    (one launch does both: each launch loads JupyterLab anew, ~10 s of CPU)."""
    action = ([f"--screenshot={screenshot}"] if screenshot else []) + (["--dump-dom"] if dom or not screenshot else [])
    browser = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}",
                                f"--virtual-time-budget={budget_ms}", *action, url], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = browser.communicate(timeout=BROWSER_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(browser.pid, 9)   # the browser and every process it started
        browser.communicate()
        raise RuntimeError(f"Chromium did not finish {url} within {BROWSER_TIMEOUT} s") from None
    if browser.returncode != 0:
        raise RuntimeError(f"Chromium failed on {url}: {stderr[-1500:]}")
    return stdout


def shoot(chromium: str, base: str, relative: str, name: str, out: Path, scratch: Path,
          heights: dict[str, int] = SCREENS) -> dict:
    """Screenshot ``relative`` (a notebook under the server's root) at each of ``heights``; return a record."""
    server, token = base.split("|")
    url = f"{server}/lab/tree/{relative}?token={token}&reset"
    record, dom = {"notebook": relative, "screens": {}}, None
    for label, height in heights.items():
        path = out / f"{name}-{label}.png"
        try:   # the first screen's launch also returns the DOM the checks below read
            page = browse(chromium, url, scratch / f"profile-{name}-{label}", height, screenshot=path, dom=dom is None)
            dom = page if dom is None else dom
            record["screens"][label] = path.name
        except RuntimeError as err:   # one page that does not finish still leaves the other screenshots
            record.setdefault("failed", {})[label] = str(err).splitlines()[0]
    if dom is None:
        dom = browse(chromium, url, scratch / f"profile-{name}-dom", SCREENS["first"])
    record.update(loaded="jp-Notebook" in dom and "jp-Cell" in dom, news_prompt=NEWS_PROMPT in dom,
                  stderr_outputs=dom.count(STDERR_MIME), error_outputs=dom.count(ERROR_MIME),
                  not_implemented="NotImplementedError" in dom)
    return record


def executed_04(scratch: Path) -> Path:
    """Run 00, 03 and 04 in the fast setting into a scratch build; return the executed 04."""
    build = scratch / "build"
    subprocess.run([str(BIN / "labkit"), "run", "--fast", "--out", str(build), "00", "03", "04"], check=True)
    return build / "notebooks" / "04_neural_cleanse.ipynb"


def take_screens(out: Path, executed: Path | None = None, chromium: str | None = None,
                 heights: dict[str, int] = SCREENS) -> dict:
    """Write the screenshots and ``screens.json`` into ``out``; return what ``screens.json`` holds.

    :param out: the folder for the PNGs and ``screens.json``.
    :param executed: an executed notebook to show (default: 04 from a fast run of 00, 03 and 04).
    :param chromium: the browser binary (default: the one on PATH).
    :param heights: ``{label: window height}``, one screenshot per notebook each.
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("Chromium is not installed: apt-get install -y chromium")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labkit-screens-") as tmp:
        scratch = Path(tmp)
        root = scratch / "lab"
        subprocess.run([str(BIN / "labkit"), "student", "--out", str(root / "student")], check=True,
                       stdout=subprocess.DEVNULL)
        executed = Path(executed) if executed else executed_04(scratch)
        (root / "executed").mkdir(parents=True)
        shutil.copy(executed, root / "executed" / executed.name)
        extra, settings = lab_settings(scratch)
        process, base = start_lab(root, scratch, extra)
        start = time.perf_counter()
        try:
            screens = {"student-00": shoot(chromium, base, "student/00_setup.ipynb", "student-00", out, scratch,
                                           heights),
                       "executed": shoot(chromium, base, f"executed/{executed.name}", "executed-" + executed.stem[:2],
                                         out, scratch, heights)}
        finally:
            os.killpg(process.pid, 15)
            process.wait(timeout=30)
        result = {"window_width": WIDTH, "settings": settings, "seconds": round(time.perf_counter() - start, 1),
                  "screens": screens}
    (out / "screens.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "screens"), help="folder for the screenshots")
    parser.add_argument("--executed", help="an executed notebook to show (default: a fast run of 00, 03, 04)")
    parser.add_argument("--timeout", type=int, default=BROWSER_TIMEOUT, help="seconds one page may take")
    args = parser.parse_args(argv)
    globals()["BROWSER_TIMEOUT"] = args.timeout
    result = take_screens(Path(args.out), Path(args.executed) if args.executed else None)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
