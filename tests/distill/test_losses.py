"""Distillation loss terms and the temperature schedule."""

import math

import pytest
import torch
import torch.nn.functional as F

from floodkd.distill.losses import (
    DistillWeights,
    distillation_loss,
    feature_alignment,
    kd_kl,
    task_loss,
    temperature_at,
)


def _logits(seed, shape=(2, 2, 4, 4), scale=2.0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def test_kl_is_zero_for_equal_logits_and_grows_with_disagreement():
    teacher = _logits(0)
    assert kd_kl(teacher.clone(), teacher, 3.0).abs() < 1e-7
    noise = _logits(1)
    values = [float(kd_kl(teacher + s * noise, teacher, 1.0)) for s in (0.1, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False))


def test_kl_is_scaled_by_t_squared():
    student, teacher = _logits(0), _logits(1)
    t = 2.0
    plain = F.kl_div(F.log_softmax(student / t, 1), F.softmax(teacher / t, 1),
                     reduction="none").sum(1).mean()
    torch.testing.assert_close(kd_kl(student, teacher, t), plain * t**2)
    assert float(kd_kl(student, teacher, t) / plain) == pytest.approx(4.0)


def test_kl_mask_limits_pixels():
    student, teacher = _logits(0), _logits(1)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[:, 0, 0] = True
    changed = student.clone()
    changed[:, 1, 1:] += 10.0  # one class only, so the softmax changes; outside the mask
    assert not torch.isclose(kd_kl(student, teacher, 1.0), kd_kl(changed, teacher, 1.0))
    torch.testing.assert_close(kd_kl(student, teacher, 1.0, mask),
                               kd_kl(changed, teacher, 1.0, mask))


def test_kl_gradient_does_not_reach_teacher():
    student = _logits(0).requires_grad_()
    teacher = _logits(1).requires_grad_()
    t = 2.0
    kd_kl(student, teacher, t).backward()
    assert teacher.grad is None
    # d/ds of T^2 mean KL(p_t || p_s) over N pixels is T (p_s - p_t) / N
    pixels = student.shape[0] * student.shape[2] * student.shape[3]
    expected = t * (F.softmax(student.detach() / t, 1) - F.softmax(teacher.detach() / t, 1))
    torch.testing.assert_close(student.grad, expected / pixels)


def test_feature_alignment_pools_to_teacher_grid():
    teacher = torch.randn(2, 8, 2, 2)
    same = teacher.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # 4x4, pools back
    assert float(feature_alignment(same, teacher)) == pytest.approx(0.0, abs=1e-6)
    assert float(feature_alignment(-same, teacher)) == pytest.approx(2.0, abs=1e-6)


def test_feature_alignment_skips_cells_that_see_a_hidden_pixel():
    teacher = torch.randn(1, 8, 2, 2)
    student = teacher.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    student[:, :, 2:, 2:] *= -1  # the south-east cell points the other way
    visible = torch.ones(1, 4, 4, dtype=torch.bool)
    assert float(feature_alignment(student, teacher, visible)) == pytest.approx(0.5, abs=1e-6)
    visible[0, 3, 3] = False  # one hidden pixel drops its whole cell: the rest agree
    assert float(feature_alignment(student, teacher, visible)) == pytest.approx(0.0, abs=1e-6)


def test_task_loss_ignores_unlabelled_pixels():
    logits = _logits(0)
    labels = torch.full((2, 4, 4), 255)
    labels[:, :2] = 1
    changed = logits.clone()
    changed[:, :, 2:] = 100.0 * torch.randn(2, 2, 2, 4)
    torch.testing.assert_close(task_loss(logits, labels), task_loss(changed, labels))
    labelled = F.cross_entropy(logits[:, :, :2], labels[:, :2])
    torch.testing.assert_close(task_loss(logits, labels), labelled)


def test_task_loss_without_labels_is_zero_not_nan():
    logits = _logits(0).requires_grad_()
    loss = task_loss(logits, torch.full((2, 4, 4), 255))
    assert float(loss.detach()) == 0.0
    loss.backward()  # still differentiable, and pushes no logit anywhere
    torch.testing.assert_close(logits.grad, torch.zeros_like(logits))


def test_class_weights_apply():
    logits = torch.zeros(1, 2, 1, 2)
    logits[0, 1, 0, 0] = 2.0  # pixel 0 predicts water
    labels = torch.tensor([[[0, 1]]])  # pixel 0 dry (wrong), pixel 1 water (uncertain)
    loss_dry = F.cross_entropy(logits[0, :, 0, :1].T, labels[0, 0, :1])
    loss_water = F.cross_entropy(logits[0, :, 0, 1:].T, labels[0, 0, 1:])
    weights = torch.tensor([1.0, 4.0])
    expected = (1.0 * loss_dry + 4.0 * loss_water) / 5.0
    torch.testing.assert_close(task_loss(logits, labels, weights), expected)
    assert not torch.isclose(task_loss(logits, labels), expected)


def test_distillation_loss_combines_weighted_parts():
    student, teacher = _logits(0), _logits(1)
    projected, teacher_features = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)
    labels = torch.randint(0, 2, (2, 4, 4))
    weights = DistillWeights(kd=0.5, feature=0.3, task=0.2)
    total, parts = distillation_loss(student, teacher, projected, teacher_features, labels,
                                     temperature=3.0, weights=weights)
    expected = 0.5 * parts["kd"] + 0.3 * parts["feature"] + 0.2 * parts["task"]
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert parts["total"] == pytest.approx(expected, rel=1e-6)
    assert parts["kd"] == pytest.approx(float(kd_kl(student, teacher, 3.0)), rel=1e-6)


def test_temperature_schedule():
    steps = 11
    values = [temperature_at(s, steps, 5.0, 1.0) for s in range(steps)]
    assert values[0] == pytest.approx(5.0) and values[-1] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    # Exponential: constant ratio between steps; halfway is the geometric mean.
    assert values[5] == pytest.approx(math.sqrt(5.0))
    assert temperature_at(100, steps) == pytest.approx(1.0)
    assert temperature_at(0, 1) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        temperature_at(0, 10, 0.0, 1.0)
