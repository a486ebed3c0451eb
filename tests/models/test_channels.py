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
    assert set(STUDENT_CHANNELS) - in_modalities == {"elevation_m", "hand_m", "coast_distance_m"}
    assert len(STUDENT_CHANNELS) == 16


def test_teacher_image_values_and_nan():
    vv = np.array([[-15.0, -22.0], [np.nan, -5.0]], np.float32)
    vh = np.array([[-22.0, -29.0], [-20.0, -12.0]], np.float32)
    image = teacher_image(vv, vh)
    assert image.shape == (3, 2, 2) and image.dtype == np.float32
    np.testing.assert_allclose(image[0], [[0.0, -0.7], [0.0, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(image[1], [[0.0, -0.7], [0.2, 1.0]], rtol=1e-6)
    # vv - vh = 7 -> 0; NaN where vv is NaN -> 0
    np.testing.assert_allclose(image[2], [[0.0, 0.0], [0.0, 0.0]])


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
    image = teacher_image(vv, vh)
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
