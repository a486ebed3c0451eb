"""Benchmark the align stage's radar regridding against a plain rasterio.warp.reproject.

For each size N a synthetic N x N radar GeoTIFF in EPSG:4326 (tiled, DEFLATE, NaN nodata,
as ingest writes it) is regridded onto a 10 m UTM region grid covering it, and the result
written to a Zarr store:

- ``floodkd``: ``floodkd.align.regrid`` (lazy rioxarray read, odc-geo/dask warp per chunk,
  local threaded scheduler), streamed chunk by chunk into Zarr;
- ``rasterio``: ``rasterio.warp.reproject`` of the whole band into memory with
  ``num_threads``, then the array written to Zarr;
- ``gdalwarp`` (if on PATH): the GDAL command line to a GeoTIFF, ``-wo NUM_THREADS``.

Each run is its own process; its peak RSS comes from ``os.wait4`` (the child's own rusage,
unlike ``RUSAGE_CHILDREN``, which keeps the maximum over all children so far).

    python benchmarks/align.py --sizes 512 1024 2048 --threads 2 --out benchmarks/results/align.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RES_DEG = 0.0001  # ~7 m x 11 m at 51 N: close to the 10 m grid, like real 10 m GRD scenes
LON0, LAT0 = 3.0, 51.3


def make_input(path: Path, size: int) -> None:
    """An N x N float32 radar band (dB, speckled, with a NaN corner) in EPSG:4326.

    Written in row blocks: the children inherit this process's peak RSS across fork/exec
    (Linux keeps ru_maxrss), so the parent must stay small for their figures to mean anything.
    """
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    rng = np.random.default_rng(size)
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="float32",
                   crs="EPSG:4326", transform=Affine(RES_DEG, 0, LON0, 0, -RES_DEG, LAT0),
                   nodata=float("nan"), tiled=True, blockxsize=256, blockysize=256,
                   compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        for row0 in range(0, size, 256):
            rows = min(256, size - row0)
            yy, xx = np.mgrid[row0:row0 + rows, 0:size]
            vv = (-12 + 4 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
                  + rng.gamma(4.0, 0.25, (rows, size))).astype(np.float32)
            vv[(yy < size // 8) & (xx < size // 8)] = np.nan
            dst.write(vv, 1, window=Window(0, row0, size, rows))
        dst.set_band_description(1, "VV")


def region_grid(size: int):
    from shapely.geometry import box

    from floodkd.grid import RegionGrid

    span = size * RES_DEG
    outline = box(LON0 + 0.05 * span, LAT0 - 0.95 * span, LON0 + 0.95 * span, LAT0 - 0.05 * span)
    return RegionGrid.from_outline(outline, 10.0)


def cpu_seconds(who: int = 0) -> float:
    """CPU seconds (user + system, all threads) of this process (or its children): on a
    shared, loaded machine the work done is steadier than the wall time."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN if who else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_floodkd(src: Path, out: Path, size: int, threads: int, chunk_px: int) -> dict:
    import dask
    import xarray as xr

    from floodkd.align import regrid

    grid = region_grid(size)
    start, cpu = time.perf_counter(), cpu_seconds()
    band = regrid.open_band(src, "VV")
    method = regrid.continuous_resampling(regrid.native_resolution_m(band), grid.resolution)
    warped = regrid.regrid_band(band, grid, chunk_px, method, float("nan"), "float32")
    ds = xr.Dataset({"vv_db": (("y", "x"), warped)}, coords=grid.coords())
    with dask.config.set(scheduler="threads", num_workers=threads):
        ds.to_zarr(out, mode="w", zarr_format=2, compute=True)
    return {"seconds": time.perf_counter() - start, "pixels": grid.shape[0] * grid.shape[1],
            "cpu_s": cpu_seconds() - cpu, "resampling": method}


def run_rasterio(src: Path, out: Path, size: int, threads: int, method: str) -> dict:
    import numpy as np
    import rasterio
    import xarray as xr
    from rasterio.warp import Resampling, reproject

    grid = region_grid(size)
    start, cpu = time.perf_counter(), cpu_seconds()
    dst = np.full(grid.shape, np.nan, dtype=np.float32)
    with rasterio.open(src) as ds_in:
        reproject(rasterio.band(ds_in, 1), dst, dst_transform=grid.transform,
                  dst_crs=grid.crs.to_wkt(), src_nodata=np.nan, dst_nodata=np.nan,
                  resampling=Resampling[method], num_threads=threads)
    ds = xr.Dataset({"vv_db": (("y", "x"), dst)}, coords=grid.coords())
    ds.to_zarr(out, mode="w", zarr_format=2, compute=True)
    return {"seconds": time.perf_counter() - start, "pixels": grid.shape[0] * grid.shape[1],
            "cpu_s": cpu_seconds() - cpu}


def run_gdalwarp(src: Path, out: Path, size: int, threads: int, method: str) -> dict:
    grid = region_grid(size)
    left, bottom, right, top = grid.bounds
    start, cpu = time.perf_counter(), cpu_seconds(who=1)
    subprocess.run(["gdalwarp", "-q", "-overwrite", "-t_srs", grid.crs.to_wkt(), "-te",
                    str(left), str(bottom), str(right), str(top), "-tr", "10", "10",
                    "-r", method, "-multi", "-wo", f"NUM_THREADS={threads}", "-dstnodata", "nan",
                    str(src), str(out.with_suffix(".tif"))], check=True)
    return {"seconds": time.perf_counter() - start, "pixels": grid.shape[0] * grid.shape[1],
            "cpu_s": cpu_seconds(who=1) - cpu}


def child(args: argparse.Namespace) -> None:
    """One measured run in this process: print its figures as JSON."""
    out = Path(args.workdir) / f"{args.worker}_{args.size}.zarr"
    if args.worker == "floodkd":
        result = run_floodkd(Path(args.input), out, args.size, args.threads, args.chunk_px)
    elif args.worker == "rasterio":
        result = run_rasterio(Path(args.input), out, args.size, args.threads, args.resampling)
    else:
        result = run_gdalwarp(Path(args.input), out, args.size, args.threads, args.resampling)
    print(json.dumps(result))


def measure(worker: str, input_path: Path, size: int, args, workdir: Path,
            resampling: str) -> dict:
    """Run one worker in a subprocess; its result plus its own peak RSS (MiB)."""
    command = [sys.executable, __file__, "--worker", worker, "--input", str(input_path),
               "--size", str(size), "--threads", str(args.threads), "--chunk-px",
               str(args.chunk_px), "--workdir", str(workdir), "--resampling", resampling]
    log = workdir / f"{worker}_{size}.log"
    with open(log, "w+") as output:
        proc = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
    if proc.returncode:
        raise RuntimeError(f"{worker} at {size} px failed:\n{text}")
    result = json.loads(text.strip().splitlines()[-1])
    result["peak_rss_mib"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    result["load_average_1min"] = os.getloadavg()[0]
    result["megapixels_per_s"] = result["pixels"] / 1e6 / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk-px", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/align.json"))
    parser.add_argument("--worker", choices=["floodkd", "rasterio", "gdalwarp"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--resampling", default="bilinear", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        child(args)
        return
    sizes = sorted(args.sizes)
    if (sizes[-1] / sizes[0]) ** 2 < 16:
        parser.error("the sizes must span at least 16x in area (e.g. 512 1024 2048)")
    workers = ["floodkd", "rasterio"] + (["gdalwarp"] if shutil.which("gdalwarp") else [])
    runs: dict[str, dict[str, dict]] = {w: {} for w in workers}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for size in sizes:
            input_path = workdir / f"radar_{size}.tif"
            make_input(input_path, size)
            resampling = "bilinear"
            for worker in workers:
                best = None
                for _ in range(args.repeats):
                    result = measure(worker, input_path, size, args, workdir, resampling)
                    resampling = result.get("resampling", resampling)
                    if best is None or result["seconds"] < best["seconds"]:
                        best = {**result, "peak_rss_mib": max(result["peak_rss_mib"],
                                                             (best or {}).get("peak_rss_mib", 0))}
                runs[worker][str(size)] = best
                print(f"{worker:9s} {size:5d} px: {best['megapixels_per_s']:7.2f} MP/s, "
                      f"peak RSS {best['peak_rss_mib']:7.1f} MiB", flush=True)
    small, large = str(sizes[0]), str(sizes[-1])
    summary = {
        "throughput_ratio_vs_rasterio": {
            s: runs["floodkd"][s]["megapixels_per_s"] / runs["rasterio"][s]["megapixels_per_s"]
            for s in runs["floodkd"]},
        "cpu_ratio_vs_rasterio": {
            s: runs["rasterio"][s]["cpu_s"] / runs["floodkd"][s]["cpu_s"] for s in runs["floodkd"]},
        "memory_growth_ratio": runs["floodkd"][large]["peak_rss_mib"]
        / runs["floodkd"][small]["peak_rss_mib"],
        "rasterio_memory_growth_ratio": runs["rasterio"][large]["peak_rss_mib"]
        / runs["rasterio"][small]["peak_rss_mib"],
        "area_growth": (sizes[-1] / sizes[0]) ** 2,
        "targets": {"throughput_ratio_vs_rasterio": ">= 0.9", "memory_growth_ratio": "<= 1.5"},
    }
    report = {"benchmark": "align radar regridding", "threads": args.threads,
              "chunk_px": args.chunk_px, "repeats": args.repeats, "sizes_px": sizes,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "python": platform.python_version()},
              "runs": runs, **summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
