"""The radar teacher: a Hugging Face Vision Transformer with a per-pixel segmentation head."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from floodkd.errors import InputError
from floodkd.models.channels import TEACHER_CHANNELS
from floodkd.settings import Settings

if TYPE_CHECKING:  # transformers costs seconds to import: only a teacher being built pays
    from transformers import ViTConfig, ViTModel

__all__ = ["TeacherConfig", "RadarTeacher", "RadarViT", "adapt_patch_kernel"]

NUM_CLASSES = 2  # dry, water


@dataclass(frozen=True)
class TeacherConfig(Settings):
    """Size of the teacher ViT. The defaults (~0.4 M parameters) train on a CPU in minutes."""

    image_size: int = 64
    patch_size: int = 4  # 40 m tokens at 10 m pixels; 8 px validated worse (docs/radar-physics.md)
    hidden_size: int = 96
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 192
    dropout: float = 0.1
    members: int = 1  # ViTs whose P(water) is averaged; training sets it (teacher_members)


    def vit_config(self) -> ViTConfig:
        from transformers import ViTConfig

        return ViTConfig(
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=len(TEACHER_CHANNELS),
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_dropout_prob=self.dropout,
            attention_probs_dropout_prob=self.dropout,
            attn_implementation="sdpa",  # fused attention; torch >= 2.2 always has it
        )


def adapt_patch_kernel(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """Turn a patch-embedding kernel (hidden, C_in, p, p) into one for ``channels`` inputs.

    Pretrained kernels see RGB; radar channels have no colour correspondence, so every new
    channel gets the mean kernel, scaled so the summed response keeps its magnitude.
    """
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, channels, 1, 1) * (weight.shape[1] / channels)


class RadarViT(nn.Module):
    """One ViT encoder over radar tiles (TEACHER_CHANNELS: VV, VH, VV-VH and VV, VH against
    the pass's land level) and a conv head that upsamples patch tokens.

    ``forward`` returns per-pixel two-class logits and the patch-token feature map used
    for feature distillation.
    """

    config_class = TeacherConfig

    def __init__(self, config: TeacherConfig, pretrained_dir: str | Path | None = None):
        super().__init__()
        if pretrained_dir is None:
            from transformers import ViTModel

            self.vit = ViTModel(config.vit_config(), add_pooling_layer=False)
        else:
            self.vit, config = _load_pretrained(Path(pretrained_dir), config)
        self.config = config
        hidden, patch = config.hidden_size, config.patch_size
        # A 3x3 conv lets each patch see its neighbours before the pixel shuffle, which
        # smooths the blocky edges a per-token linear head would give.
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Dropout2d(config.dropout),
            nn.Conv2d(hidden, NUM_CLASSES * patch * patch, kernel_size=1),
            nn.PixelShuffle(patch),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, len(TEACHER_CHANNELS), H, W), H and W multiples of patch_size ->
        (logits (B, 2, H, W), features (B, hidden, H/p, W/p))."""
        batch, channels, height, width = x.shape
        patch = self.config.patch_size
        if channels != len(TEACHER_CHANNELS):
            raise ValueError(f"teacher expects {len(TEACHER_CHANNELS)} channels, got {channels}")
        if height % patch or width % patch:
            raise ValueError(f"tile {height}x{width} is not a multiple of patch size {patch}")
        tokens = self.vit(pixel_values=x, interpolate_pos_encoding=True).last_hidden_state
        patch_tokens = tokens[:, 1:, :]  # drop [CLS]
        features = patch_tokens.transpose(1, 2).reshape(batch, -1, height // patch, width // patch)
        return self.head(features), features


class RadarTeacher(nn.Module):
    """The radar teacher: ``config.members`` RadarViTs trained apart.

    ``forward`` returns the log of the members' mean P(dry), P(water) as logits (softmax
    gives the mean back, argmax its decision), and the members' feature maps stacked
    along channels (``feature_channels``) for feature distillation. One member is returned
    as it is.
    """

    config_class = TeacherConfig

    def __init__(self, config: TeacherConfig, pretrained_dir: str | Path | None = None,
                 members: list[RadarViT] | None = None):
        super().__init__()
        if members is None:
            members = [RadarViT(config, pretrained_dir) for _ in range(config.members)]
        # a pretrained ViT sets the sizes; the count is this teacher's
        self.config = replace(members[0].config, members=len(members))
        self.members = nn.ModuleList(members)

    @property
    def feature_channels(self) -> int:
        return self.config.hidden_size * len(self.members)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(self.members) == 1:
            return self.members[0](x)
        outputs = [member(x) for member in self.members]
        probability = torch.stack([torch.softmax(logits.float(), 1) for logits, _ in outputs])
        logits = torch.log(probability.mean(0).clamp_min(torch.finfo(torch.float32).tiny))
        return logits, torch.cat([features for _, features in outputs], 1)


def _load_pretrained(directory: Path, config: TeacherConfig) -> tuple[ViTModel, TeacherConfig]:
    """Load a local pretrained ViT (never from the hub) and adapt it to the radar channels.

    The returned config takes the pretrained sizes, so a checkpoint of this teacher
    rebuilds the same architecture without the pretrained directory.
    """
    if not (directory / "config.json").is_file():
        raise InputError(
            directory,
            "no config.json of a pretrained ViT in this folder",
            "point the teacher's pretrained_dir at a folder written by save_pretrained, "
            "or leave it unset to train from scratch",
        )
    from transformers import ViTModel

    vit = ViTModel.from_pretrained(
        directory, local_files_only=True, add_pooling_layer=False, attn_implementation="sdpa"
    )
    embedding = vit.embeddings.patch_embeddings
    radar_channels = len(TEACHER_CHANNELS)
    # Pretrained kernels are for RGB (or another optical layout): always re-derive them.
    old = embedding.projection
    new = nn.Conv2d(radar_channels, old.out_channels, old.kernel_size, old.stride)
    with torch.no_grad():
        new.weight.copy_(adapt_patch_kernel(old.weight, radar_channels))
        new.bias.copy_(old.bias)
    embedding.projection = new
    embedding.num_channels = radar_channels
    vit.config.num_channels = radar_channels
    vc = vit.config
    adapted = TeacherConfig(
        image_size=_first(vc.image_size),
        patch_size=_first(vc.patch_size),
        hidden_size=int(vc.hidden_size),
        num_hidden_layers=int(vc.num_hidden_layers),
        num_attention_heads=int(vc.num_attention_heads),
        intermediate_size=int(vc.intermediate_size),
        dropout=config.dropout,
    )
    vc.hidden_dropout_prob = vc.attention_probs_dropout_prob = config.dropout
    for module in vit.modules():  # dropout rates are fixed at construction; apply ours
        if isinstance(module, nn.Dropout):
            module.p = config.dropout
    return vit, adapted


def _first(size: int | list[int] | tuple[int, ...]) -> int:
    """HF configs give sizes as an int or an (H, W) pair; ViT position grids are square."""
    return int(size) if isinstance(size, int) else int(size[0])
