"""A tiny demo coast in a working folder of its own, and a snapshot of every file in it.

Each test gets a fresh copy of a 32 px demo (made once per session) under ``tmp_path``, the
repository's config beside it, and runs there; ``snapshot`` lets it assert that nothing
outside the stage's own output was created, changed or removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import floodkd.cli
from floodkd.demo import generate_demo

REPO = Path(__file__).resolve().parents[2]
SOURCE, TARGET = "demo-source", "demo-target"
MODALITIES = ("sar", "optical", "terrain", "tide", "gcm", "labels")
CUBE, TILES = f"results/{TARGET}/cube.zarr", f"results/{TARGET}/tiles.parquet"
STUDENT, MAPS = f"results/{TARGET}/student", f"results/{TARGET}/maps"


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reliability-demo") / "demo"
    generate_demo(out, seed=3, size_px=32)
    return out


def ingest_and_align(region: str = TARGET, modalities=MODALITIES) -> None:
    """Ingest ``modalities`` of ``region`` and align its cube, in the working folder."""
    for modality in modalities:
        code = floodkd.cli.main(["ingest", modality, "--config", "config.yaml", "--region",
                                 region, "--out", f"results/{region}/ingest/{modality}"])
        assert code == 0, f"ingest {modality} failed"
    code = floodkd.cli.main(["align", "--config", "config.yaml", "--region", region,
                             "--cube", f"results/{region}/cube.zarr",
                             "--tiles", f"results/{region}/tiles.parquet"])
    assert code == 0, "align failed"


def write_student(folder: Path) -> None:
    """A tiny untrained student ensemble of one member, as ``floodkd distill`` lays it out:
    what predict needs to run (its values are not the point of these tests)."""
    import torch

    from floodkd.models.checkpoint import save_checkpoint
    from floodkd.models.student import FloodStudent, StudentConfig

    torch.manual_seed(0)
    model = FloodStudent(StudentConfig(base_width=8, depth=2, temporal_dim=16,
                                       temporal_heads=2))
    save_checkpoint(model, folder / "member-0.safetensors", {"variant": "distilled"})
    (folder / "student.json").write_text(json.dumps(
        {"files": {"distilled": ["member-0.safetensors"]}, "temperature": 1.0}))


@pytest.fixture(scope="session")
def aligned_template(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Path:
    """A working folder with the demo target ingested and aligned, and a tiny student."""
    root = tmp_path_factory.mktemp("reliability-aligned")
    shutil.copytree(demo_template, root / "data" / "demo")
    shutil.copy(REPO / "config" / "config.yaml", root / "config.yaml")
    with contextlib.chdir(root):
        ingest_and_align()
        write_student(root / STUDENT)
    return root


@pytest.fixture
def aligned(tmp_path: Path, aligned_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of ``aligned_template`` as the working folder."""
    work = tmp_path / "work"
    shutil.copytree(aligned_template, work)
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def workdir(tmp_path: Path, demo_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the working folder: data/demo (a plain copy) and config.yaml."""
    shutil.copytree(demo_template, tmp_path / "data" / "demo")
    shutil.copy(REPO / "config" / "config.yaml", tmp_path / "config.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root``: relative path -> (kind, size, mtime)."""
    state = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            stat = path.lstat()
            kind = "dir" if path.is_dir() else "file"
            state[str(path.relative_to(root))] = (kind, 0 if kind == "dir" else stat.st_size,
                                                  stat.st_mtime_ns if kind == "file" else 0)
    return state


def changes(before: dict[str, tuple], after: dict[str, tuple], *own: str) -> list[str]:
    """Paths created, changed or removed, except the stage's own outputs ``own`` (and what is
    under them) and the folders that hold them."""
    def outside(path: str) -> bool:
        mine = any(path == o or path.startswith(o + "/") or o.startswith(path + "/")
                   for o in own)
        return not mine

    keys = set(before) | set(after)
    return sorted(k for k in keys if outside(k) and before.get(k) != after.get(k))


@pytest.fixture
def floodkd_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """Run ``floodkd ARGS...`` in-process; return (exit code, stderr)."""

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = floodkd.cli.main(list(args))
        return code, capsys.readouterr().err

    return run
