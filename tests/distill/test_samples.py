"""The calibration hold-out of a target region: whole spatial blocks, hidden from training."""

from __future__ import annotations

import numpy as np

from floodkd.distill.data import calibration_holdout, labelled_pixels, open_region, whole_blocks
from floodkd.distill.samples import target_samples, tile_area


def test_whole_blocks_covers_every_block_a_pixel_falls_in():
    mask = np.zeros((5, 7), dtype=bool)
    mask[0, 0] = mask[4, 6] = True
    blocks = whole_blocks(mask, 4)
    expected = np.zeros((5, 7), dtype=bool)
    expected[:4, :4] = True  # the block of (0, 0)
    expected[4:, 4:] = True  # the clipped corner block of (4, 6)
    assert np.array_equal(blocks, expected)


def test_the_calibration_area_is_whole_blocks_less_the_labels_kept_to_train(synthetic_region):
    region = open_region(synthetic_region.results_dir, synthetic_region.name,
                         ["label", "radar_present"])
    held_out = np.zeros(region.cube.sizes["time"], dtype=bool)
    pool_tiles = region.tiles[region.tiles["split"].isin(["train", "val"])]
    pool = tile_area(pool_tiles, (region.cube.sizes["y"], region.cube.sizes["x"]))
    labelled = labelled_pixels(region.cube, pool_tiles, ~held_out)
    samples = target_samples(region, held_out, calibration_fraction=0.3, block_px=8,
                             calibration_area_fraction=0.2)
    hidden = samples.calibration_pixels
    assert hidden.any() and not (hidden & ~pool).any()
    # every unlabelled pixel of a chosen block inside the pool is hidden ...
    blocks = whole_blocks(hidden, 8) & pool
    assert np.array_equal(hidden & ~labelled, blocks & ~labelled)
    # ... and the labels held out are those calibration_fraction chose, no more
    assert np.array_equal(hidden & labelled, calibration_holdout(labelled, 0.3, 8, 0))
