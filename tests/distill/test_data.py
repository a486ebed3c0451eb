"""The (tile, time) dataset over the Zarr cube: shapes, channels, laziness, selection, labels."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from floodkd.distill import data as data_module
from floodkd.distill.data import (
    LABEL_NODATA,
    SPATIAL_KEYS,
    CubeTileDataset,
    augment_batch,
    calibration_holdout,
    collate,
    cube_pass_land_level_db,
    holdout_mask,
    label_class_counts,
    labelled_pixels,
    open_cube,
    open_region,
    padded_size,
    read_window,
    sample_tensors,
    select_samples,
)
from floodkd.errors import InputError
from floodkd.models.channels import (
    STUDENT_CHANNELS,
    TEACHER_CHANNELS,
    normalise,
    pass_land_level_db,
)
from tests.distill.conftest import OPTICAL, RADAR, SIZE_PX, TILE_PX, TIMES


def _dataset(region, splits=("train",), require="any", time_ok=None):
    data = open_region(region.results_dir, region.name, ["elevation_m", "label"])
    counts = label_class_counts(data.cube, data.tiles).sum(-1)
    time_ok = RADAR if time_ok is None else time_ok
    samples = select_samples(data.tiles, splits, time_ok, counts, require)
    return CubeTileDataset(data.cube_path, data.tiles, samples, padded_size([data.tiles], 8)), data


def test_sample_shapes_channels_and_values(synthetic_region):
    dataset, data = _dataset(synthetic_region)
    item = dataset[0]
    tile_pos, t = dataset.samples[0]
    assert item["teacher_image"].shape == (len(TEACHER_CHANNELS), TILE_PX, TILE_PX)
    assert item["student_image"].shape == (len(STUDENT_CHANNELS), TILE_PX, TILE_PX)
    assert item["presence"].tolist() == [float(OPTICAL[t]), 1.0, 1.0]
    assert item["gauge_history"].shape == (2, 6)
    assert torch.isnan(item["gauge_history"][1, :2]).all()
    assert item["label"].dtype == torch.int64 and item["label"].shape == (TILE_PX, TILE_PX)
    row, col = int(data.tiles.row_off[tile_pos]), int(data.tiles.col_off[tile_pos])
    assert item["window"].tolist() == [row, col, TILE_PX, TILE_PX]
    # the elevation channel is the tile's window of the cube, normalised
    cube_elevation = data.cube["elevation_m"].values[row:row + TILE_PX, col:col + TILE_PX]
    k = STUDENT_CHANNELS.index("elevation_m")
    np.testing.assert_allclose(item["student_image"][k].numpy(),
                               normalise("elevation_m", cube_elevation), rtol=1e-6)
    vv = data.cube["vv_db"].values[t, row:row + TILE_PX, col:col + TILE_PX]
    np.testing.assert_allclose(item["teacher_image"][0].numpy(), normalise("vv_db", vv), rtol=1e-5)
    assert item["radar_present"] == 1.0
    # the land level is the whole pass's, not the tile's
    level = pass_land_level_db(data.cube["vv_db"].values[t], data.cube["vh_db"].values[t])
    np.testing.assert_allclose(item["land_level_db"].numpy(), level, rtol=1e-6)
    np.testing.assert_allclose(item["teacher_image"][3].numpy(),
                               normalise("vv_minus_land_db", vv - level[0]), rtol=1e-5, atol=1e-6)


def test_a_pass_land_level_of_a_large_region_comes_from_a_regular_subsample(
        synthetic_region, monkeypatch):
    cube = open_cube(synthetic_region.cube_path)
    t = int(np.flatnonzero(RADAR)[0])
    vv, vh = cube["vv_db"].values[t], cube["vh_db"].values[t]
    assert cube_pass_land_level_db(cube, t) == pass_land_level_db(vv, vh)
    monkeypatch.setattr(data_module, "LAND_LEVEL_MAX_PIXELS", SIZE_PX * SIZE_PX // 9)
    assert cube_pass_land_level_db(cube, t) == pass_land_level_db(vv[::3, ::3], vh[::3, ::3])


def test_the_student_paths_get_no_teacher_image_without_the_pass_level(synthetic_region):
    cube = open_cube(synthetic_region.cube_path)
    t = int(np.flatnonzero(RADAR)[0])
    window = read_window(cube, t, 0, 0, TILE_PX, TILE_PX)
    sample = sample_tensors(window, (TILE_PX, TILE_PX), (0, 0, TILE_PX, TILE_PX), t)
    assert "teacher_image" not in sample and sample["radar_present"] == 1.0


def test_label_255_preserved_and_padding(synthetic_region):
    dataset, data = _dataset(synthetic_region)
    padded = CubeTileDataset(data.cube_path, data.tiles, dataset.samples, (24, 24))
    item = padded[0]
    tile_pos, t = padded.samples[0]
    row, col = int(data.tiles.row_off[tile_pos]), int(data.tiles.col_off[tile_pos])
    cube_label = data.cube["label"].values[t, row:row + TILE_PX, col:col + TILE_PX]
    assert (cube_label == 255).any()
    np.testing.assert_array_equal(item["label"][:TILE_PX, :TILE_PX].numpy(), cube_label)
    assert (item["label"][TILE_PX:, :] == 255).all() and (item["label"][:, TILE_PX:] == 255).all()
    assert item["valid"].sum() == TILE_PX * TILE_PX
    assert item["student_image"].shape[-2:] == (24, 24)


def test_the_teachers_samples_are_the_full_ones_without_the_students_inputs(synthetic_region):
    full, data = _dataset(synthetic_region)
    teacher = CubeTileDataset(data.cube_path, data.tiles, full.samples, full.size,
                              student=False)
    for index in range(len(full)):
        expected = {key: value for key, value in full[index].items()
                    if key not in ("student_image", "presence", "gauge_history")}
        item = teacher[index]
        assert item.keys() == expected.keys()
        for key, value in expected.items():
            assert torch.equal(item[key], value), key


def test_samples_skip_times_without_inputs(synthetic_region):
    dataset, data = _dataset(synthetic_region, splits=("train", "val"))
    n_tiles = int(data.tiles.split.isin(["train", "val"]).sum())
    assert len(dataset) == n_tiles * int(RADAR.sum())
    assert {t for _, t in dataset.samples} == set(np.flatnonzero(RADAR))
    # labels exist only at radar times here, so requiring labels on all times gives the same
    labelled, _ = _dataset(synthetic_region, require="labels", time_ok=np.ones(TIMES.size, bool))
    assert {t for _, t in labelled.samples} == set(np.flatnonzero(RADAR))


def test_reads_lazily(synthetic_region):
    dataset, _ = _dataset(synthetic_region)
    item = dataset[3]
    assert item["student_image"].shape[0] == len(STUDENT_CHANNELS)
    # the dataset's handle still holds lazily indexed arrays: only the window was read
    for name in ("vv_db", "label", "b02", "gauge_history_m"):
        assert not dataset.cube[name].variable._in_memory
    # and it pickles without the store handle (DataLoader workers reopen it)
    assert dataset.__getstate__()["_cube"] is None


def test_label_counts_per_tile_and_time(synthetic_region):
    data = open_region(synthetic_region.results_dir, synthetic_region.name, ["label"])
    counts = label_class_counts(data.cube, data.tiles)
    assert counts.shape == (9, TIMES.size, 2)
    label = data.cube["label"].values
    assert counts[0, 0, 1] == int((label[0, :TILE_PX, :TILE_PX] == 1).sum())
    assert counts[:, ~RADAR].sum() == 0


def test_holdout_is_the_last_passes_onwards():
    times = np.array(["2024-01-01", "2024-01-05", "2024-01-09", "2024-01-10", "2024-01-13"],
                     dtype="datetime64[ns]")
    radar = np.array([True, True, False, True, True])
    held = holdout_mask(times, radar, fraction=0.25, window_days=1)
    assert held.tolist() == [False, False, False, False, True]
    held = holdout_mask(times, radar, fraction=0.5, window_days=1)
    # the cut (pass 2024-01-10 less a day) also takes 2024-01-09, which could carry its radar
    assert held.tolist() == [False, False, True, True, True]
    assert not holdout_mask(times[:1], radar[:1], 0.25, 1).any()


def test_holdout_rounds_a_partial_pass_up():
    # 5 passes x 0.25 = 1.25 passes: a partial pass counts as a whole one, so two are held
    # out (rounding down would hold out one and score on too little)
    times = np.array([f"2024-01-{day:02d}" for day in (1, 5, 9, 13, 17)], dtype="datetime64[ns]")
    held = holdout_mask(times, np.ones(5, dtype=bool), fraction=0.25, window_days=1)
    assert held.tolist() == [False, False, False, True, True]


def test_missing_cube_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="floodkd align"):
        open_cube(tmp_path / "nope.zarr")


def test_cube_missing_variable_raises(synthetic_region):
    with pytest.raises(InputError, match="lacks variables"):
        open_cube(synthetic_region.cube_path, ["elevation_m", "no_such_var"])
    assert SIZE_PX == open_cube(synthetic_region.cube_path).sizes["y"]


def test_label_tiles_hide_other_tiles_labels(synthetic_region):
    data = open_region(synthetic_region.results_dir, synthetic_region.name, ["label"])
    counts = label_class_counts(data.cube, data.tiles).sum(-1)
    samples = select_samples(data.tiles, ["train", "val"], RADAR, counts, "labels")
    train_tiles = list(np.flatnonzero(data.tiles["split"].to_numpy() == "train"))
    dataset = CubeTileDataset(data.cube_path, data.tiles, samples,
                              padded_size([data.tiles], 8), label_tiles=train_tiles)
    for index, (tile, _) in enumerate(samples):
        labels = dataset[index]["label"]
        if tile in train_tiles:
            assert (labels != LABEL_NODATA).any()
        else:
            assert (labels == LABEL_NODATA).all()  # radar still there, labels hidden
            assert dataset[index]["radar_valid"].any()


def test_augment_moves_every_pixel_grid_entry_together():
    generator = torch.Generator().manual_seed(0)
    label = torch.arange(16).reshape(1, 4, 4).repeat(8, 1, 1)
    batch = {"label": label, "valid": label % 3 == 0,
             "teacher_image": label[:, None].float().repeat(1, 3, 1, 1),
             "presence": torch.ones(8, 3)}
    out = augment_batch(batch, generator)
    assert torch.equal(out["presence"], batch["presence"])  # off-grid entries untouched
    assert torch.equal(out["valid"], out["label"] % 3 == 0)
    assert torch.equal(out["teacher_image"][:, 1], out["label"].float())
    # each sample is a permutation of the same pixels, and the 8 symmetries all occur
    flat = out["label"].reshape(8, -1)
    assert all(torch.equal(row.sort().values, torch.arange(16)) for row in flat)
    draws = {tuple(row.tolist()) for row in flat}
    assert len(draws) > 1
    many = augment_batch({"label": label.repeat(8, 1, 1)}, generator)["label"]
    assert len({tuple(row.flatten().tolist()) for row in many}) == 8


def test_calibration_holdout_takes_whole_blocks_of_labelled_pixels():
    labelled = np.zeros((8, 8), dtype=bool)
    labelled[0:2, 0:8] = True  # 8 pixels in block (0, 0) and 8 pixels in block (0, 1)
    labelled[4:8, 4:5] = True  # 4 pixels in block (1, 1); block (1, 0) has none
    held = calibration_holdout(labelled, 0.3, block_px=4, seed=3)
    assert not (held & ~labelled).any()  # only labelled pixels are held out
    blocks = held.reshape(2, 4, 2, 4).any((1, 3))
    for row, col in zip(*np.nonzero(blocks), strict=True):  # a block is taken whole
        np.testing.assert_array_equal(held[row * 4:row * 4 + 4, col * 4:col * 4 + 4],
                                      labelled[row * 4:row * 4 + 4, col * 4:col * 4 + 4])
    assert 0.3 * 20 <= held.sum() < 20  # at least the share, never every label
    np.testing.assert_array_equal(held, calibration_holdout(labelled, 0.3, 4, seed=3))


def test_calibration_holdout_keeps_one_block_for_training():
    labelled = np.ones((4, 4), dtype=bool)  # a single block
    assert not calibration_holdout(labelled, 0.9, block_px=4).any()
    assert not calibration_holdout(labelled[:0, :0], 0.3, block_px=4).any()


def test_visible_pixels_hide_labels_and_radar_outside_the_mask(synthetic_region):
    data = open_region(synthetic_region.results_dir, synthetic_region.name, ["label"])
    counts = label_class_counts(data.cube, data.tiles).sum(-1)
    samples = select_samples(data.tiles, ["train", "val"], RADAR, counts, "labels")
    keep = np.zeros((data.cube.sizes["y"], data.cube.sizes["x"]), dtype=bool)
    keep[: data.cube.sizes["y"] // 2] = True  # the northern half keeps its labels
    size = padded_size([data.tiles], 8)
    full = CubeTileDataset(data.cube_path, data.tiles, samples, size)
    masked = CubeTileDataset(data.cube_path, data.tiles, samples, size, visible_pixels=keep)
    for index in range(len(samples)):
        row, col, height, width = (int(v) for v in full[index]["window"])
        expected = full[index]["label"].clone()
        inside = torch.from_numpy(np.pad(keep[row:row + height, col:col + width],
                                         ((0, size[0] - height), (0, size[1] - width))))
        expected[~inside] = LABEL_NODATA
        assert torch.equal(masked[index]["label"], expected)
        # the teacher's targets (radar validity) are hidden there too, and the item says where
        in_tile = full[index]["valid"]
        assert torch.equal(masked[index]["radar_valid"], full[index]["radar_valid"] & inside)
        assert torch.equal(masked[index]["visible"][in_tile], inside[in_tile])
        assert full[index]["visible"].all()
        # every entry laid out on the tile's pixels moves with augmentation
        grid_keys = {key for key, value in masked[index].items()
                     if torch.is_tensor(value) and tuple(value.shape[-2:]) == size}
        assert grid_keys <= set(SPATIAL_KEYS), grid_keys - set(SPATIAL_KEYS)
    # after a flip or rotation the hidden pixels are still the unlabelled, radar-less ones
    batch = augment_batch(collate([masked[i] for i in range(len(samples))]),
                          torch.Generator().manual_seed(0))
    assert (batch["label"][~batch["visible"]] == LABEL_NODATA).all()
    assert not batch["radar_valid"][~batch["visible"]].any()
    hidden_radar = [(full[i]["radar_valid"] & ~masked[i]["radar_valid"]).any()
                    for i in range(len(samples))]
    assert any(hidden_radar)  # the check above saw radar to hide
    masked_counts = label_class_counts(data.cube, data.tiles, keep)
    full_counts = label_class_counts(data.cube, data.tiles)
    assert (masked_counts <= full_counts).all() and masked_counts.sum() < full_counts.sum()


def test_epochs_draw_a_fresh_budget_of_samples_and_cover_all_of_them_over_epochs():
    from floodkd.distill.loop import make_loader
    from floodkd.distill.settings import TrainingConfig

    class Numbers(torch.utils.data.Dataset):
        def __len__(self):
            return 40

        def __getitem__(self, i):
            return {"i": torch.tensor(i)}

    loader = make_loader(Numbers(), TrainingConfig(samples_per_epoch=16, batch_size=4), True)
    epochs = [torch.cat([b["i"] for b in loader]).tolist() for _ in range(3)]
    assert [len(e) for e in epochs] == [16, 16, 16]
    assert len(set(epochs[0] + epochs[1])) == 32  # no sample twice before all were seen
    assert set().union(*epochs) == set(range(40))  # all seen within ceil(40 / 16) epochs
    every = make_loader(Numbers(), TrainingConfig(samples_per_epoch=0, batch_size=4), True)
    assert sorted(torch.cat([b["i"] for b in every]).tolist()) == list(range(40))
    ordered = make_loader(Numbers(), TrainingConfig(samples_per_epoch=16, batch_size=4), False)
    assert torch.cat([b["i"] for b in ordered]).tolist() == list(range(40))  # validation: all


def test_the_cache_is_read_chunk_by_chunk_and_equals_reading_each_window(
        synthetic_region, monkeypatch):
    import pandas as pd

    data = open_region(synthetic_region.results_dir, synthetic_region.name, ["label"])
    # windows across the cube's 16 px chunks, as overlapping tiles lie, and one at its edge
    tiles = pd.DataFrame({"row_off": [0, 8, 24, 30], "col_off": [8, 0, 20, 36],
                          "height": [16, 16, 16, 16], "width": [16, 16, 12, 12]})
    samples = [(p, t) for t in range(TIMES.size) for p in range(len(tiles))][::-1]
    reads = []

    def counting_read_window(cube, t, row_off, col_off, height, width, variables=None):
        reads.append((t, row_off, col_off))
        return read_window(cube, t, row_off, col_off, height, width, variables)

    monkeypatch.setattr(data_module, "read_window", counting_read_window)
    for student in (True, False):
        reads.clear()
        alone = CubeTileDataset(data.cube_path, tiles, samples, (16, 16), student=student)
        expected = [alone[i] for i in range(len(samples))]
        assert len(reads) == len(samples)
        reads.clear()
        cached = CubeTileDataset(data.cube_path, tiles, samples, (16, 16), cache_mb=64,
                                 student=student)
        for i in range(len(samples)):
            for key, value in expected[i].items():
                torch.testing.assert_close(cached[i][key], value, equal_nan=True, rtol=0, atol=0)
        # one read per time and chunk holding a window's corner: (0, 0), (1, 1), (1, 2)
        assert len(reads) == 3 * TIMES.size


def test_label_counts_of_tiles_across_chunks_are_each_windows_own(synthetic_region):
    import pandas as pd

    data = open_region(synthetic_region.results_dir, synthetic_region.name, ["label"])
    # overlapping windows across the cube's 16 px chunks, as tiles lie, and one in a corner
    tiles = pd.DataFrame({"tile_id": ["a", "b", "c", "d"], "row_off": [0, 8, 20, 40],
                          "col_off": [8, 0, 20, 40], "height": [16, 16, 20, 8],
                          "width": [16, 16, 12, 8], "split": ["train"] * 4})
    mask = np.random.default_rng(0).random((SIZE_PX, SIZE_PX)) < 0.7
    label = data.cube["label"].values
    for pixel_mask in (None, mask):
        counts = label_class_counts(data.cube, tiles, pixel_mask)
        for i, tile in enumerate(tiles.itertuples()):
            rows = slice(tile.row_off, tile.row_off + tile.height)
            cols = slice(tile.col_off, tile.col_off + tile.width)
            keep = True if pixel_mask is None else pixel_mask[rows, cols]
            for value in (0, 1):
                np.testing.assert_array_equal(
                    counts[i, :, value], ((label[:, rows, cols] == value) & keep).sum((1, 2)))
    assert counts[:, RADAR].sum() > 0


def test_labelled_pixels_are_those_labelled_at_a_chosen_time_inside_a_tile(synthetic_region):
    import pandas as pd

    data = open_region(synthetic_region.results_dir, synthetic_region.name, ["label"])
    tiles = pd.DataFrame({"row_off": [4, 30], "col_off": [10, 2], "height": [20, 16],
                          "width": [20, 16]})  # across the cube's 16 px chunks
    chosen = RADAR & (np.arange(TIMES.size) % 2 == 0)
    labelled = (data.cube["label"].values[chosen] != LABEL_NODATA).any(0)
    expected = np.zeros_like(labelled)
    for tile in tiles.itertuples():
        rows = slice(tile.row_off, tile.row_off + tile.height)
        cols = slice(tile.col_off, tile.col_off + tile.width)
        expected[rows, cols] = labelled[rows, cols]
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(labelled_pixels(data.cube, tiles, chosen), expected)


def test_samples_over_the_cache_keep_their_chunks_when_those_fit(synthetic_region, monkeypatch):
    import pandas as pd

    data = open_region(synthetic_region.results_dir, synthetic_region.name, ["label"])
    # six 8 px windows with their corners in the first 16 px chunk, padded to 16 px samples:
    # the samples (6 x 24 planes x 16 x 16 px a time) outgrow 1 MB, their chunk and the
    # windows' reach (24 x 24 px a time) do not
    tiles = pd.DataFrame({"row_off": [0, 0, 8, 8, 4, 2], "col_off": [0, 8, 0, 8, 4, 10],
                          "height": [8] * 6, "width": [8] * 6})
    samples = [(p, t) for t in range(TIMES.size) for p in range(len(tiles))]
    reads = []

    def counting_read_window(cube, t, row_off, col_off, height, width, variables=None):
        reads.append(t)
        return read_window(cube, t, row_off, col_off, height, width, variables)

    monkeypatch.setattr(data_module, "read_window", counting_read_window)
    alone = CubeTileDataset(data.cube_path, tiles, samples, (16, 16))
    kept = CubeTileDataset(data.cube_path, tiles, samples, (16, 16), cache_mb=1.0)
    assert len(samples) * 24 * 16 * 16 * 4 > 2**20 and kept._cache is None
    order = np.random.default_rng(0).permutation(len(samples))
    for i in [*order, *order]:
        for key, value in alone[i].items():
            torch.testing.assert_close(kept[i][key], value, equal_nan=True, rtol=0, atol=0)
    assert len(reads) == 2 * len(samples) + TIMES.size  # alone: each window; kept: each time


def test_samples_that_fit_no_memory_are_spilled_once_and_read_back_unchanged(
        synthetic_region, monkeypatch, tmp_path):
    import os
    import tempfile

    import pandas as pd

    data = open_region(synthetic_region.results_dir, synthetic_region.name, ["label"])
    # windows across the cube's 16 px chunks; 2 kB of memory holds no sample and no chunk
    tiles = pd.DataFrame({"row_off": [0, 8, 24, 30], "col_off": [8, 0, 20, 36],
                          "height": [16, 16, 16, 16], "width": [16, 16, 12, 12]})
    samples = [(p, t) for t in range(TIMES.size) for p in range(len(tiles))]
    reads = []

    def counting_read_window(cube, t, row_off, col_off, height, width, variables=None):
        reads.append(t)
        return read_window(cube, t, row_off, col_off, height, width, variables)

    monkeypatch.setattr(data_module, "read_window", counting_read_window)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    alone = CubeTileDataset(data.cube_path, tiles, samples, (16, 16))
    expected = [alone[i] for i in range(len(samples))]
    reads.clear()
    spilled = CubeTileDataset(data.cube_path, tiles, samples, (16, 16), cache_mb=0.002)
    assert spilled._cache is None and spilled._blocks is None
    order = np.random.default_rng(0).permutation(len(samples))
    for i in [*order, *order]:  # two epochs
        for key, value in expected[i].items():
            torch.testing.assert_close(spilled[i][key], value, equal_nan=True, rtol=0, atol=0)
    assert len(reads) == 3 * TIMES.size  # one read per time and chunk, in the first epoch
    (folder,) = os.listdir(tmp_path)
    assert len(os.listdir(tmp_path / folder)) == len(samples)
    # a DataLoader worker's copy reads the spill; a copy made before it reads windows and
    # never spills (workers are new copies every epoch)
    worker = pickle.loads(pickle.dumps(spilled))
    early = pickle.loads(pickle.dumps(
        CubeTileDataset(data.cube_path, tiles, samples, (16, 16), cache_mb=0.002)))
    reads.clear()
    for i in order[:5]:
        from_spill, from_cube = worker[i], early[i]
        for key, value in expected[i].items():
            torch.testing.assert_close(from_spill[key], value, equal_nan=True, rtol=0, atol=0)
            torch.testing.assert_close(from_cube[key], value, equal_nan=True, rtol=0, atol=0)
    assert len(reads) == 5 and os.listdir(tmp_path) == [folder]
    del spilled, worker
    assert os.listdir(tmp_path) == []  # the spill goes with the dataset that wrote it


def test_a_spill_that_cannot_be_written_says_where_and_what_to_do(
        synthetic_region, monkeypatch, tmp_path):
    import errno
    import os
    import tempfile

    data = open_region(synthetic_region.results_dir, synthetic_region.name, ["label"])

    def disk_full(tensors, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(data_module, "save_file", disk_full)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dataset = CubeTileDataset(data.cube_path, data.tiles, [(0, 0), (1, 0)], (16, 16),
                              cache_mb=0.002)
    with pytest.raises(InputError, match=r"floodkd-samples-.*cannot spill the training "
                       r"samples of .*cube.zarr there \(.*No space left.*TMPDIR"):
        dataset[0]
    assert os.listdir(tmp_path) == []  # nothing half-written is left

    def unreadable(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(dataset, "_read_block", unreadable)
    with pytest.raises(OSError, match="Input/output error"):  # not taken for a full disk
        dataset[0]
    assert os.listdir(tmp_path) == []
