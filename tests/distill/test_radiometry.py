"""Radiometric randomisation of the teacher's tiles: physical shifts, no-data untouched."""

from __future__ import annotations

import numpy as np
import torch

from floodkd.distill import radiometry
from floodkd.distill.radiometry import randomise_radiometry
from floodkd.models.channels import (
    BACKSCATTER_FLOOR_DB,
    NORMALISATION,
    TEACHER_CHANNELS,
    teacher_image,
)

BATCH = 256
LAND_LEVEL_DB = (-10.0, -17.0)


def _batch():
    vv = np.full((16, 16), -10.0, np.float32)
    vh = np.full((16, 16), -17.0, np.float32)
    vv[:8], vh[:8] = -22.0, -29.0  # water in the top half
    image = torch.from_numpy(teacher_image(vv, vh, LAND_LEVEL_DB)).repeat(BATCH, 1, 1, 1)
    label = torch.zeros(BATCH, 16, 16, dtype=torch.uint8)
    label[:, :8] = 1
    valid = torch.ones(BATCH, 16, 16, dtype=torch.bool)
    valid[:, :, :2] = False  # a swath edge
    image[:, :, :, :2] = 0.0
    return image, label, valid, torch.tensor(LAND_LEVEL_DB).repeat(BATCH, 1)


def _db(image, channel):
    offset, scale = NORMALISATION[channel]
    return image[:, TEACHER_CHANNELS.index(channel)] * scale + offset


def test_same_seed_same_draw_and_no_data_stays_zero():
    image, label, valid, level = _batch()
    torch.manual_seed(3)
    first = randomise_radiometry(image, label, valid, level)
    torch.manual_seed(3)
    assert torch.equal(first, randomise_radiometry(image, label, valid, level))
    assert (first[:, :, :, :2] == 0).all()
    assert first.shape == image.shape and first.dtype == image.dtype


def test_every_tile_is_another_product_yet_water_stays_darker_than_land():
    image, label, valid, level = _batch()
    torch.manual_seed(0)
    out = randomise_radiometry(image, label, valid, level)
    vv, vh = _db(out, "vv_db"), _db(out, "vh_db")
    assert torch.allclose(_db(out, "vv_minus_vh_db"), vv - vh, atol=1e-4)
    land = vv[:, 8:, 2:].median(-1).values.median(-1).values
    water = vv[:, :8, 2:].median(-1).values.median(-1).values
    assert land.std() > 1.0  # calibration, incidence and soil moisture move whole tiles
    assert land.min() > -14.0 and land.max() < -4.0
    assert (water < land - 2).float().mean() > 0.95
    assert 0.1 < (water > -17.0).float().mean() < 0.6  # wind roughens the water of some tiles


def test_the_land_level_moves_with_the_land_so_land_stays_level_with_it():
    image, label, valid, level = _batch()
    torch.manual_seed(4)
    out = randomise_radiometry(image, label, valid, level)
    for channel, absolute in (("vv_minus_land_db", "vv_db"), ("vh_minus_land_db", "vh_db")):
        relative = _db(out, channel)[:, 8:, 2:].median(-1).values.median(-1).values
        moved = _db(out, absolute)[:, 8:, 2:].median(-1).values.median(-1).values
        assert moved.std() > 1.0  # the land itself moves from product to product ...
        assert relative.std() < 0.3  # ... and its level with it (a tile's median of a few
        assert relative.abs().max() < 1.5  # hundred speckled pixels is itself off by < 1 dB)
    water = _db(out, "vv_minus_land_db")[:, :8, 2:].median(-1).values.median(-1).values
    assert (water < -2.0).float().mean() > 0.95  # water stays well below its land


def test_a_product_without_noise_removal_lifts_dark_water_most(monkeypatch):
    image, label, valid, level = _batch()
    means = {}
    for kept in (0.0, 1.0):
        monkeypatch.setattr(radiometry, "NOISE_KEPT_PROBABILITY", kept)
        torch.manual_seed(1)
        vh = _db(randomise_radiometry(image, label, valid, level), "vh_db")
        means[kept] = (vh[:, :8, 2:].mean(), vh[:, 8:, 2:].mean())
    water_rise, land_rise = (means[1.0][i] - means[0.0][i] for i in (0, 1))
    assert water_rise > 3.0 and land_rise < 1.0


def test_redrawn_tiles_stay_at_or_above_the_backscatter_floor():
    image, label, valid, level = _batch()
    image[:, 1, :8, 2:] = (BACKSCATTER_FLOOR_DB - NORMALISATION["vh_db"][0]) / 10.0
    torch.manual_seed(2)
    out = randomise_radiometry(image, label, valid, level)
    for channel in ("vv_db", "vh_db"):
        assert _db(out, channel)[:, :, 2:].min() >= BACKSCATTER_FLOOR_DB - 1e-4
    # water held at the floor in VH is lifted by a product that keeps the noise
    assert (_db(out, "vh_db")[:, :8, 2:] > BACKSCATTER_FLOOR_DB + 3).any()
