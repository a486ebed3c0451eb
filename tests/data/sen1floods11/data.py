"""Make the Sen1Floods11 test fixture: a 64 x 64 crop of chip Spain_7370579.

Run from the repository root with the chip's folder (not shipped; see README.md here):
    python tests/data/sen1floods11/data.py /work/shared/realdata
The crop keeps the files as the dataset distributes them (EPSG:4326, float32 VV/VH dB with NaN
nodata and no time tag; int16 labels -1/0/1 with no nodata declared), so the tests meet the
same frictions a real user does. Rows 192..256, columns 64..128 hold ~36% water.
"""

from __future__ import annotations

import sys
from pathlib import Path

import rasterio
from rasterio.windows import Window

CHIP = "Spain_7370579"
WINDOW = Window(col_off=64, row_off=192, width=64, height=64)


def crop(source: Path, target: Path) -> None:
    with rasterio.open(source) as src:
        profile = src.profile | {"width": WINDOW.width, "height": WINDOW.height,
                                 "transform": src.window_transform(WINDOW),
                                 "compress": "deflate", "tiled": False}
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(src.read(window=WINDOW))
            dst.descriptions = src.descriptions
            dst.update_tags(ATTRIBUTION="Sen1Floods11 (Bonafilia et al. 2020), Cloud to Street, "
                            "CC BY 4.0; cropped by floodkd")


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    here = Path(__file__).parent
    for kind in ("S1Hand", "LabelHand"):
        crop(folder / f"{CHIP}_{kind}.tif", here / f"{CHIP}_crop_{kind}.tif")
