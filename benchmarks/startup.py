"""Benchmark each CLI command's start-up: the seconds before a stage can begin its work.

Every command runs in a fresh process, as Snakemake starts it, against a valid config whose
inputs do not exist: it imports what its run path uses, then stops with the InputError of
its first missing input. That wall time is the start-up a rule pays before any real work;
``python -X importtime`` names the packages it loaded, so the JSON says whether the student
path stays clear of ``transformers`` and what dominates each command.

    nice -n 10 python benchmarks/startup.py --repeats 3   # benchmarks/results/startup.json
"""

from __future__ import annotations

import argparse
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
RESULTS = Path(__file__).parent / "results" / "startup.json"
HEAVY = ("torch", "transformers", "matplotlib", "geopandas", "xarray", "dask", "rasterio",
         "scipy", "skimage", "pystac", "utide", "zarr")
TARGET_S = {"predict": 5.0, "evaluate": 5.0}  # issue 15: within 5 s of start-up
# these build the ViT teacher after their input checks, and pay for transformers there
TEACHER_COMMANDS = ("train-teacher", "distill", "teacher-passes", "predict teacher")


def commands(work: Path) -> dict[str, list[str]]:
    """Each command with arguments that pass parsing and meet a missing input at once."""
    config, missing = str(work / "config.yaml"), str(work / "missing")
    out = str(work / "out")  # apart from the inputs, or the stage refuses to overwrite them
    region = ["--config", config, "--region", "demo-target"]
    return {
        "demo": ["demo", "--out", missing, "--size", "8"],
        "ingest sar": ["ingest", "sar", *region, "--out", out],
        "align": ["align", *region, "--cube", missing, "--tiles", missing + ".parquet"],
        "train-teacher": ["train-teacher", "--config", config, "--out", out],
        "distill": ["distill", *region, "--teacher", missing, "--out", out],
        "teacher-passes": ["teacher-passes", *region, "--teacher", missing, "--out",
                           out + ".tif"],
        "evaluate": ["evaluate", *region, "--teacher-passes", missing, "--student", missing,
                     "--out", out],
        "predict": ["predict", *region, "--model", "student", "--student", missing,
                    "--cube", missing, "--out", out],
        "predict teacher": ["predict", *region, "--model", "teacher", "--teacher", missing,
                            "--cube", missing, "--out", out],
    }


def write_config(work: Path) -> None:
    """The shipped config with every input glob pointing at nothing."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["results_dir"] = str(work / "results")
    for region in config["regions"].values():
        region.pop("area_file", None)
        region["bbox"] = [3.0, 51.3, 3.02, 51.32]
        for spec in region["inputs"].values():
            spec["glob"] = str(work / "none" / "*.tif")
            spec.pop("stations", None)
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def package_imports(log: str) -> dict[str, float]:
    """Import seconds of each package (its root module's cumulative time) from the
    ``-X importtime`` log, wherever in the tree it was first imported."""
    seconds: dict[str, float] = {}
    for line in log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and "." not in name.strip():
                seconds[name.strip()] = int(cumulative) / 1e6
    return seconds


def measure(argv: list[str], work: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "floodkd.cli", *argv],
                            capture_output=True, text=True, env=env, cwd=work)
    seconds = time.perf_counter() - start
    imports = package_imports(result.stderr)
    errors = [line for line in (result.stderr + result.stdout).splitlines()
              if "error" in line.lower() and not line.startswith("import time:")]
    if result.returncode == 0 or not errors:
        raise RuntimeError(f"floodkd {' '.join(argv)} did not stop at a missing input:\n"
                           f"{result.stderr[-3000:]}")
    return {"seconds": seconds, "imports": imports, "stopped_at": errors[-1][:300]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per command (median)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="floodkd-startup-") as tmp:
        work = Path(tmp)
        write_config(work)
        baseline = statistics.median(measure_python(work) for _ in range(args.repeats))
        vit_s = transformers_seconds(work, args.repeats)
        for name, argv in commands(work).items():
            runs = []
            for _ in range(args.repeats):
                load = os.getloadavg()[0]
                runs.append({**measure(argv, work), "load_average_1min": load})
            imports = runs[-1]["imports"]
            heavy = {p: round(s, 3) for p, s in sorted(imports.items(), key=lambda kv: -kv[1])
                     if p in HEAVY or p == "floodkd"}
            report[name] = {
                "seconds_median": statistics.median(r["seconds"] for r in runs),
                "seconds": [r["seconds"] for r in runs],
                "load_average_1min": [r["load_average_1min"] for r in runs],
                "imports_transformers": "transformers" in imports,
                "imports_torch": "torch" in imports,
                "package_import_seconds": heavy,
                "stopped_at": runs[-1]["stopped_at"],
            }
            if name in TEACHER_COMMANDS and not imports.get("transformers"):
                report[name]["seconds_with_teacher_build"] = (
                    report[name]["seconds_median"] + vit_s)
            print(f"{name:16s} {report[name]['seconds_median']:6.2f} s  torch "
                  f"{report[name]['imports_torch']!s:5s} transformers "
                  f"{report[name]['imports_transformers']!s:5s} load {load:.1f}", flush=True)
    document = {
        "benchmark": "CLI start-up: process start to the first input check",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeats": args.repeats, "python_startup_s": baseline,
        "transformers_vit_import_s": vit_s,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "targets_s": TARGET_S,
        "targets_met": {name: report[name].get("seconds_with_teacher_build",
                                               report[name]["seconds_median"]) <= limit
                        for name, limit in TARGET_S.items()},
        "student_path_without_transformers": not report["predict"]["imports_transformers"],
        "commands": report,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")


def measure_python(work: Path, code: str = "pass") -> float:
    """Wall seconds of ``python -c code``; a bare interpreter is the floor under every command."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=work)
    return time.perf_counter() - start


def transformers_seconds(work: Path, repeats: int) -> float:
    """What importing the ViT of transformers adds once torch is in (the teacher's build)."""
    with_vit = statistics.median(measure_python(
        work, "import torch, transformers.models.vit.modeling_vit") for _ in range(repeats))
    return with_vit - statistics.median(measure_python(work, "import torch")
                                        for _ in range(repeats))


if __name__ == "__main__":
    main()
