"""Benchmark how the whole workflow's cost grows with the region: time and memory per stage.

For each demo size (the side of the demo regions in px; the defaults span 16x in area) the
whole workflow runs in a fresh folder, as a user runs it: ``snakemake demo`` (the generator),
then ``snakemake`` (every other rule). Each rule's ``benchmark:`` file gives its wall time
and peak RSS; a stage's time is the sum over its jobs (regions, modalities, scenarios) and its
memory the largest peak of one job. Per stage the JSON gives both at every size and their
growth over the smallest size; the machine's load average is recorded beside every run,
because on a shared machine it decides the timings.

    nice -n 10 python benchmarks/scale.py --sizes 192 384 768 --epochs 1
    # writes benchmarks/results/scale.json

``--epochs N`` sets every training phase to N epochs (the same at every size), so training
time measures the cost per epoch, which is what grows with the area; the shipped epochs are
kept when it is not given. ``--set section.key=value`` sets any other config key the same
way (e.g. ``training.ensemble_members=2``). Sizes can run as separate invocations (``--partial``,
each with its own ``--workdir``); ``--summarise DIR ...`` then writes the JSON from their run
folders.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "scale.json"
EPOCH_KEYS = ("teacher_epochs", "distill_epochs", "finetune_epochs", "source_epochs")
MODALITIES = ("sar", "optical", "gcm", "tide", "terrain", "labels")
TARGETS = {"memory_growth_ratio": 1.5, "time_growth_ratio": 20.0}


def write_config(work: Path, size: int, epochs: int | None, settings: list) -> dict:
    """The shipped config at this demo size with ``settings`` ((section.key, value) pairs),
    every path inside ``work``."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["demo"]["size"] = size
    if epochs is not None:
        settings = [(f"training.{key}", epochs) for key in EPOCH_KEYS] + list(settings)
    for dotted, value in settings:
        section, _, key = dotted.partition(".")
        config[section] = {**(config.get(section) or {}), key: value}
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def snakemake(work: Path, cores: int, *targets: str) -> float:
    """Run Snakemake in ``work``; its wall time in seconds (raises with the log's tail)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(work), "--configfile", str(work / "config.yaml"),
               "--cores", str(cores), *targets]
    start = time.perf_counter()
    with open(work / "snakemake.log", "a") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    if result.returncode:
        tail = (work / "snakemake.log").read_text()[-4000:]
        raise RuntimeError(f"snakemake {' '.join(targets)} failed in {work}:\n{tail}")
    return time.perf_counter() - start


def stage_of(path: Path, benchmarks: Path, scenarios: set[str]) -> str:
    """``demo-target/ingest_sar.tsv`` -> ``ingest``; ``x/predict_observed.tsv`` -> ``predict``:
    the rule, with the wildcard values (region folder, modality, scenario) dropped."""
    stem = path.relative_to(benchmarks).with_suffix("").name
    head, _, tail = stem.rpartition("_")
    return head if head and (tail in MODALITIES or tail in scenarios) else stem


def read_benchmarks(results: Path, scenarios: set[str]) -> dict[str, dict]:
    """Per stage: total wall seconds over its jobs, the largest job's peak RSS (MiB), jobs."""
    benchmarks = results / "benchmarks"
    stages: dict[str, dict] = {}
    for path in sorted(benchmarks.rglob("*.tsv")):
        with path.open() as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        stage = stages.setdefault(stage_of(path, benchmarks, scenarios),
                                  {"seconds": 0.0, "peak_rss_mib": 0.0, "jobs": 0})
        for row in rows:  # one row per repeat of the job; Snakemake writes one
            stage["seconds"] += float(row["s"])
            rss = row.get("max_rss", "NA")
            stage["peak_rss_mib"] = max(stage["peak_rss_mib"], float(rss) if rss != "NA" else 0)
            stage["jobs"] += 1
    return stages


def run_size(size: int, args: argparse.Namespace, parent: Path, repeat: int) -> dict:
    """One whole workflow at one size in a fresh folder."""
    work = parent / f"size{size}_run{repeat}"
    work.mkdir(parents=True)
    write_config(work, size, args.epochs, args.set)
    load_before = os.getloadavg()
    demo_s = snakemake(work, args.cores, "demo")
    workflow_s = snakemake(work, args.cores)
    run = {"size_px": size, "repeat": repeat, "demo_wall_s": demo_s,
           "workflow_wall_s": workflow_s, "load_average_before": load_before,
           "load_average_after": os.getloadavg()}
    (work / "run.json").write_text(json.dumps(run))
    run = read_run(work)
    print(json.dumps({k: v for k, v in run.items() if k != "stages"}), flush=True)
    for name, stage in run["stages"].items():
        print(f"  {size:5d} px {name:16s} {stage['seconds']:8.1f} s "
              f"{stage['peak_rss_mib']:8.1f} MiB ({stage['jobs']} jobs)", flush=True)
    return run


def read_run(work: Path) -> dict:
    """A run folder: its run.json (absent: the run did not finish, and only its finished
    stages count), the config values set, and its stages."""
    config = yaml.safe_load((work / "config.yaml").read_text())
    scenarios = set(config.get("predict", {}).get("scenarios") or {"observed": {}})
    stages = read_benchmarks(work / config.get("results_dir", "results"), scenarios)
    finished = (work / "run.json").is_file()
    run = (json.loads((work / "run.json").read_text()) if finished
           else {"size_px": config["demo"]["size"], "repeat": 0})
    return {**run, "finished": finished, "stages": stages,
            "config": {key: config.get(key) for key in ("training", "align", "predict")}}


def summarise(runs: list[dict], sizes: list[int]) -> dict:
    """Per stage and size the median over repeats; growth from the smallest to the largest."""
    table: dict[str, dict[str, dict]] = {}
    for size in sizes:
        at_size = [run for run in runs if run["size_px"] == size]
        for stage in sorted({s for run in at_size for s in run["stages"]}):
            values = [run["stages"][stage] for run in at_size if stage in run["stages"]]
            table.setdefault(stage, {})[str(size)] = {
                "seconds": statistics.median(v["seconds"] for v in values),
                "peak_rss_mib": statistics.median(v["peak_rss_mib"] for v in values),
                "jobs": values[0]["jobs"],
            }
    small, large = str(sizes[0]), str(sizes[-1])
    growth = {}
    for stage, by_size in table.items():
        if small in by_size and large in by_size:
            growth[stage] = {
                "time_growth_ratio": by_size[large]["seconds"] / by_size[small]["seconds"],
                "memory_growth_ratio": by_size[large]["peak_rss_mib"]
                / by_size[small]["peak_rss_mib"],
            }
    met = {key: all(g[key] <= limit for g in growth.values()) for key, limit in TARGETS.items()}
    finished = all(run.get("finished", True) for run in runs)
    # a run that stopped early has no figures for its later stages: the targets cover only
    # the stages measured at both ends, and say so
    return {"stages": table, "growth": growth, "targets": TARGETS, "targets_met": met,
            "all_runs_finished": finished, "stages_with_growth": sorted(growth)}


def device() -> str:
    """What the stages ran on: training.device is auto, so CUDA when torch sees a GPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def key_value(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    return key, yaml.safe_load(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 384, 768],
                        help="demo sizes in px; the first and last must span 16x in area")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of every training phase (default: the shipped ones)")
    parser.add_argument("--set", type=key_value, action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="a config value for every size, e.g. training.ensemble_members=2")
    parser.add_argument("--repeats", type=int, default=1, help="whole runs per size (median)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--partial", action="store_true",
                        help="run these sizes only, for a later --summarise (needs --workdir)")
    parser.add_argument("--note", default="", help="a sentence on how the runs went")
    parser.add_argument("--summarise", type=Path, nargs="+", metavar="DIR",
                        help="write the JSON from these finished run folders; run nothing")
    args = parser.parse_args()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    if args.summarise:
        runs = [read_run(work) for work in args.summarise]
        args.sizes = [run["size_px"] for run in runs]
        args.repeats = max(sum(r["size_px"] == run["size_px"] for r in runs) for run in runs)
    sizes = sorted(set(args.sizes))
    if (sizes[-1] / sizes[0]) ** 2 < 16 and not args.partial:
        parser.error("the sizes must span at least 16x in area (e.g. 192 384 768)")
    if not args.summarise:
        with tempfile.TemporaryDirectory(prefix="floodkd-scale-") as tmp:
            parent = args.workdir or Path(tmp)
            runs = [run_size(size, args, parent, repeat)
                    for repeat in range(args.repeats) for size in sizes]
        if args.partial:
            return  # one size of several invocations: --summarise writes the JSON
    report = {
        "benchmark": "whole workflow at growing region sizes", "note": args.note,
        "created_utc": started, "sizes_px": sizes, "area_growth": (sizes[-1] / sizes[0]) ** 2,
        "config": runs[0]["config"], "repeats": args.repeats, "cores": args.cores,
        "device": device(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        **summarise(runs, sizes), "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("growth", "targets_met")}, indent=2))


if __name__ == "__main__":
    main()
