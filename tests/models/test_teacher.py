"""The radar ViT teacher: shapes, pretrained loading, and that it learns."""

import pytest
import torch
from transformers import ViTConfig, ViTModel

from floodkd.errors import InputError
from floodkd.models.channels import TEACHER_CHANNELS
from floodkd.models.teacher import RadarTeacher, TeacherConfig, adapt_patch_kernel

C = len(TEACHER_CHANNELS)  # radar input channels
TINY = TeacherConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=64, dropout=0.1)


def test_default_size_is_small():
    count = sum(p.numel() for p in RadarTeacher(TeacherConfig()).parameters())
    assert 300_000 <= count <= 600_000


@pytest.mark.parametrize("size", [64, 96])
def test_logits_match_tile_size(size):
    torch.manual_seed(0)
    model = RadarTeacher(TeacherConfig()).eval()
    logits, features = model(torch.randn(2, C, size, size))
    assert logits.shape == (2, 2, size, size)
    patch = TeacherConfig().patch_size
    assert features.shape == (2, 96, size // patch, size // patch)
    assert torch.isfinite(logits).all()


def test_non_multiple_tile_is_rejected():
    with pytest.raises(ValueError, match="multiple of patch size"):
        RadarTeacher(TINY)(torch.randn(1, C, 30, 32))


def test_eval_is_deterministic_and_train_mode_gives_spread():
    torch.manual_seed(0)
    model = RadarTeacher(TINY)
    x = torch.randn(1, C, 32, 32)
    model.eval()
    torch.testing.assert_close(model(x)[0], model(x)[0])
    model.train()
    assert not torch.allclose(model(x)[0], model(x)[0])


def test_one_step_lowers_the_loss():
    torch.manual_seed(0)
    model = RadarTeacher(TINY).eval()  # no dropout noise: compare the same function
    x = torch.randn(4, C, 32, 32)
    labels = (x[:, 0] > 0).long()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = torch.nn.functional.cross_entropy(model(x)[0], labels)
    before.backward()
    optimiser.step()
    after = torch.nn.functional.cross_entropy(model(x)[0], labels)
    assert after < before


def test_adapt_patch_kernel_averages_rgb():
    weight = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).reshape(2, 3, 1, 1)
    adapted = adapt_patch_kernel(weight, 3)
    torch.testing.assert_close(adapted[:, :, 0, 0], torch.tensor([[1.0] * 3, [4.0] * 3]))


def test_pretrained_directory_is_loaded_and_adapted(tmp_path):
    torch.manual_seed(0)
    rgb = ViTModel(ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32,
                             num_hidden_layers=1, num_attention_heads=2, intermediate_size=64),
                   add_pooling_layer=False)
    rgb.save_pretrained(tmp_path)
    model = RadarTeacher(TeacherConfig(), pretrained_dir=tmp_path).eval()
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    expected = adapt_patch_kernel(rgb.embeddings.patch_embeddings.projection.weight, C)
    vit = model.members[0].vit
    torch.testing.assert_close(vit.embeddings.patch_embeddings.projection.weight, expected)
    logits, features = model(torch.randn(1, C, 64, 64))
    assert logits.shape == (1, 2, 64, 64) and features.shape == (1, 32, 8, 8)


def test_pretrained_directory_without_config_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="config.json"):
        RadarTeacher(TeacherConfig(), pretrained_dir=tmp_path)
