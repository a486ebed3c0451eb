"""The flood student: a light CNN encoder-decoder conditioned on a gauge-history encoder.

It reads terrain plus whatever of optical, gauge water level and climate forcing exists.
Each modality carries a presence flag that the network sees; modality dropout during
training teaches it to work with any subset.

Its flood probability is non-decreasing in the water level at every pixel by construction,
so it extrapolates to levels above any it trained on (a 100-year surge in 2050): the
network never sees the absolute water level. It predicts per pixel an effective flooding
threshold (the level at which the sea reaches it: its ground, or behind a dike the crest),
as an offset from an anchor, and a spread. The anchor is the level at which the region's
radar archive saw the pixel flood (``waterline_m``, ``floodkd.reference.waterline``) where
the archive tells it, the higher of that and the DEM where the archive never saw the pixel
wet, and the DEM where there is no archive: a global DEM reads mangrove canopies and
buildings metres above the ground, the archive sees the tide come in under them. A third
output is a level-free logit for water from other causes (rain ponding, water the optical
pixels show); then P(water) = 1 - (1 - sigmoid((level - threshold) / spread)) *
(1 - sigmoid(other)). Behind a registered defence (the ``protected`` channel) the sea's term
is also gated by the level's overtopping of the defence's crest, so such land stays out of
the sea's reach at every level below the crest, a level the record may never have reached.
The gauge histories enter relative to each gauge's current level (rising or falling, how
long the surge has lasted), which a uniform shift leaves unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from floodkd.models.channels import (
    MODALITIES,
    MODALITY_CHANNELS,
    NORMALISATION,
    STUDENT_CHANNELS,
)
from floodkd.settings import Settings

__all__ = ["StudentConfig", "FloodStudent", "TemporalEncoder", "Projection",
           "sinusoidal_encoding", "flood_logit"]

NUM_CLASSES = 2  # dry, water
GAUGE_INDEX = MODALITIES.index("gauge")
LEVEL_INDEX = STUDENT_CHANNELS.index("water_level_m")
ELEVATION_INDEX = STUDENT_CHANNELS.index("elevation_m")
CREST_INDEX = STUDENT_CHANNELS.index("protection_level_m")
PROTECTED_INDEX = STUDENT_CHANNELS.index("protected")
WATERLINE_INDEX = STUDENT_CHANNELS.index("waterline_m")
WATERLINE_KNOWN_INDEX = STUDENT_CHANNELS.index("waterline_known")
WATERLINE_ABOVE_INDEX = STUDENT_CHANNELS.index("waterline_above")
# channels that carry the absolute water level: the network's trunk never sees them
LEVEL_CHANNELS = (LEVEL_INDEX, STUDENT_CHANNELS.index("water_depth_m"))
THRESHOLD_SCALE_M = 2.0  # one unit of the threshold head, in metres above its anchor
MIN_SPREAD_M = 0.05  # the level's transition from dry to wet is never sharper than this
OTHER_WATER_BIAS = -4.0  # water without the sea's help is rare until training says otherwise
# the sea enters protected land over a width of levels about a crest survey's error (0.1 m)
OVERTOPPING_SPREAD_M = 0.1


@dataclass(frozen=True)
class StudentConfig(Settings):
    """Size of the student. Defaults give ~0.1 M parameters."""

    in_channels: int = len(STUDENT_CHANNELS)
    base_width: int = 16
    depth: int = 3
    history_hours: int = 72
    temporal_dim: int = 32
    temporal_heads: int = 4
    dropout: float = 0.1
    modality_dropout: float = 0.3
    # False: the waterline channels are ignored (the labels-only reference, which must not
    # learn from the teacher, and the waterline is the teacher's map of the archive)
    reads_waterline: bool = True


    @property
    def feature_channels(self) -> int:
        """Width of the bottleneck features returned for distillation."""
        return self.base_width * 2 ** (self.depth - 1)


def sinusoidal_encoding(hours_before: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sin/cos encoding of time offsets (..., ) in hours -> (..., dim)."""
    half = dim // 2
    # Periods from 1 h to ~10000 h cover tides (12.4 h), days and the spring-neap cycle.
    frequencies = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=hours_before.device)
        / max(half, 1)
    )
    angles = hours_before.float().unsqueeze(-1) * frequencies
    encoding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    return F.pad(encoding, (0, dim - 2 * half))


class TemporalEncoder(nn.Module):
    """Self-attention over each gauge's hourly history, pooled to one vector per sample.

    NaN hours are masked out of attention and pooling; gauges with no valid hour are
    left out of the mean over gauges. A sample with no valid gauge gets a zero vector
    and a 0 validity flag.
    """

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.dim = dim
        self.value_embedding = nn.Linear(1, dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)
        )
        self.norm2 = nn.LayerNorm(dim)
        self.level_scale_m = NORMALISATION["water_level_m"][1]

    def forward(self, history_m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """history_m (B, G, L) water level in metres, NaN missing, lag 0 oldest ->
        (pooled (B, dim), has_valid_gauge (B,) float).

        Each gauge's history is read relative to its latest valid hour, so adding the same
        height to a whole history changes nothing here."""
        batch, gauges, hours = history_m.shape
        if gauges == 0 or hours == 0:
            zeros = history_m.new_zeros(batch, self.dim)
            return zeros, history_m.new_zeros(batch)
        valid = torch.isfinite(history_m)  # (B, G, L)
        values = torch.where(valid, history_m, torch.zeros_like(history_m))
        hour = torch.arange(hours, device=history_m.device)
        latest = torch.where(valid, hour, -1).amax(-1, keepdim=True).clamp(min=0)
        current = torch.gather(values, -1, latest)
        values = (values - current) / self.level_scale_m * valid
        hours_before = torch.arange(hours - 1, -1, -1, device=history_m.device)
        tokens = self.value_embedding(values.reshape(batch * gauges, hours, 1))
        tokens = tokens + sinusoidal_encoding(hours_before, self.dim)

        valid_flat = valid.reshape(batch * gauges, hours)
        gauge_valid = valid_flat.any(dim=1)
        # A fully masked row makes softmax NaN: let empty gauges attend to everything and
        # drop them after pooling instead.
        padding = ~valid_flat & gauge_valid.unsqueeze(1)
        attended, _ = self.attention(tokens, tokens, tokens, key_padding_mask=padding,
                                     need_weights=False)
        tokens = self.norm1(tokens + attended)
        tokens = self.norm2(tokens + self.feed_forward(tokens))

        weights = valid_flat.float().unsqueeze(-1)
        per_gauge = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B*G, dim)
        per_gauge = per_gauge.reshape(batch, gauges, self.dim)
        gauge_weights = gauge_valid.reshape(batch, gauges, 1).float()
        pooled = (per_gauge * gauge_weights).sum(1) / gauge_weights.sum(1).clamp(min=1.0)
        return pooled, (gauge_weights.sum(dim=(1, 2)) > 0).float()


# The 3x3 convs repeat a map's edge pixel rather than pad with zeros: a zero border is a
# feature the data never has, and GroupNorm spreads it far into the tile (on a uniform input
# it is the only variance, so P varied by 0.02 across a tile; repeated edges keep it uniform).
PADDING_MODE = "replicate"


def _conv(
    in_channels: int, out_channels: int, stride: int = 1, separable: bool = False
) -> nn.Sequential:
    """3x3 conv + GroupNorm + ReLU; ``separable`` splits it into depthwise and pointwise
    convs (about 5x fewer operations, used at the finest level where most pixels are)."""
    if separable:
        conv = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels,
                      bias=False, padding_mode=PADDING_MODE),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )
    else:
        conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False,
                         padding_mode=PADDING_MODE)
    # GroupNorm, not BatchNorm: MC dropout runs in train-like mode and must not touch
    # running statistics, and single-tile batches are common at inference.
    return nn.Sequential(
        conv,
        nn.GroupNorm(min(4, out_channels), out_channels),
        nn.ReLU(),  # GELU's erf is several times slower on CPU at full tile sizes
    )


class FloodStudent(nn.Module):
    """U-Net-like CNN whose bottleneck is FiLM-conditioned on gauges and presence flags.

    Nothing runs at full resolution: a 3x3 stride-2 stem halves the grid and the logits are
    upsampled bilinearly at the end, so every conv works on 1/4 of the pixels or fewer,
    which keeps it several times faster than the teacher per pixel on a CPU. (A 2x2
    stride-2 stem with a pixel-shuffle head was faster still but gave each pixel of a 2x2
    cell its own weights: a checkerboard in every probability map.)
    """

    config_class = StudentConfig

    def __init__(self, config: StudentConfig):
        super().__init__()
        if config.depth < 1:
            raise ValueError(f"student depth must be >= 1, got {config.depth}")
        self.config = config
        widths = [config.base_width * 2**level for level in range(config.depth)]

        # Overlapping 3x3 windows: every output cell sees its neighbours alike (no 2x2 phase).
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, widths[0], 3, stride=2, padding=1, bias=False,
                      padding_mode=PADDING_MODE),
            nn.GroupNorm(min(4, widths[0]), widths[0]),
            nn.ReLU(),
        )
        # Presence flags enter as a learned bias on the stem (constant presence planes,
        # without building them at full resolution) and again through FiLM.
        self.presence_bias = nn.Linear(len(MODALITIES), widths[0])
        self.encoder = nn.ModuleList([_conv(widths[0], widths[0], separable=True)])
        for level in range(1, config.depth):
            self.encoder.append(
                nn.Sequential(_conv(widths[level - 1], widths[level], stride=2),
                              _conv(widths[level], widths[level]))
            )

        self.temporal = TemporalEncoder(config.temporal_dim, config.temporal_heads, config.dropout)
        conditioning = config.temporal_dim + 1 + len(MODALITIES)  # gauges, validity, presence
        self.film = nn.Linear(conditioning, 2 * widths[-1])
        # Start as the identity transform so early training is not disturbed by FiLM.
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

        upward = range(config.depth - 1, 0, -1)
        self.reduce = nn.ModuleList(nn.Conv2d(widths[lv], widths[lv - 1], 1) for lv in upward)
        self.decoder = nn.ModuleList(
            _conv(widths[lv - 1], widths[lv - 1], separable=lv == 1) for lv in upward
        )
        # per pixel: flooding threshold (above the ground), spread, other water's logit
        self.head = nn.Conv2d(widths[0], 3, 1)
        # the level assumed where no gauge is present (learned: a typical level)
        self.absent_level_m = nn.Parameter(torch.zeros(()))
        trunk_channels = torch.ones(config.in_channels)
        hidden = list(LEVEL_CHANNELS) + ([] if config.reads_waterline else [
            WATERLINE_INDEX, WATERLINE_KNOWN_INDEX, WATERLINE_ABOVE_INDEX])
        trunk_channels[[i for i in hidden if i < config.in_channels]] = 0.0
        self.register_buffer("trunk_channels", trunk_channels, persistent=False)
        level_offset, level_scale = NORMALISATION["water_level_m"]
        elevation_offset, elevation_scale = NORMALISATION["elevation_m"]
        self.level_m = (level_offset, level_scale)
        self.elevation_m = (elevation_offset, elevation_scale)

        channel_modality = torch.full((config.in_channels,), -1, dtype=torch.long)
        for m_index, modality in enumerate(MODALITIES):
            for name in MODALITY_CHANNELS[modality]:
                if name in STUDENT_CHANNELS and STUDENT_CHANNELS.index(name) < config.in_channels:
                    channel_modality[STUDENT_CHANNELS.index(name)] = m_index
        self.register_buffer("channel_modality", channel_modality, persistent=False)

    def forward(
        self,
        image: torch.Tensor,
        presence: torch.Tensor,
        gauge_history: torch.Tensor,
        mc_dropout: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image (B, C, H, W) normalised channels; presence (B, 3) float in MODALITIES order;
        gauge_history (B, G, L) water level in metres, NaN missing (G may be 0).
        ``mc_dropout`` keeps dropout active in eval mode (modality dropout stays off).
        H and W must be multiples of 2^depth.
        Returns (logits (B, 2, H, W), features (B, F, H/2^depth, W/2^depth))."""
        _, channels, height, width = image.shape
        stride = 2**self.config.depth
        if channels != self.config.in_channels:
            raise ValueError(f"student expects {self.config.in_channels} channels, got {channels}")
        if height % stride or width % stride:
            raise ValueError(f"tile {height}x{width} is not a multiple of {stride}")
        presence = presence.to(image.dtype)
        if self.training and self.config.modality_dropout > 0:
            keep = torch.rand_like(presence) >= self.config.modality_dropout
            presence = presence * keep
        gauge_history = _blank_absent_gauges(presence, gauge_history)
        gauge_present = presence[:, GAUGE_INDEX, None, None] > 0
        level_m = torch.where(gauge_present, image[:, LEVEL_INDEX] * self.level_m[1]
                              + self.level_m[0], self.absent_level_m)
        elevation_m = image[:, ELEVATION_INDEX] * self.elevation_m[1] + self.elevation_m[0]
        crest_m = torch.where(image[:, PROTECTED_INDEX] > 0.5, image[:, CREST_INDEX]
                              * self.elevation_m[1] + self.elevation_m[0], float("nan"))
        anchor_m = elevation_m
        if self.config.reads_waterline:
            waterline_m = image[:, WATERLINE_INDEX] * self.level_m[1] + self.level_m[0]
            waterline_m = torch.where(image[:, WATERLINE_ABOVE_INDEX] > 0.5,
                                      torch.maximum(waterline_m, elevation_m), waterline_m)
            anchor_m = torch.where(image[:, WATERLINE_KNOWN_INDEX] > 0.5, waterline_m,
                                   elevation_m)
        # channels-last (NHWC) is the layout oneDNN's CPU convolutions run fastest on: 27%
        # less inference and 15% less training time per tile here, with the same values
        # (to 1e-4 in the logits). Only now: the planes read above are contiguous before it.
        image = (image * (self._channel_mask(presence) * self.trunk_channels[:, None, None])
                 ).contiguous(memory_format=torch.channels_last)

        x = self.stem(image)
        x = x + self.presence_bias(presence)[:, :, None, None]
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)

        gauge_vector, gauge_valid = self.temporal(gauge_history)
        gauge_valid = gauge_valid * presence[:, GAUGE_INDEX]
        gauge_vector = gauge_vector * gauge_valid.unsqueeze(1)
        gamma, beta = self.film(torch.cat([gauge_vector, gauge_valid[:, None], presence], 1)).chunk(
            2, dim=1
        )
        x = x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        dropout_on = self.training or mc_dropout
        x = F.dropout2d(x, self.config.dropout, training=dropout_on)
        features = x

        decoder = zip(self.reduce, self.decoder, reversed(skips[:-1]), strict=True)
        for reduce, decode, skip in decoder:
            x = F.interpolate(reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decode(x + skip)
            x = F.dropout2d(x, self.config.dropout, training=dropout_on)
        head = F.interpolate(self.head(x), size=(height, width), mode="bilinear",
                             align_corners=False)
        threshold_m = anchor_m + THRESHOLD_SCALE_M * head[:, 0]
        spread_m = F.softplus(head[:, 1]) * 0.5 + MIN_SPREAD_M
        water = flood_logit(level_m, threshold_m, spread_m, head[:, 2] + OTHER_WATER_BIAS,
                            crest_m)
        logits = torch.stack([torch.zeros_like(water), water], dim=1)
        return logits, features

    def _channel_mask(self, presence: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, 1): 1 for terrain and present modalities, 0 for absent ones."""
        always = torch.ones(presence.shape[0], 1, dtype=presence.dtype, device=presence.device)
        table = torch.cat([presence, always], dim=1)  # index -1 -> the always-present column
        return table[:, self.channel_modality][:, :, None, None]


def flood_logit(level_m: torch.Tensor, threshold_m: torch.Tensor, spread_m: torch.Tensor,
                other_logit: torch.Tensor, crest_m: torch.Tensor | None = None) -> torch.Tensor:
    """logit of P(water) = 1 - (1 - sea) * (1 - sigmoid(other)), computed in log space, where
    sea = sigmoid((level - threshold) / spread), times sigmoid((level - crest) /
    OVERTOPPING_SPREAD_M) where ``crest_m`` is not NaN (a defence protects the pixel).
    Non-decreasing in ``level_m`` for a positive spread (a product of non-decreasing
    positive terms); log P(dry) is kept below -1e-6 (P(water) >= ~1e-6), so the logit stays
    finite."""
    rise = (level_m - threshold_m) / spread_m
    sea_dry = -F.softplus(rise)  # log(1 - sigmoid(rise))
    if crest_m is not None:
        # on the protected pixels alone: most pixels of most regions are not
        at = torch.isfinite(crest_m).nonzero(as_tuple=True)
        overtopping = (level_m[at] - crest_m[at]) / OVERTOPPING_SPREAD_M
        # log(1 - s(rise) s(over)) = log((1 - s(rise)) + s(rise) (1 - s(over)))
        gated = torch.logaddexp(sea_dry[at], -F.softplus(-rise[at]) - F.softplus(overtopping))
        sea_dry = sea_dry.index_put(at, gated)
    log_dry = sea_dry - F.softplus(other_logit)
    log_dry = log_dry.clamp(max=-1e-6)
    return torch.log(-torch.expm1(log_dry)) - log_dry


def _blank_absent_gauges(presence: torch.Tensor, gauge_history: torch.Tensor) -> torch.Tensor:
    """Set the gauge history to NaN (missing) for samples whose gauge modality is absent."""
    gauge_history = gauge_history.to(presence.dtype)
    absent = presence[:, GAUGE_INDEX] <= 0
    return torch.where(absent[:, None, None], float("nan"), gauge_history)


class Projection(nn.Module):
    """Per-pixel MLP + LayerNorm mapping student features to the teacher's feature width."""

    def __init__(self, student_dim: int, teacher_dim: int, hidden_dim: int | None = None):
        super().__init__()
        hidden = hidden_dim or max(student_dim, teacher_dim)
        self.mlp = nn.Sequential(
            nn.Linear(student_dim, hidden), nn.GELU(), nn.Linear(hidden, teacher_dim)
        )
        self.norm = nn.LayerNorm(teacher_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, student_dim, h, w) -> (B, teacher_dim, h, w)."""
        channels_last = features.permute(0, 2, 3, 1)
        return self.norm(self.mlp(channels_last)).permute(0, 3, 1, 2)
