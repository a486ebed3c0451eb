"""The streaming engine: seam-free blending, nodata, bounded memory."""

from __future__ import annotations

import numpy as np

from floodkd.predict.tiled import predict_row_bands
from floodkd.predict.uncertainty import sample_statistics


def _assemble(shape, predictor, tile_px, overlap_px):
    bands = list(predict_row_bands(shape, predictor, tile_px, overlap_px))
    rows = [b.row_off for b in bands]
    assert rows == sorted(rows) and rows[0] == 0
    assert sum(b.height for b in bands) == shape[0]  # every row exactly once
    return bands, np.concatenate([b.maps.probability for b in bands])


def test_two_overlapping_tiles_equal_one_large_tile(field_predictor):
    shape = (64, 112)
    single = field_predictor(shape)
    _, one_tile = _assemble(shape, single, 112, 0)
    assert len(single.windows) == 1
    tiled = field_predictor(shape)
    _, two_tiles = _assemble(shape, tiled, 64, 16)
    assert tiled.windows == [(0, 0, 64, 64), (0, 48, 64, 64)]
    np.testing.assert_allclose(two_tiles, one_tile, atol=1e-6)
    np.testing.assert_allclose(one_tile, 0.9 * single.field, atol=1e-6)


def test_blended_uncertainty_equals_sample_statistics_for_consistent_tiles(field_predictor):
    shape = (100, 130)
    predictor = field_predictor(shape)
    bands, _ = _assemble(shape, predictor, 48, 12)
    expected = sample_statistics(np.stack([predictor.field, 0.9 * predictor.field,
                                           0.8 * predictor.field]))
    std = np.concatenate([b.maps.std for b in bands])
    mi = np.concatenate([b.maps.mutual_information_nats for b in bands])
    np.testing.assert_allclose(std, expected.std, atol=1e-5)
    np.testing.assert_allclose(mi, expected.mutual_information_nats, atol=1e-5)
    flags = np.concatenate([b.inputs_used for b in bands])
    assert np.all(flags == 10)


def test_disagreeing_tiles_blend_without_jumps(field_predictor):
    # each tile predicts a constant that depends on the tile: blending must ramp smoothly
    shape = (32, 160)

    def per_tile(row_off, col_off, height, width):
        value = 0.2 + 0.6 * (col_off / 160)
        return np.full((2, height, width), value), np.zeros((height, width), np.uint16)

    bands = list(predict_row_bands(shape, per_tile, 32, 16))
    row = bands[0].maps.probability[0]
    steps = np.abs(np.diff(row))
    # tile values jump by 0.06 between neighbours; blended steps stay well below that
    assert steps.max() < 0.02


def test_nan_samples_become_nodata_and_do_not_pollute_neighbours(field_predictor):
    shape = (40, 40)
    predictor = field_predictor(shape)

    def with_hole(row_off, col_off, height, width):
        samples, flags = predictor(row_off, col_off, height, width)
        samples = samples.copy()
        hole = np.zeros((height, width), bool)
        rows = np.arange(row_off, row_off + height)[:, None]
        cols = np.arange(col_off, col_off + width)[None, :]
        hole |= (rows < 5) & (cols < 5)
        samples[:, hole] = np.nan
        return samples, flags

    bands = list(predict_row_bands(shape, with_hole, 24, 8))
    prob = np.concatenate([b.maps.probability for b in bands])
    flags = np.concatenate([b.inputs_used for b in bands])
    assert np.all(np.isnan(prob[:5, :5])) and np.all(flags[:5, :5] == 0)
    np.testing.assert_allclose(prob[5:, 5:], 0.9 * predictor.field[5:, 5:], atol=1e-6)


def test_memory_is_bounded_by_design(field_predictor):
    # only tile-sized windows are requested and rows come out in bands of at most one tile
    shape = (500, 70)
    predictor = field_predictor(shape)
    tile_px = 32
    for band in predict_row_bands(shape, predictor, tile_px, 8):
        assert band.height <= tile_px
        assert band.maps.probability.shape == (band.height, shape[1])
    assert all(h <= tile_px and w <= tile_px for _, _, h, w in predictor.windows)
    assert len(predictor.windows) == 21 * 3  # 21 tile rows x 3 tile columns, each once


def test_a_model_with_context_gives_the_same_map_from_many_tiles_as_from_one(field_predictor):
    """A model that sees a 7 px neighbourhood and pads the window's edge with 1 (as a CNN pads)
    is brighter at every window edge. Tiled, only the region's border may show that, exactly
    as one large tile shows it; seams between tiles must not (the issue's edge artefact)."""
    from scipy.ndimage import uniform_filter

    shape = (300, 280)
    field = field_predictor(shape).field

    def with_context(row_off, col_off, height, width):
        window = field[row_off : row_off + height, col_off : col_off + width]
        p = uniform_filter(window, size=7, mode="constant", cval=1.0)
        return np.stack([p, 0.9 * p]), np.full((height, width), 8, np.uint16)

    _, one_tile = _assemble(shape, with_context, 512, 0)
    _, many_tiles = _assemble(shape, with_context, 64, 16)
    np.testing.assert_allclose(many_tiles, one_tile, atol=1e-6)
    # the padding shows at the region's border (so the model above does have an edge effect)
    assert (one_tile[0, 10:-10] > one_tile[3, 10:-10]).all()
