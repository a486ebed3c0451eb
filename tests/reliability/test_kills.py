"""A stage killed halfway: SIGTERM removes its temporaries at once; after kill -9 the next
run of that stage removes them. No final path ever looks finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import REPO

TEMP_TAG = ".demo.floodkd-tmp-"


def _start_demo(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, "-m", "floodkd.cli", "demo", "--out", str(out),
                             "--size", "64"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(TEMP_TAG)]


def _wait_for_temp(process: subprocess.Popen, folder: Path) -> None:
    deadline = time.monotonic() + 120
    while not (folder.is_dir() and _temps(folder)):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the demo never started writing: {process.communicate()[1]}")
        time.sleep(0.05)


def test_sigterm_removes_the_temporaries(tmp_path):
    out = tmp_path / "data" / "demo"
    process = _start_demo(out)
    _wait_for_temp(process, out.parent)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []  # no temporaries, not even the folder it made


def test_the_next_run_removes_what_kill_9_left(tmp_path):
    out = tmp_path / "data" / "demo"
    notes = tmp_path / "data" / ".demo.notes"  # a hidden name of the user's: kept
    notes.parent.mkdir(parents=True)
    notes.write_text("mine")
    process = _start_demo(out)
    _wait_for_temp(process, out.parent)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    left = _temps(out.parent)
    assert left and not out.exists()
    rerun = _start_demo(out)
    assert rerun.wait(timeout=300) == 0, rerun.communicate()[1]
    assert (out / "manifest.json").is_file()
    assert _temps(out.parent) == [] and not any(p.exists() for p in left)
    assert notes.read_text() == "mine"
