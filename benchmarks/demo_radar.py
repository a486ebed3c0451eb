"""The demo's radar by class: median VV / VH (dB) of true water and dry land over every pass.

Reads a demo folder written by ``floodkd demo`` (its s1 GeoTIFFs and the truth rasters kept
for evaluation) and writes benchmarks/results/demo_radar.json, so the demo's backscatter can
be set beside published levels or a real chip's (docs/radar-physics.md). It measures the
demo; nothing here changes it.

    .venv/bin/python benchmarks/demo_radar.py [--demo data/demo]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import rasterio

RESULTS = Path(__file__).parent / "results" / "demo_radar.json"
STAMP = re.compile(r"_(\d{8}T\d{6})_")


def region_stats(folder: Path) -> dict:
    """Medians and 5th/95th percentiles of VV, VH and VV-VH under truth water and dry land."""
    water, land = [], []
    for s1 in sorted((folder / "s1").glob("*.tif")):
        stamp = STAMP.search(s1.name).group(1)
        with rasterio.open(s1) as src:
            sigma0 = src.read(masked=True).filled(np.nan)
        with rasterio.open(folder / "truth" / f"inundation_{stamp}.tif") as src:
            truth = src.read(1)
        seen = np.isfinite(sigma0).all(0)
        water.append(sigma0[:, (truth == 1) & seen])
        land.append(sigma0[:, (truth == 0) & seen])
    out = {}
    for name, parts in (("water", water), ("land", land)):
        vv, vh = np.concatenate(parts, axis=1)
        out[name] = {band: [round(float(v), 2) for v in np.percentile(x, [5, 50, 95])]
                     for band, x in (("vv_db", vv), ("vh_db", vh), ("vv_minus_vh_db", vv - vh))}
    out["passes"] = len(water)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=Path("data/demo"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    regions = sorted(p for p in args.demo.iterdir() if (p / "s1").is_dir())
    if not regions:
        raise SystemExit(f"{args.demo}: no demo region with an s1 folder; run `floodkd demo`")
    result = {"demo": str(args.demo), "percentiles": [5, 50, 95],
              "regions": {p.name: region_stats(p) for p in regions}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    for name, stats in result["regions"].items():
        print(f"{name}: water VV/VH {stats['water']['vv_db'][1]}/{stats['water']['vh_db'][1]} dB,"
              f" land VV/VH {stats['land']['vv_db'][1]}/{stats['land']['vh_db'][1]} dB")


if __name__ == "__main__":
    main()
