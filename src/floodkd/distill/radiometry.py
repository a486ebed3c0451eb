"""Radiometric randomisation of the teacher's training tiles.

One region's passes share one sensor, one calibration, one preprocessing chain and a few
incidence angles; another region's radar differs in all of them. Each training tile (one
pass over one place) is therefore redrawn as another Sentinel-1 product of the same scene
could show it, so that the teacher learns what water does to radar, not the source region's
exact levels. Every range is a physical one (sources in docs/radar-physics.md):

- incidence angle: a pass from another relative orbit sees the scene up to 8 deg steeper
  or shallower (IW spans 29-46 deg); land changes by -0.05..-0.25 dB/deg (volume to surface
  scattering), open water by -0.3..-0.6 dB/deg (CMOD5.N between 30 and 45 deg);
- wind: the water may feel up to 6 m/s more wind than in the source pass (less shelter, a
  windier day): VV rises 1.2 dB per m/s (CMOD5.N between 2 and 10 m/s), VH 0.58 dB per m/s
  (C-2PO);
- soil moisture: the land of another day or place is drier or wetter (after the rain that
  comes with floods): -1.5..+2.5 dB, within C-band's 5-8 dB dry-to-wet range over land;
- thermal noise: products made without noise removal carry the noise floor
  (NESZ -26..-22 dB), which lifts dark water, VH most;
- speckle: the effective number of looks differs between products (further speckle down
  to ~2.5 looks; or a 3x3 multilook / boxcar filter as common workflows apply);
- calibration: absolute calibration within +-1 dB and sigma0 versus gamma0 (+0.6..+1.4 dB
  over the IW swath) shift both channels; VH moves against VV by up to +-1.5 dB
  (cross-polar calibration, depolarisation that differs between crops and canopies).

The redrawn tile is held at the backscatter floor, as teacher_image holds every input.
Its pass's land level (the reference of the land-relative channels) is redrawn with it, as
what the redrawing does to land: the incidence, soil-moisture, noise and calibration changes
move it, wind does not. (How speckle moves a median of dB values, a few tenths of a dB, is
left out.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from floodkd.models.channels import BACKSCATTER_FLOOR_DB, NORMALISATION, TEACHER_CHANNELS

__all__ = ["randomise_radiometry"]

INCIDENCE_SHIFT_DEG = 8.0
LAND_SLOPE_DB_PER_DEG = (-0.25, -0.05)
WATER_SLOPE_DB_PER_DEG = (-0.6, -0.3)
WIND_GAIN_M_S = (0.0, 6.0)
WIND_DB_PER_M_S = (1.2, 0.58)  # (VV, VH)
SOIL_MOISTURE_DB = (-1.5, 2.5)
NESZ_DB = (-26.0, -22.0)
NOISE_KEPT_PROBABILITY = 0.5
ENL = 4.4  # Sentinel-1 IW GRDH, the looks the training tiles already have
EXTRA_LOOKS = (4.0, 20.0)  # a further gamma speckle of these looks: 4.4 -> 2.1..3.6 looks
CALIBRATION_DB = (-1.0, 1.5)
VH_GAP_DB = (-1.5, 1.5)
WATER, NODATA = 1, 255


def _uniform(low: float, high: float, size: int, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(size, 1, 1, device=device)


def _gamma(looks: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Unit-mean gamma speckle of ``looks`` (B, 1, 1) looks, drawn for (B, H, W)."""
    looks = looks.expand(shape)
    return torch.distributions.Gamma(looks, looks).sample()


def randomise_radiometry(image: torch.Tensor, label: torch.Tensor, valid: torch.Tensor,
                         land_level_db: torch.Tensor) -> torch.Tensor:
    """Redraw a batch of teacher images (B, C, H, W, normalised) as other products would show
    them. ``label`` (B, H, W: 0 dry, 1 water, 255 unknown) says which changes a pixel gets
    (slope, wind or soil moisture); ``valid`` (B, H, W) marks pixels with backscatter (the
    rest stay 0); ``land_level_db`` (B, 2) is each tile's pass's land level (VV, VH), which
    moves as land does. Uses torch's RNG."""
    batch, device = image.shape[0], image.device
    index = {name: i for i, name in enumerate(TEACHER_CHANNELS)}
    (vv_offset, vv_scale), (vh_offset, vh_scale) = NORMALISATION["vv_db"], NORMALISATION["vh_db"]
    db = torch.stack([image[:, index["vv_db"]].float() * vv_scale + vv_offset,
                      image[:, index["vh_db"]].float() * vh_scale + vh_offset], 1)

    shift = _uniform(-INCIDENCE_SHIFT_DEG, INCIDENCE_SHIFT_DEG, batch, device)
    land = _uniform(*LAND_SLOPE_DB_PER_DEG, batch, device) * shift
    water = _uniform(*WATER_SLOPE_DB_PER_DEG, batch, device) * shift
    wind = _uniform(*WIND_GAIN_M_S, batch, device)
    moisture = _uniform(*SOIL_MOISTURE_DB, batch, device)
    change = []
    for gain in WIND_DB_PER_M_S:
        on_water, on_land = water + gain * wind, land + moisture
        # unlabelled pixels may be either: they get the mean of the two changes
        change.append(torch.where(label == WATER, on_water, torch.where(
            label == NODATA, (on_land + on_water) / 2, on_land)))
    power = 10.0 ** ((db + torch.stack(change, 1)) / 10.0)
    level = land_level_db.float().view(batch, 2, 1, 1)
    level_power = 10.0 ** ((level + (land + moisture).unsqueeze(1)) / 10.0)

    kept = torch.rand(batch, 1, 1, device=device) < NOISE_KEPT_PROBABILITY
    noise = 10.0 ** (_uniform(*NESZ_DB, batch, device) / 10.0) * kept
    level_power = level_power + noise.unsqueeze(1)  # the noise's mean; speckle averages out
    looks = torch.full((batch, 1, 1), ENL, device=device)
    power = power + noise.unsqueeze(1) * torch.stack(
        [_gamma(looks, label.shape), _gamma(looks, label.shape)], 1)

    choice = torch.randint(0, 3, (batch,), device=device)  # as is, more speckle, multilooked
    extra = _uniform(*EXTRA_LOOKS, batch, device)
    speckled = power * torch.stack([_gamma(extra, label.shape), _gamma(extra, label.shape)], 1)
    mask = valid.unsqueeze(1).float()
    # average valid pixels only, so no-data (0 power) does not darken the swath edge
    pooled = (F.avg_pool2d(power * mask, 3, 1, 1, count_include_pad=False)
              / F.avg_pool2d(mask, 3, 1, 1, count_include_pad=False).clamp_min(1e-6))
    pick = choice.view(-1, 1, 1, 1)
    power = torch.where(pick == 1, speckled, torch.where(pick == 2, pooled, power))

    calibration = _uniform(*CALIBRATION_DB, batch, device).unsqueeze(1)
    calibration = calibration + torch.cat([torch.zeros(batch, 1, 1, 1, device=device),
                                           _uniform(*VH_GAP_DB, batch, device).unsqueeze(1)], 1)
    db = 10.0 * torch.log10(power.clamp_min(1e-4)) + calibration
    level = 10.0 * torch.log10(level_power) + calibration
    # as teacher_image holds every product's input (and pass_land_level_db its pixels)
    db, level = db.clamp_min(BACKSCATTER_FLOOR_DB), level.clamp_min(BACKSCATTER_FLOOR_DB)
    raw = {"vv_db": db[:, 0], "vh_db": db[:, 1], "vv_minus_vh_db": db[:, 0] - db[:, 1],
           "vv_minus_land_db": db[:, 0] - level[:, 0], "vh_minus_land_db": db[:, 1] - level[:, 1]}
    out = torch.stack([(raw[name] - NORMALISATION[name][0]) / NORMALISATION[name][1]
                       for name in TEACHER_CHANNELS], 1)
    return torch.where(valid.unsqueeze(1), out, torch.zeros_like(out)).to(image.dtype)
