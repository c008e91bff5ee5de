"""Measure and smoke-test the frozen build (``make package`` / ``make package-test``), as a user would run it.

``budgets DIST_DIR ARCHIVE`` prints the issue's budgets: unpacked size, archive size, the frozen
``--self-test`` time and the time from launch to the main window being mapped on an Xvfb display.
``smoke ARCHIVE --screenshot FILE`` unpacks the archive into a temporary folder and, from there, runs the
frozen ``--self-test`` and the window, then saves a screenshot of it; it fails if a check fails, the window
never shows, the app dies while shown, or a size budget is missed (the times are printed, not enforced: on a
busy shared CI machine they would flake, and a heavy dependency sneaking back in shows up in the size first).

Every frozen run gets a clean environment, like a fresh user: ``env -i`` (only ``PATH=/usr/bin:/bin``,
``HOME`` and the XDG folders in a temporary directory, ``LANG``), so neither the venv nor the developer's
workspace, settings or keychain can leak in; and, where ``unshare -n`` works (root or user namespaces), a
network namespace without a route, which proves the app never needs the network to start.

"Window visible" is read from the X server, not from the app: ``xwininfo`` polls the display's window tree
until a top-level window titled "Runbook Desk ..." is viewable (mapped). The screenshot is taken by the build
venv's Qt (``QScreen.grabWindow`` on that window id) from a separate process.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

EXECUTABLE = "runbook-desk"
MB = 1_000_000
UNPACKED_BUDGET_MB = 450
ARCHIVE_BUDGET_MB = 220
SELF_TEST_BUDGET_S = 5.0
WINDOW_BUDGET_S = 2.0
WINDOW_TIMEOUT_S = 30.0
WINDOW_TITLE = "Runbook Desk"
SCREEN = "1440x900x24"


@dataclass(frozen=True)
class Budget:
    label: str
    value: float
    limit: float
    unit: str

    @property
    def ok(self) -> bool:
        return self.value <= self.limit

    def line(self) -> str:
        verdict = "ok" if self.ok else "MISSED"
        limit = f"budget <= {self.limit:g} {self.unit}"
        return f"  {self.label:<32} {self.value:8.2f} {self.unit:<3} ({limit}: {verdict})"


def tree_size(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def network_isolation() -> list[str]:
    """``unshare -n`` when this machine allows it, else nothing (said once on stderr)."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "-n"]
    print("  (unshare -n not permitted here: the frozen app runs with the host's network)", file=sys.stderr)
    return []


def clean_env(home: Path, display: str | None = None) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "LANG": "C.UTF-8",
    }
    (home / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
    if display is not None:
        env["DISPLAY"] = display
    return env


def run_self_test(app_dir: Path, isolate: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    with tempfile.TemporaryDirectory(prefix="rd-home-") as home:
        started = time.perf_counter()
        result = subprocess.run(
            [*isolate, str(app_dir / EXECUTABLE), "--self-test"],
            env=clean_env(Path(home)),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return time.perf_counter() - started, result


@contextmanager
def xvfb() -> Iterator[str]:
    """A private Xvfb display; ``-displayfd`` makes the server pick a free number and say when it is ready."""
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", SCREEN, "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as ready:
            number = ready.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def find_window(display: str) -> str | None:
    """The id of a viewable top-level window titled "Runbook Desk ...", or None."""
    tree = subprocess.run(
        ["xwininfo", "-display", display, "-root", "-children"], capture_output=True, text=True, check=False
    ).stdout
    for match in re.finditer(r"^\s*(0x[0-9a-f]+) \"([^\"]*)\"", tree, flags=re.MULTILINE):
        window_id, title = match.groups()
        if not title.startswith(WINDOW_TITLE):
            continue
        info = subprocess.run(
            ["xwininfo", "-display", display, "-id", window_id], capture_output=True, text=True, check=False
        ).stdout
        if "Map State: IsViewable" in info:
            return window_id
    return None


@contextmanager
def gui(
    app_dir: Path, display: str, isolate: list[str], home: Path
) -> Iterator[tuple[subprocess.Popen[str], float]]:
    """Launch the frozen window on the demo workspace; yields the process and seconds until it is mapped."""
    log = (home / "app.log").open("w")
    started = time.perf_counter()
    process = subprocess.Popen(
        [*isolate, str(app_dir / EXECUTABLE), "--demo"],
        env=clean_env(home, display),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        while find_window(display) is None:
            if process.poll() is not None:
                raise RuntimeError(f"the app exited with {process.returncode}: {_tail(home / 'app.log')}")
            if time.perf_counter() - started > WINDOW_TIMEOUT_S:
                raise RuntimeError(f"no window after {WINDOW_TIMEOUT_S:.0f} s: {_tail(home / 'app.log')}")
            time.sleep(0.02)
        yield process, time.perf_counter() - started
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _tail(path: Path, lines: int = 5) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return " | ".join(text[-lines:]) or "no output"


def screenshot(display: str, window_id: str, target: Path) -> None:
    code = (
        "import sys\n"
        "from PySide6.QtGui import QGuiApplication\n"
        "app = QGuiApplication(['shot'])\n"
        "pixmap = app.primaryScreen().grabWindow(int(sys.argv[1], 16))\n"
        "sys.exit(0 if not pixmap.isNull() and pixmap.save(sys.argv[2]) else 1)\n"
    )
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", code, window_id, str(target)], env=env, check=True, timeout=60)


def measure_budgets(app_dir: Path, archive: Path) -> list[Budget]:
    isolate = network_isolation()
    budgets = [
        Budget("unpacked size", tree_size(app_dir) / MB, UNPACKED_BUDGET_MB, "MB"),
        Budget("archive size", archive.stat().st_size / MB, ARCHIVE_BUDGET_MB, "MB"),
    ]
    for attempt in ("first", "second"):
        seconds, result = run_self_test(app_dir, isolate)
        if result.returncode != 0:
            raise SystemExit(f"frozen --self-test failed:\n{result.stdout}{result.stderr}")
        budgets.append(Budget(f"frozen --self-test ({attempt} run)", seconds, SELF_TEST_BUDGET_S, "s"))
    with (
        tempfile.TemporaryDirectory(prefix="rd-home-") as home,
        xvfb() as display,
        gui(app_dir, display, isolate, Path(home)) as (_process, seconds),
    ):
        budgets.append(Budget("main window visible (Xvfb)", seconds, WINDOW_BUDGET_S, "s"))
    return budgets


def budgets_command(app_dir: Path, archive: Path) -> int:
    budgets = measure_budgets(app_dir, archive)
    print(f"\nbudgets of {archive.name} (MB = 10^6 bytes):")
    for budget in budgets:
        print(budget.line())
    return 0


def smoke_command(archive: Path, screenshot_path: Path, settle_s: float) -> int:
    isolate = network_isolation()
    failures = []
    with tempfile.TemporaryDirectory(prefix="rd-unpacked-") as unpacked:
        with tarfile.open(archive) as bundle:
            bundle.extractall(unpacked, filter="tar")
        (app_dir,) = (p for p in Path(unpacked).iterdir() if p.is_dir())
        for budget in (
            Budget("unpacked size", tree_size(app_dir) / MB, UNPACKED_BUDGET_MB, "MB"),
            Budget("archive size", archive.stat().st_size / MB, ARCHIVE_BUDGET_MB, "MB"),
        ):
            print(budget.line())
            if not budget.ok:
                failures.append(budget.label)
        seconds, result = run_self_test(app_dir, isolate)
        print(f"frozen --self-test from the unpacked archive, clean env{', no network' if isolate else ''}:")
        print(result.stdout + result.stderr, end="")
        print(f"  ({seconds:.2f} s, exit {result.returncode})")
        if result.returncode != 0:
            failures.append("self-test")
        with (
            tempfile.TemporaryDirectory(prefix="rd-home-") as home,
            xvfb() as display,
            gui(app_dir, display, isolate, Path(home)) as (process, seconds),
        ):
            print(f"window visible after {seconds:.2f} s; waiting {settle_s:.0f} s for the demo analysis")
            time.sleep(settle_s)
            window_id = find_window(display)
            if process.poll() is not None:
                failures.append(f"the app exited with {process.returncode} while shown")
            elif window_id is None:
                failures.append("the window disappeared")
            else:
                screenshot(display, window_id, screenshot_path)
                print(f"screenshot: {screenshot_path}")
    if failures:
        print(f"package-test FAILED: {', '.join(failures)}", file=sys.stderr)
        return 1
    print("package-test passed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    budgets = commands.add_parser("budgets", help="print sizes and start-up times of a build")
    budgets.add_argument("app_dir", type=Path)
    budgets.add_argument("archive", type=Path)
    smoke = commands.add_parser("smoke", help="unpack, self-test, show the window, screenshot it")
    smoke.add_argument("archive", type=Path, nargs="?", help="default: the one `make package` wrote")
    smoke.add_argument("--screenshot", type=Path, default=Path("docs/packaged.png"))
    smoke.add_argument("--settle", type=float, default=25.0, help="seconds shown before the screenshot")
    args = parser.parse_args(argv)
    if args.command == "budgets":
        return budgets_command(args.app_dir, args.archive)
    archive = args.archive or Path("dist") / f"runbook-desk-{version('runbook-desk')}-linux-x86_64.tar.gz"
    return smoke_command(archive, args.screenshot, args.settle)


if __name__ == "__main__":
    sys.exit(main())
