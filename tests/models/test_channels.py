"""Channel layout and normalisation of model inputs."""

import numpy as np
import pytest

from floodkd.models.channels import (
    BACKSCATTER_FLOOR_DB,
    MODALITIES,
    MODALITY_CHANNELS,
    NORMALISATION,
    STUDENT_CHANNELS,
    TEACHER_CHANNELS,
    normalise,
    pass_land_level_db,
    presence_vector,
    student_image,
    teacher_image,
)


def _terrain(shape=(2, 2)):
    return {
        "elevation_m": np.full(shape, 1.0, np.float32),
        "hand_m": np.full(shape, 0.5, np.float32),
        "coast_distance_m": np.full(shape, 100.0, np.float32),
    }


def test_every_channel_has_constants_and_modalities_cover_non_terrain():
    assert set(STUDENT_CHANNELS) | set(TEACHER_CHANNELS) <= set(NORMALISATION)
    in_modalities = {name for m in MODALITIES for name in MODALITY_CHANNELS[m]}
    # static, always present: the terrain, the defences (unprotected where none is known) and
    # the radar archive's waterline (unknown where there is none)
    assert set(STUDENT_CHANNELS) - in_modalities == {
        "elevation_m", "hand_m", "coast_distance_m", "protection_level_m", "protected",
        "waterline_m", "waterline_known", "waterline_above"}
    assert len(STUDENT_CHANNELS) == 21


def test_teacher_image_values_and_nan():
    vv = np.array([[-15.0, -22.0], [np.nan, -5.0]], np.float32)
    vh = np.array([[-22.0, -29.0], [-20.0, -12.0]], np.float32)
    image = teacher_image(vv, vh, (-10.0, -17.0))
    assert image.shape == (5, 2, 2) and image.dtype == np.float32
    np.testing.assert_allclose(image[0], [[0.0, -0.7], [0.0, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(image[1], [[0.0, -0.7], [0.2, 1.0]], rtol=1e-6)
    # vv - vh = 7 -> 0; NaN where vv is NaN -> 0
    np.testing.assert_allclose(image[2], [[0.0, 0.0], [0.0, 0.0]])
    # against the land level: vv -15 - (-10) = -5 dB -> 0; vh -12 - (-17) = +5 dB -> 2
    np.testing.assert_allclose(image[3], [[0.0, -1.4], [0.0, 2.0]], rtol=1e-6)
    np.testing.assert_allclose(image[4], [[0.0, -1.4], [0.4, 2.0]], rtol=1e-6)


def test_land_minus_channels_cancel_a_calibration_offset_of_the_whole_pass():
    rng = np.random.default_rng(0)
    vv = np.where(rng.random((64, 64)) < 0.3, -20.0, -9.0) + rng.normal(0, 1.5, (64, 64))
    vh = vv - 3.0  # above the floor, which a calibration offset would move pixels across
    image = teacher_image(vv, vh, pass_land_level_db(vv, vh))
    shifted = teacher_image(vv + 2.0, vh + 2.0, pass_land_level_db(vv + 2.0, vh + 2.0))
    np.testing.assert_allclose(shifted[3:], image[3:], atol=1e-5)
    np.testing.assert_allclose(shifted[0], image[0] + 0.2, atol=1e-5)  # absolute VV moves


@pytest.mark.parametrize("water_share", [0.1, 0.5, 0.8])
def test_pass_land_level_is_the_land_median_whatever_the_share_of_water(water_share):
    rng = np.random.default_rng(1)
    water = rng.random(200_000) < water_share
    vv = np.where(water, rng.normal(-20.0, 1.5, water.size), rng.normal(-9.0, 1.5, water.size))
    vh = np.where(water, -27.0, vv - 7.0)
    vv[:100] = np.nan  # no-data is left out
    land_vv, land_vh = pass_land_level_db(vv, vh)
    assert land_vv == pytest.approx(-9.0, abs=0.1)
    assert land_vh == pytest.approx(-16.0, abs=0.1)


def test_pass_land_level_without_valid_pixels_or_spread():
    nan = np.full((2, 2), np.nan)
    assert all(np.isnan(pass_land_level_db(nan, nan)))
    flat = np.full((2, 2), -40.0)  # all below the noise: the floor
    assert pass_land_level_db(flat, flat) == (BACKSCATTER_FLOOR_DB, BACKSCATTER_FLOOR_DB)
    with pytest.raises(ValueError, match="same shape"):
        pass_land_level_db(np.zeros((2, 2)), np.zeros((2, 3)))


def test_student_image_zeroes_absent_modalities_and_cloudy_pixels():
    arrays = _terrain()
    optical = MODALITY_CHANNELS["optical"]
    arrays.update({name: np.full((2, 2), 0.35, np.float32) for name in optical})
    arrays["clear_sky"] = np.array([[1, 0], [1, np.nan]], np.float32)
    arrays["water_level_m"] = np.full((2, 2), 2.0, np.float32)
    image = student_image(arrays, {"optical": True, "gauge": True, "gcm": False})
    b02 = STUDENT_CHANNELS.index("b02")
    np.testing.assert_allclose(image[b02], [[(0.35 - 0.15) / 0.15, 0], [(0.35 - 0.15) / 0.15, 0]],
                               rtol=1e-6)
    depth = STUDENT_CHANNELS.index("water_depth_m")
    np.testing.assert_allclose(image[depth], (2.0 - 1.0) / 2.0)  # level - elevation, derived
    for name in MODALITY_CHANNELS["gcm"]:
        assert not image[STUDENT_CHANNELS.index(name)].any()
    elevation = STUDENT_CHANNELS.index("elevation_m")
    np.testing.assert_allclose(image[elevation], normalise("elevation_m", arrays["elevation_m"]))


def test_student_image_marks_protected_pixels_from_their_crest():
    arrays = _terrain()
    assert not student_image(arrays, {})[STUDENT_CHANNELS.index("protected")].any()
    arrays["protection_level_m"] = np.array([[4.2, np.nan], [np.nan, 3.0]], np.float32)
    image = student_image(arrays, {})
    np.testing.assert_array_equal(image[STUDENT_CHANNELS.index("protected")], [[1, 0], [0, 1]])
    np.testing.assert_allclose(image[STUDENT_CHANNELS.index("protection_level_m")],
                               [[(4.2 - 2.0) / 5.0, 0.0], [0.0, (3.0 - 2.0) / 5.0]], rtol=1e-6)


def test_student_image_requires_terrain_and_present_channels():
    with pytest.raises(ValueError, match="terrain"):
        student_image({}, {})
    with pytest.raises(ValueError, match="zos_m"):
        student_image(_terrain(), {"gcm": True})


def test_presence_vector_order():
    np.testing.assert_array_equal(presence_vector({"gauge": True}), [0.0, 1.0, 0.0])


def test_teacher_image_holds_backscatter_below_the_noise_at_the_floor():
    # -40 dB (a floored noise residue) and -34 dB (residue left as is) both read as the floor
    vv = np.array([[-40.0, -34.0, BACKSCATTER_FLOOR_DB + 2.0, np.nan]], np.float32)
    vh = np.array([[-40.0, -25.0, -45.0, -20.0]], np.float32)
    image = teacher_image(vv, vh, (-10.0, -17.0))
    offset, scale = NORMALISATION["vv_db"]
    floor = (BACKSCATTER_FLOOR_DB - offset) / scale
    np.testing.assert_allclose(image[0], [[floor, floor, floor + 2.0 / scale, 0.0]], rtol=1e-6)
    vh_offset, vh_scale = NORMALISATION["vh_db"]
    vh_floor = (BACKSCATTER_FLOOR_DB - vh_offset) / vh_scale
    np.testing.assert_allclose(image[1], [[vh_floor, -0.3, vh_floor, 0.2]], rtol=1e-6)
    # VV-VH is taken after the floor: 0 dB at (-40, -40), not a ratio of two noise residues
    ratio_offset, ratio_scale = NORMALISATION["vv_minus_vh_db"]
    assert image[2, 0, 0] == pytest.approx((0.0 - ratio_offset) / ratio_scale)
    assert image[2, 0, 3] == 0.0
    # against the land level too, from the floor: -30 - (-10) = -20 dB
    land_offset, land_scale = NORMALISATION["vv_minus_land_db"]
    assert image[3, 0, 0] == pytest.approx((-20.0 - land_offset) / land_scale)
