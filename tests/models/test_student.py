"""The multi-modal student: missing inputs, modality dropout, MC dropout, learning."""

import pytest
import torch

from floodkd.models.channels import MODALITIES, MODALITY_CHANNELS, STUDENT_CHANNELS
from floodkd.models.student import (
    FloodStudent,
    Projection,
    StudentConfig,
    TemporalEncoder,
    flood_logit,
    sinusoidal_encoding,
)

SIZE = 32


def _inputs(batch=2, gauges=2, hours=72, seed=0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, len(STUDENT_CHANNELS), SIZE, SIZE, generator=generator)
    presence = torch.ones(batch, len(MODALITIES))
    history = torch.randn(batch, gauges, hours, generator=generator)
    return image, presence, history


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    model = FloodStudent(StudentConfig())
    # FiLM starts at zero (identity); give it weights so gauge inputs matter in these tests.
    torch.nn.init.normal_(model.film.weight, std=0.5)
    return model.eval()


def test_parameter_count_is_light():
    count = sum(p.numel() for p in FloodStudent(StudentConfig()).parameters())
    assert 50_000 <= count <= 150_000


def test_shapes(student):
    logits, features = student(*_inputs())
    assert logits.shape == (2, 2, SIZE, SIZE)
    assert features.shape == (2, StudentConfig().feature_channels, SIZE // 8, SIZE // 8)


@pytest.mark.parametrize(
    "case", ["no_presence", "all_nan_history", "no_gauges", "nan_hours", "no_hours"]
)
def test_missing_inputs_give_the_output_of_the_inputs_left(student, case):
    image, presence, history = _inputs()
    full = student(image, presence, history)[0]
    no_gauges = student(image, presence, history[:, :0])[0]
    if case == "no_presence":
        presence = torch.zeros_like(presence)
        logits, features = student(image, presence, history)
        # nothing but terrain is read: other optical values and gauge levels change nothing
        changed = image.clone()
        for name in MODALITY_CHANNELS["optical"]:
            changed[:, STUDENT_CHANNELS.index(name)] += 5.0
        torch.testing.assert_close(logits, student(changed, presence, history + 3.0)[0])
    elif case == "nan_hours":
        history[0, 0, :50] = float("nan")
        history[1, 1] = float("nan")
        logits, features = student(image, presence, history)
        # an all-missing gauge counts as no gauge: sample 1 sees gauge 0 alone
        torch.testing.assert_close(logits[1:], student(image[1:], presence[1:],
                                                       history[1:, :1])[0])
        assert not torch.allclose(logits[0], full[0])  # the gap changes what gauge 0 says
    else:
        history = {"all_nan_history": torch.full_like(history, float("nan")),
                   "no_gauges": history[:, :0], "no_hours": history[:, :, :0]}[case]
        logits, features = student(image, presence, history)
        torch.testing.assert_close(logits, no_gauges)  # no valid hour is no gauge
    assert torch.isfinite(logits).all() and torch.isfinite(features).all()
    assert not torch.allclose(logits, full)  # what is missing matters
    margin = logits[:, 1] - logits[:, 0]  # the monotone head fixes the dry logit at 0
    assert margin.std(dim=(1, 2)).min() > 0  # a map, not a constant


def test_absent_modality_ignores_its_channels(student):
    image, presence, history = _inputs()
    presence[:, MODALITIES.index("optical")] = 0
    changed = image.clone()
    for name in MODALITY_CHANNELS["optical"]:
        changed[:, STUDENT_CHANNELS.index(name)] += 5.0
    torch.testing.assert_close(student(image, presence, history)[0],
                               student(changed, presence, history)[0])


def test_absent_gauges_ignore_history_but_present_gauges_use_it(student):
    image, presence, history = _inputs()
    # another course of the water; a uniform shift would not do: the history is read
    # relative to its latest hour, so a shift changes the output only by rounding
    other = history.flip(-1)
    assert not torch.allclose(student(image, presence, history)[0],
                              student(image, presence, other)[0])
    presence[:, MODALITIES.index("gauge")] = 0
    torch.testing.assert_close(student(image, presence, history)[0],
                               student(image, presence, other)[0])


def test_missing_gauge_counts_as_no_gauge(student):
    image, presence, history = _inputs()
    with_missing = history.clone()
    with_missing[:, 1] = float("nan")
    torch.testing.assert_close(student(image, presence, with_missing)[0],
                               student(image, presence, history[:, :1])[0])


def test_modality_dropout_drops_presence_and_channels_in_training_only():
    torch.manual_seed(1)
    model = FloodStudent(StudentConfig(dropout=0.0, modality_dropout=1.0))
    torch.nn.init.normal_(model.film.weight, std=0.5)
    image, presence, history = _inputs(batch=4)
    dropped = model.train()(image, presence, history)[0]
    all_absent = model.eval()(image, torch.zeros_like(presence), history)[0]
    torch.testing.assert_close(dropped, all_absent)  # p = 1: every modality dropped
    assert not torch.allclose(model(image, presence, history)[0], all_absent)  # eval: none


def test_partial_modality_dropout_gives_finite_varied_outputs():
    torch.manual_seed(1)
    model = FloodStudent(StudentConfig(dropout=0.0, modality_dropout=0.5)).train()
    torch.nn.init.normal_(model.film.weight, std=0.5)
    image, presence, history = _inputs(batch=4)
    outputs = [model(image, presence, history)[0] for _ in range(4)]
    assert all(torch.isfinite(o).all() for o in outputs)
    assert any(not torch.allclose(outputs[0], o) for o in outputs[1:])


def test_eval_is_deterministic_and_mc_dropout_gives_spread(student):
    inputs = _inputs()
    torch.testing.assert_close(student(*inputs)[0], student(*inputs)[0])
    a = student(*inputs, mc_dropout=True)[0]
    b = student(*inputs, mc_dropout=True)[0]
    assert not torch.allclose(a, b)
    assert not student.training  # the flag does not switch the mode


def test_non_multiple_tile_is_rejected(student):
    image, presence, history = _inputs()
    with pytest.raises(ValueError, match="multiple of 8"):
        student(image[..., :30], presence, history)


def test_temporal_encoder_masks_and_pools():
    torch.manual_seed(0)
    encoder = TemporalEncoder(dim=16, heads=2, dropout=0.0).eval()
    history = torch.randn(2, 3, 12)
    history[1] = float("nan")
    pooled, valid = encoder(history)
    assert pooled.shape == (2, 16)
    torch.testing.assert_close(valid, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(pooled[1], torch.zeros(16))


def test_temporal_encoder_masked_hours_equal_absent_hours():
    torch.manual_seed(0)
    encoder = TemporalEncoder(dim=16, heads=2, dropout=0.0).eval()
    history = torch.randn(1, 2, 12)
    masked = history.clone()
    masked[:, :, :4] = float("nan")  # the four oldest hours missing
    # Time encodings count back from the latest hour, so dropping the oldest hours is the
    # same sequence: masking must make NaN hours exactly as if they were not there.
    torch.testing.assert_close(encoder(masked)[0], encoder(history[:, :, 4:])[0])
    assert not torch.allclose(encoder(masked)[0], encoder(history)[0])


def test_sinusoidal_encoding_distinguishes_hours():
    encoding = sinusoidal_encoding(torch.arange(72), 32)
    assert encoding.shape == (72, 32)
    torch.testing.assert_close(encoding[0, 16:], torch.ones(16))  # cos(0) = 1
    assert torch.cdist(encoding, encoding).fill_diagonal_(1.0).min() > 0.1


def test_projection_maps_to_teacher_width():
    projection = Projection(64, 96)
    out = projection(torch.randn(2, 64, 4, 5))
    assert out.shape == (2, 96, 4, 5)
    # LayerNorm over the channel axis: zero mean, unit variance per pixel.
    torch.testing.assert_close(out.mean(1), torch.zeros(2, 4, 5), atol=1e-5, rtol=0)


def test_one_distillation_step_lowers_the_loss():
    from floodkd.distill.losses import distillation_loss

    torch.manual_seed(0)
    model = FloodStudent(StudentConfig(dropout=0.0, modality_dropout=0.0)).train()
    projection = Projection(model.config.feature_channels, 24)
    image, presence, history = _inputs(batch=2)
    teacher_logits = torch.randn(2, 2, SIZE, SIZE) * 3
    teacher_features = torch.randn(2, 24, 4, 4)
    labels = torch.full((2, SIZE, SIZE), 255)
    labels[:, :8] = (teacher_logits[:, 1, :8] > teacher_logits[:, 0, :8]).long()
    parameters = list(model.parameters()) + list(projection.parameters())
    optimiser = torch.optim.Adam(parameters, lr=3e-3)

    def loss():
        logits, features = model(image, presence, history)
        return distillation_loss(logits, teacher_logits, projection(features), teacher_features,
                                 labels, temperature=2.0)[0]

    before = loss()
    before.backward()
    optimiser.step()
    assert loss() < before


def test_no_checkerboard_on_a_uniform_input(student):
    """Regression: a 2x2 stride-2 stem + pixel-shuffle head gave each pixel of a 2x2 cell
    its own weights, so a uniform input came out as a checkerboard. Away from the tile
    border a uniform input must give a (near) uniform output."""
    image = torch.full((1, len(STUDENT_CHANNELS), 192, 192), 0.7)
    presence = torch.ones(1, len(MODALITIES))
    with torch.no_grad():
        logits, _ = student(image, presence, torch.zeros(1, 1, 72))
    interior = logits[0, 1, 80:112, 80:112]  # beyond the reach of the zero padding
    phases = torch.stack([interior[i::2, j::2].mean() for i in (0, 1) for j in (0, 1)])
    assert float(phases.max() - phases.min()) < 1e-3
    assert float(interior.std()) < 1e-3


def _with_level(image, history, level_m):
    """The inputs at a uniform water level: the level and depth channels set, each gauge's
    history shifted so its latest hour reads ``level_m`` (as a scenario does)."""
    from floodkd.models.channels import NORMALISATION

    image = image.clone()
    level_offset, level_scale = NORMALISATION["water_level_m"]
    depth_offset, depth_scale = NORMALISATION["water_depth_m"]
    elev_offset, elev_scale = NORMALISATION["elevation_m"]
    elevation = image[:, STUDENT_CHANNELS.index("elevation_m")] * elev_scale + elev_offset
    image[:, STUDENT_CHANNELS.index("water_level_m")] = (level_m - level_offset) / level_scale
    image[:, STUDENT_CHANNELS.index("water_depth_m")] = (
        (level_m - elevation - depth_offset) / depth_scale)
    return image, history - history[..., -1:] + level_m


def test_probability_never_falls_as_the_water_level_rises_in_a_trained_student():
    """Monotone by construction: train a student to fit a target that is NOT monotone in the
    level (water at low level only), then sweep the level: no pixel's P(water) decreases."""
    torch.manual_seed(1)
    model = FloodStudent(StudentConfig(base_width=8, temporal_dim=8, temporal_heads=2))
    image, presence, history = _inputs(batch=4, seed=3)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for step in range(30):
        level = -1.0 + 0.1 * step
        swept_image, swept_history = _with_level(image, history, level)
        logits, _ = model(swept_image, presence, swept_history)
        target = torch.full(logits.shape[:1] + logits.shape[2:], int(level < 0))
        loss = torch.nn.functional.cross_entropy(logits, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    _protect_left_half(image, crest_m=2.0)  # a defence's gate must keep it monotone too
    levels = torch.linspace(-3.0, 6.0, 37)
    with torch.no_grad():
        probs = torch.stack([
            torch.softmax(model(*_inputs_at(image, presence, history, float(level)))[0], 1)[:, 1]
            for level in levels])
    assert probs.std() > 0  # the level matters at all
    assert (probs.diff(dim=0) >= -1e-6).all()  # float32 rounding of exp/log: ~1e-8


def _protect_left_half(image, crest_m):
    """Mark the left half of ``image`` protected by a defence with crest ``crest_m``."""
    from floodkd.models.channels import normalise

    half = image.shape[-1] // 2
    image[:, STUDENT_CHANNELS.index("protected")] = 0.0
    image[:, STUDENT_CHANNELS.index("protected"), :, :half] = 1.0
    image[:, STUDENT_CHANNELS.index("protection_level_m"), :, :half] = float(
        normalise("protection_level_m", crest_m))


def test_a_defence_keeps_the_sea_out_below_its_crest_and_lets_it_in_above():
    level = torch.tensor([2.0, 3.8, 4.0, 4.3, 5.0])
    ground = torch.zeros(5)  # far below every level: open land floods at all of them
    spread, other = torch.full((5,), 0.2), torch.full((5,), -20.0)
    crest = torch.full((5,), 4.0)
    open_land = torch.sigmoid(flood_logit(level, ground, spread, other))
    protected = torch.sigmoid(flood_logit(level, ground, spread, other, crest))
    assert (open_land > 0.99).all()
    assert protected[0] < 1e-5 and protected[1] < 0.15  # 0.2 m under the crest: ~2 errors
    assert protected[2] == pytest.approx(0.5, abs=0.01)  # at the crest
    assert protected[3] > 0.9 and protected[4] > 0.99
    # NaN crest: no defence, the same as open land
    unprotected = flood_logit(level, ground, spread, other, torch.full((5,), float("nan")))
    torch.testing.assert_close(torch.sigmoid(unprotected), open_land)
    # behind the defence, water from other causes (rain) is still water
    raining = torch.sigmoid(flood_logit(level, ground, spread, torch.full((5,), 3.0), crest))
    assert (raining > 0.95).all()


def test_the_student_keeps_the_sea_out_of_protected_land_below_the_crest():
    """Whatever a (here untrained) student's threshold, protected pixels gain nothing from
    the water level until it nears the crest; unprotected ones do."""
    torch.manual_seed(0)
    model = FloodStudent(StudentConfig()).eval()
    image, presence, history = _inputs(batch=1, seed=5)
    _protect_left_half(image, crest_m=6.0)
    half = SIZE // 2
    with torch.no_grad():
        probs = [torch.softmax(model(*_inputs_at(image, presence, history, level))[0], 1)[0, 1]
                 for level in (-2.0, 5.0, 8.0)]
    low, high, overtopped = probs
    assert (high[:, :half] - low[:, :half]).abs().max() < 1e-3  # the dike holds up to 5 m
    assert (high[:, half:] - low[:, half:]).max() > 0.5  # open land floods as the sea rises
    assert (overtopped[:, :half] - low[:, :half]).max() > 0.5  # overtopped at 8 m


def _inputs_at(image, presence, history, level_m):
    swept_image, swept_history = _with_level(image, history, level_m)
    return swept_image, presence, swept_history


def test_gauge_history_is_read_relative_to_the_current_level():
    """A uniform shift of every gauge's history leaves the temporal features unchanged, so
    sweeping the level cannot act through them; the history's shape still matters."""
    torch.manual_seed(0)
    encoder = TemporalEncoder(16, 2, 0.0).eval()
    history = torch.randn(2, 3, 48)
    history[0, 1, 40:] = float("nan")  # a gap at the end: the latest valid hour counts
    with torch.no_grad():
        pooled, _ = encoder(history)
        shifted, _ = encoder(history + 2.5)
        other, _ = encoder(history.flip(-1))
    torch.testing.assert_close(pooled, shifted, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(pooled, other, atol=1e-3)
