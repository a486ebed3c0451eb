"""The workflow's rules, tried through Snakemake on a tiny demo coast (fast: dry runs and
single cheap jobs)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from floodkd.config import load_config
from tests.workflow_tools import REPO, planned_jobs, snakemake, write_coast


@pytest.fixture(scope="module")
def coast(tmp_path_factory) -> Path:
    return write_coast(tmp_path_factory.mktemp("coast"), size=32)


def _shell_commands() -> dict[str, str]:
    """Rule file -> the joined text of its `shell:` commands."""
    commands = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        blocks = re.findall(r"^\s+shell:\n((?:\s{8,}.*\n?)+)", text, flags=re.MULTILINE)
        if blocks:
            commands[path.name] = "".join(ast.literal_eval(f"({block})") for block in blocks)
    return commands


def test_every_value_in_a_shell_command_is_quoted():
    commands = _shell_commands()
    assert {"ingest.smk", "predict.smk"} <= set(commands)
    for name, command in commands.items():
        for field in re.findall(r"\{([^{}]+)\}", command):
            assert field == "threads" or field.endswith(":q"), (name, field)


def test_a_config_value_cannot_inject_a_shell_command(tmp_path):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["demo"] = {"out": "data/demo-$(touch INJECTED)", "size": 32, "seed": 1}
    config["results_dir"] = "results-`touch INJECTED2`"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--", "demo")  # `--`: a target after --configfile is a file
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "INJECTED").exists() and not (tmp_path / "INJECTED2").exists()
    assert (tmp_path / "data" / "demo-$(touch INJECTED)" / "manifest.json").is_file()
    assert (tmp_path / "results-`touch INJECTED2`" / "logs" / "demo.log").is_file()


def test_config_overrides_reach_the_stage(coast):
    # a partial --configfile on top of the full one, and --config on top of both
    (coast / "override.yaml").write_text("results_dir: elsewhere\n")
    target = "elsewhere/demo-target/ingest/terrain"
    result = snakemake(coast, "--configfile", str(coast / "config.yaml"),
                       str(coast / "override.yaml"),
                       "--config", "training={teacher_epochs: 2}", "--printshellcmds", "--", target,
                       configfile=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (coast / target).is_dir() and not (coast / "results").exists()
    effective = load_config(coast / "elsewhere" / "config.yaml")  # valid for the same schema
    assert effective["training"]["teacher_epochs"] == 2
    assert effective["training"]["ensemble_members"] == 2  # from config.yaml
    assert effective["align"]["chunk_px"] == 512  # a schema default
    assert "--config elsewhere/config.yaml " in result.stdout + result.stderr


def test_the_stage_reads_an_overridden_input_and_its_error_reaches_the_console(coast):
    empty = coast / "no-dem"
    empty.mkdir()
    override = {"regions": {"demo-target": {"inputs": {"terrain": {"glob": "no-dem/*.tif"}}}}}
    result = snakemake(coast, "--config", f"regions={yaml.safe_dump(override['regions'])}",
                       "--", "results/demo-target/ingest/terrain")
    assert result.returncode != 0
    console = result.stdout + result.stderr
    assert "floodkd ingest terrain demo-target: error:" in console
    assert "no-dem/*.tif" in console and "matches no files" in console
    assert not (coast / "results" / "demo-target" / "ingest" / "terrain").exists()


def test_the_slurm_profile_dry_runs_without_a_cluster(coast):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    result = snakemake(coast, "--profile", str(REPO / "workflow" / "profiles" / "slurm"),
                       "--dry-run")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"^train_teacher\s+1$", result.stdout, flags=re.MULTILINE)


def test_lint_finds_nothing_but_the_justified_lint(coast):
    # the one lint left, a conda environment per rule, is justified in the Snakefile
    result = snakemake(coast, "--lint")
    lints = re.findall(r"^\s+\* (.+):$", result.stdout + result.stderr, flags=re.MULTILINE)
    assert result.returncode == 0 or lints, result.stdout[-3000:] + result.stderr[-3000:]
    assert set(lints) <= {"Specify a conda environment or container for each rule."}


def test_a_radar_only_region_beside_the_demo_plans_from_its_radar_alone(coast):
    # the Sen1Floods11 crop with only a radar glob and its time: no gauges, so no return
    # levels for its plan, and no other modality is ingested for it
    chip = REPO / "tests" / "data" / "sen1floods11" / "Spain_7370579_crop_S1Hand.tif"
    config = yaml.safe_load((coast / "config.yaml").read_text())
    config["regions"]["chip"] = {
        "role": "target", "model": "teacher", "bbox": [-0.7758, 38.1061, -0.7707, 38.1113],
        "inputs": {"sar": {"glob": str(chip), "times": {chip.name: "2019-09-17T06:00:00Z"}}}}
    (coast / "radar-only.yaml").write_text(yaml.safe_dump(config))
    jobs = planned_jobs(coast, "--configfile", str(coast / "radar-only.yaml"))
    chip_jobs = [job for job in jobs if re.search(r"\bchip\b", job)]
    assert [job for job in chip_jobs if job.startswith("Ingesting")] == ["Ingesting sar of chip"]
    assert "Planning actions for chip from its latest conditions" in chip_jobs
    assert not [job for job in chip_jobs if "extremes" in job or "Sea-level" in job]
