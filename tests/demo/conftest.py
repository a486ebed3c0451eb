"""A tiny demo coast, generated once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from floodkd.demo import generate_demo

DEMO_SEED = 7
DEMO_SIZE_PX = 64


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 px demo coast (both regions, all modalities)."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    generate_demo(out, seed=DEMO_SEED, size_px=DEMO_SIZE_PX)
    return out


@pytest.fixture(scope="session")
def manifest(demo_dir: Path) -> dict:
    return json.loads((demo_dir / "manifest.json").read_text())
