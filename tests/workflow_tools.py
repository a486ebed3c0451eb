"""Run Snakemake on a demo coast in a temporary folder, as a user would from the shell."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from floodkd.cli import main

REPO = Path(__file__).parents[1]

# Just enough training to exercise every stage; the shipped config trains for real.
TINY_TRAINING = {"teacher_epochs": 1, "distill_epochs": 1, "finetune_epochs": 1, "source_epochs": 1,
                 "ensemble_members": 2, "batch_size": 4, "samples_per_epoch": 32}


# a scenario of each kind: the latest pass, a water-level offset and a climate return level
CLIMATE_SCENARIO = "ssp245_2050_rp100"
SCENARIOS = ("observed", "surge_1m", CLIMATE_SCENARIO)


def write_coast(work: Path, size: int = 64) -> Path:
    """A demo coast of ``size`` px and a config that trains it as little as possible."""
    assert main(["demo", "--out", str(work / "data" / "demo"), "--size", str(size),
                 "--seed", "7"]) == 0
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["demo"]["size"] = size
    config["training"] = dict(TINY_TRAINING)
    config["align"] = {"tile_px": 32, "tile_overlap_px": 8, "split_block_tiles": 1}
    config["predict"] = {"tile_px": 32, "overlap_px": 8, "mc_samples": 2,
                         "scenarios": {"observed": {}, "surge_1m": {"water_level_offset_m": 1.0},
                                       CLIMATE_SCENARIO: {"experiment": "ssp245", "horizon": 2050,
                                                          "return_period_years": 100}}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work


def snakemake(workdir: Path, *args: str, configfile: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", "2"]
    if configfile:
        command += ["--configfile", str(workdir / "config.yaml")]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env,
                          timeout=3600)


def planned_jobs(workdir: Path, *args: str) -> list[str]:
    """The sorted one-line messages of the jobs a dry run schedules (besides `all`)."""
    result = snakemake(workdir, "--dry-run", *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return sorted(re.findall(r"^Job \d+: (.+)$", result.stdout + result.stderr,
                             flags=re.MULTILINE))
