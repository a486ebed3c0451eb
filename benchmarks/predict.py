"""Benchmark whole-region tiled inference: throughput, time split and peak memory.

For the student (one model, one pass) and the radar teacher (its ``teacher_members`` ViTs,
the training default), both with random weights built from their default configs, over
three square regions spanning 16x in area, each run in its own subprocess so peak RSS is
that run's alone; beside them, at the largest region, the
whole student ensemble as the maps use it (``ENSEMBLE_MEMBERS`` members x ``MC_SAMPLES``
MC-dropout draws, the training and predict defaults) through ``StudentEnsemble``. Time is
split into reading inputs, model compute and writing outputs (blending, COG, style, STAC,
quicklook: the rest of the wall time). Reading is a stand-in, not the cube reader: each
window's input is drawn from a standard normal, one array of the model's own channel count
(``TEACHER_CHANNELS`` for the teacher, ``STUDENT_CHANNELS`` for the student), so ``read_s``
grows with the channels and the pixels but says nothing about Zarr or disk (the JSON says so
under ``read_stand_in``). The writer's floor is reading the inputs once plus compressing
the written maps' full-resolution bands once (the same DEFLATE level, predictor, tiling and threads
as the COGs, no overviews, no quicklooks): ``write_vs_floor`` is what the run spent outside
model compute over that.

    .venv/bin/python benchmarks/predict.py            # writes benchmarks/results/predict.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

SIZES_PX = (512, 1024, 2048)  # square regions: 1x, 4x, 16x the area
TILE_PX, OVERLAP_PX = 256, 32
ENSEMBLE_MEMBERS, MC_SAMPLES = 3, 4  # training.ensemble_members, predict.mc_samples defaults
RESULTS = Path(__file__).parent / "results" / "predict.json"
READ_STAND_IN = ("read_s times drawing each window's input from a standard normal "
                 "(input_channels x window pixels, float32), not reading the cube")


def run_one(model_name: str, size_px: int, device: str) -> dict:
    """One whole-region run in this process; returns timings and peak RSS."""
    import numpy as np
    import torch
    from affine import Affine
    from odc.geo.geobox import GeoBox

    from floodkd.distill.calibration import Calibration
    from floodkd.distill.inference import StudentEnsemble
    from floodkd.distill.settings import TrainingConfig
    from floodkd.grid import RegionGrid
    from floodkd.models.channels import STUDENT_CHANNELS, TEACHER_CHANNELS
    from floodkd.models.student import FloodStudent, StudentConfig
    from floodkd.models.teacher import RadarTeacher, TeacherConfig
    from floodkd.predict import MapProvenance, write_scenario_maps
    from floodkd.predict.teacher import teacher_tiling

    torch.manual_seed(0)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    if model_name == "student":
        model = FloodStudent(StudentConfig()).eval().to(device)
    elif model_name == "ensemble":
        members = []
        for seed in range(ENSEMBLE_MEMBERS):
            torch.manual_seed(seed)
            members.append(FloodStudent(StudentConfig()).eval().to(device))
        model = StudentEnsemble(members, Calibration(), torch.device(device))  # T 1, b 0
    else:
        config = replace(TeacherConfig(), members=TrainingConfig().teacher_members)
        model = RadarTeacher(config).eval().to(device)
    # each model tiled as the product maps with it: the teacher at its training tile size
    tile_px, overlap_px = (teacher_tiling({}, model, OVERLAP_PX) if model_name == "teacher"
                           else (TILE_PX, OVERLAP_PX))
    rng = np.random.default_rng(0)
    timings = {"read_s": 0.0, "compute_s": 0.0}
    channels = len(TEACHER_CHANNELS if model_name == "teacher" else STUDENT_CHANNELS)

    def predict_window(row_off, col_off, height, width):
        start = time.perf_counter()
        image = torch.from_numpy(rng.standard_normal((1, channels, height, width), np.float32))
        timings["read_s"] += time.perf_counter() - start
        start = time.perf_counter()
        with torch.inference_mode():
            image = image.to(device)
            if model_name == "ensemble":
                batch = {"student_image": image, "presence": torch.ones((1, 3)),
                         "gauge_history": torch.zeros((1, 2, 72))}
                prob = model.predict_probabilities(batch, MC_SAMPLES)[:, 0]  # (S, h, w)
            elif model_name == "student":
                presence = torch.ones((1, 3), device=device)
                history = torch.zeros((1, 2, 72), device=device)
                logits, _ = model(image, presence, history)
            else:
                logits, _ = model(image)
            if model_name != "ensemble":
                prob = torch.softmax(logits, dim=1)[:, 1].cpu().numpy()
        if device == "cuda":
            torch.cuda.synchronize()
        timings["compute_s"] += time.perf_counter() - start
        return prob.astype(np.float32), np.full((height, width), 8, np.uint16)

    grid = RegionGrid(GeoBox((size_px, size_px), Affine(10, 0, 500000, 0, -10, 5800000),
                             "EPSG:32631"))
    provenance = MapProvenance("bench", "observed", datetime(2024, 1, 1, tzinfo=UTC), "0" * 64,
                               [], synthetic=True)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        maps = write_scenario_maps(grid, predict_window, out, provenance, tile_px=tile_px,
                                   overlap_px=overlap_px)
        total = time.perf_counter() - start
        compress_s = compress_once_s([maps.probability, maps.uncertainty, maps.inputs_used],
                                     Path(out) / "floor")
    megapixels = size_px * size_px / 1e6
    return {
        "model": model_name, "device": device, "size_px": size_px, "megapixels": megapixels,
        "input_channels": channels, "tile_px": tile_px, "overlap_px": overlap_px,
        "samples_per_pixel": ENSEMBLE_MEMBERS * MC_SAMPLES if model_name == "ensemble" else 1,
        "total_s": total, "read_s": timings["read_s"], "compute_s": timings["compute_s"],
        "write_s": total - timings["read_s"] - timings["compute_s"],
        "megapixels_per_s": megapixels / total,
        "compute_megapixels_per_s": megapixels / timings["compute_s"],
        "compress_once_s": compress_s, "floor_s": timings["read_s"] + compress_s,
        "write_vs_floor": (total - timings["compute_s"]) / (timings["read_s"] + compress_s),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_in_subprocess(model_name: str, size_px: int, device: str, repeats: int) -> dict:
    """``run_one`` ``repeats`` times, each in a fresh interpreter (so peak RSS is that run's
    alone): the run of median total time, with every repeat's ``total_s_repeats`` (one run
    varies by about 5% on a shared 2-core machine); printed as it ends. A failing run raises
    with its own traceback."""
    runs = []
    for _ in range(repeats):
        result = subprocess.run([sys.executable, __file__, "--one", model_name, str(size_px),
                                 device], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{model_name} at {size_px} px on {device} failed:\n"
                               f"{result.stderr}")
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda run: run["total_s"])
    run = runs[len(runs) // 2] | {"total_s_repeats": [r["total_s"] for r in runs]}
    print(json.dumps(run), flush=True)
    return run


def compress_once_s(cogs: list[Path], out_dir: Path) -> float:
    """Seconds to compress the COGs' full-resolution bands once (read beforehand, untimed)
    into tiled, band-interleaved GeoTIFFs with the COGs' own compression and threads."""
    import rasterio

    from floodkd.predict.cog import COMPRESSION, DEFLATE_LEVEL, PREDICTORS

    out_dir.mkdir()
    seconds = 0.0
    for cog in cogs:
        with rasterio.open(cog) as src:
            values, profile = src.read(), src.profile
        profile.update(driver="GTiff", tiled=True, interleave="band", compress=COMPRESSION,
                       zlevel=DEFLATE_LEVEL, predictor=PREDICTORS[str(values.dtype)],
                       num_threads="ALL_CPUS")
        start = time.perf_counter()
        with rasterio.open(out_dir / cog.name, "w", **profile) as dst:
            dst.write(values)
        seconds += time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "SIZE", "DEVICE"),
                        help=argparse.SUPPRESS)  # internal: one run in a subprocess
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--sizes", type=int, nargs=3, default=SIZES_PX,
                        help="three region sides in px spanning 16x in area")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each model and size; the median run is kept")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.one[2])))
        return
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    load_before = os.getloadavg()[0]  # other jobs on the machine slow every figure
    runs = []
    for device in devices:
        for model in ("student", "teacher"):
            for size in args.sizes:
                runs.append(run_in_subprocess(model, size, device, args.repeats))
        runs.append(run_in_subprocess("ensemble", args.sizes[-1], device, args.repeats))
    largest = {(r["model"], r["device"]): r for r in runs if r["size_px"] == args.sizes[-1]}
    smallest = {(r["model"], r["device"]): r for r in runs if r["size_px"] == args.sizes[0]}
    summary = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                    "cpus": os.cpu_count(),
                    "load_average_1min": [load_before, os.getloadavg()[0]],  # before, after
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "student_tile_px": TILE_PX, "student_overlap_px": OVERLAP_PX,
        "sizes_px": list(args.sizes), "repeats": args.repeats,
        "read_stand_in": READ_STAND_IN,  # so read_s and floor_s are not a cube's read time
        # end-to-end MP/s of one student model over the teacher's, largest region, CPU
        "student_vs_teacher_throughput": largest[("student", "cpu")]["megapixels_per_s"]
        / largest[("teacher", "cpu")]["megapixels_per_s"],
        # the same for model compute alone (what the student's size decides; the rest of the
        # wall time, blending and writing the COGs, is the same code for both)
        "student_vs_teacher_compute_throughput":
            largest[("student", "cpu")]["compute_megapixels_per_s"]
            / largest[("teacher", "cpu")]["compute_megapixels_per_s"],
        # peak RSS at 16x the area over peak RSS at 1x (student, CPU): ~1 means bounded
        "memory_growth_ratio": largest[("student", "cpu")]["peak_rss_mib"]
        / smallest[("student", "cpu")]["peak_rss_mib"],
        "area_ratio": (args.sizes[-1] / args.sizes[0]) ** 2,
        # the maps' whole ensemble (members x MC draws) over one student model, largest region
        "ensemble_vs_student_time": largest[("ensemble", "cpu")]["total_s"]
        / largest[("student", "cpu")]["total_s"],
        "ensemble_vs_teacher_throughput": largest[("ensemble", "cpu")]["megapixels_per_s"]
        / largest[("teacher", "cpu")]["megapixels_per_s"],
        # the student's time outside model compute over reading + compressing once
        "student_write_vs_floor": largest[("student", "cpu")]["write_vs_floor"],
        "device": devices[-1],
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("student_vs_teacher_throughput",
                                              "student_vs_teacher_compute_throughput",
                                              "student_write_vs_floor",
                                              "memory_growth_ratio", "read_stand_in")}))


if __name__ == "__main__":
    main()
