"""Safetensors checkpoints round-trip and refuse mismatches."""

import json

import pytest
import torch

from floodkd.errors import InputError
from floodkd.models.channels import STUDENT_CHANNELS, TEACHER_CHANNELS
from floodkd.models.checkpoint import (
    load_checkpoint,
    save_checkpoint,
    tensors_sha256,
    weights_sha256,
)
from floodkd.models.student import FloodStudent, StudentConfig
from floodkd.models.teacher import RadarTeacher, TeacherConfig

TINY_TEACHER = TeacherConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                             num_attention_heads=2, intermediate_size=64)
SMALL_STUDENT = StudentConfig(base_width=8, depth=2, temporal_dim=16, temporal_heads=2)


def test_teacher_round_trip(tmp_path):
    torch.manual_seed(0)
    model = RadarTeacher(TINY_TEACHER).eval()
    path = tmp_path / "teacher" / "teacher.safetensors"
    json_path = save_checkpoint(model, path, {"epochs": 3, "regions": ["demo-source"]})
    assert json_path == tmp_path / "teacher" / "teacher.json"
    document = json.loads(json_path.read_text())
    assert document["config"] == TINY_TEACHER.to_dict()
    assert document["model_class"] == "RadarTeacher"
    loaded, meta = load_checkpoint(RadarTeacher, path)
    assert meta == {"epochs": 3, "regions": ["demo-source"]}
    assert not loaded.training
    x = torch.randn(1, len(TEACHER_CHANNELS), 48, 48)
    torch.testing.assert_close(loaded(x)[0], model(x)[0], rtol=0, atol=0)
    assert not list(path.parent.glob(".*.floodkd-*"))  # no temporary files left


def test_student_round_trip_with_shared_json(tmp_path):
    torch.manual_seed(0)
    model = FloodStudent(SMALL_STUDENT).eval()
    path = tmp_path / "member-0.safetensors"
    save_checkpoint(model, path, {"temperature": 1.7}, config_path=tmp_path / "student.json")
    loaded, meta = load_checkpoint(FloodStudent, path, config_path=tmp_path / "student.json")
    assert meta["temperature"] == 1.7
    inputs = (torch.randn(1, len(STUDENT_CHANNELS), 16, 16), torch.ones(1, 3),
              torch.randn(1, 2, 72))
    torch.testing.assert_close(loaded(*inputs)[0], model(*inputs)[0], rtol=0, atol=0)


def test_wrong_class_missing_file_and_mismatched_weights(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(FloodStudent(SMALL_STUDENT), path, {})
    with pytest.raises(InputError, match="holds a FloodStudent"):
        load_checkpoint(RadarTeacher, path)
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(FloodStudent, tmp_path / "absent.safetensors")
    # A config that disagrees with the stored weights fails loudly (strict loading).
    document = json.loads(path.with_suffix(".json").read_text())
    document["config"]["base_width"] = 16
    path.with_suffix(".json").write_text(json.dumps(document))
    with pytest.raises(InputError, match="do not match"):
        load_checkpoint(FloodStudent, path)


def test_unserialisable_meta_writes_nothing(tmp_path):
    path = tmp_path / "m.safetensors"
    with pytest.raises(TypeError):
        save_checkpoint(FloodStudent(SMALL_STUDENT), path, {"bad": object()})
    assert not list(tmp_path.iterdir())


def _reordered_copy(source, target) -> None:
    """``source`` rewritten with its header keys in reverse order: the same tensors, other
    bytes (what safetensors' random metadata order does between two saves)."""
    raw = source.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    text = json.dumps(dict(reversed(list(header.items()))), separators=(",", ":")).encode()
    text += b" " * (size - len(text))  # same header length: the data offsets stay valid
    target.write_bytes(raw[:8] + text + raw[8 + size:])


def test_hash_is_over_tensor_content_not_file_bytes(tmp_path):
    torch.manual_seed(0)
    model = FloodStudent(SMALL_STUDENT)
    first = tmp_path / "a.safetensors"
    save_checkpoint(model, first, {})
    second = tmp_path / "b.safetensors"
    _reordered_copy(first, second)
    assert first.read_bytes() != second.read_bytes()
    assert weights_sha256(first) == weights_sha256(second)
    recorded = json.loads(first.with_suffix(".json").read_text())["weights_sha256"]
    assert recorded == weights_sha256(first) == tensors_sha256(model.state_dict())
    save_checkpoint(model, tmp_path / "c.safetensors", {"other": "meta"})  # a second save
    assert weights_sha256(tmp_path / "c.safetensors") == recorded


def test_hash_sees_names_dtypes_shapes_and_values():
    base = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros(2)}
    reference = tensors_sha256(base)
    assert tensors_sha256(dict(reversed(list(base.items())))) == reference  # order: no matter
    variants = [
        {"v": base["w"], "b": base["b"]},                          # a name
        {"w": base["w"].view(torch.int32), "b": base["b"]},         # a dtype, same bytes
        {"w": base["w"].reshape(3, 2), "b": base["b"]},             # a shape, same bytes
        {"w": base["w"] + 1e-6 * (base["w"] == 5), "b": base["b"]},  # one value
    ]
    assert len({reference, *map(tensors_sha256, variants)}) == 5


def test_weights_swapped_under_their_json_are_refused(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "member-0.safetensors"
    save_checkpoint(FloodStudent(SMALL_STUDENT), path, {})
    document = path.with_suffix(".json").read_text()
    torch.manual_seed(1)
    save_checkpoint(FloodStudent(SMALL_STUDENT), path, {})  # other weights, same architecture
    path.with_suffix(".json").write_text(document)
    with pytest.raises(InputError, match="member-0.safetensors: its tensors are not the ones "
                       "member-0.json was written with"):
        load_checkpoint(FloodStudent, path)
