"""The CLI's pure helpers: scenarios from config, checkpoint hash, input flags, level overrides."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
import xarray as xr
from safetensors.torch import save_file

from floodkd.errors import InputError
from floodkd.models.checkpoint import tensors_sha256
from floodkd.predict.cli import apply_scenario, checkpoint_sha256, input_flags, resolve_scenario

CONFIG = {"predict": {"scenarios": {"surge": {"water_level_offset_m": 1.5},
                                    "storm2050": {"water_level_m": 3.2},
                                    "broken": {"water_level_m": 1, "water_level_offset_m": 1}}}}


def test_scenarios_resolve_and_unknown_names_fail():
    assert resolve_scenario(CONFIG, "observed") == {}
    assert resolve_scenario(CONFIG, "surge") == {"water_level_offset_m": 1.5}
    with pytest.raises(InputError, match="unknown scenario 'nope'.*observed, storm2050"):
        resolve_scenario(CONFIG, "nope")
    with pytest.raises(InputError, match="exactly one of"):
        resolve_scenario(CONFIG, "broken")


def test_checkpoint_hash_covers_all_members_by_tensor_content(tmp_path):
    with pytest.raises(InputError, match="no \\*.safetensors"):
        checkpoint_sha256(tmp_path)
    save_file({"w": torch.ones(3)}, str(tmp_path / "member-0.safetensors"), metadata={"a": "1"})
    first = checkpoint_sha256(tmp_path)
    expected = f"member-0.safetensors:{tensors_sha256({'w': torch.ones(3)})}\n"
    assert first == hashlib.sha256(expected.encode()).hexdigest()
    # other metadata, same tensors: the same hash
    save_file({"w": torch.ones(3)}, str(tmp_path / "member-0.safetensors"), metadata={"b": "2"})
    assert checkpoint_sha256(tmp_path) == first
    save_file({"w": torch.zeros(3)}, str(tmp_path / "member-1.safetensors"))
    assert checkpoint_sha256(tmp_path) != first


def _window() -> xr.Dataset:
    return xr.Dataset({
        "elevation_m": (("y", "x"), np.array([[1.0, np.nan], [2.0, 3.0]])),
        "clear_sky": (("y", "x"), np.array([[1, 0], [1, 1]], dtype=np.uint8)),
        "water_level_m": (("y", "x"), np.full((2, 2), 0.5)),
        "gauge_history_m": (("gauge", "lag"), np.array([[0.1, 0.3, 0.5]])),
        "gauge_present": ((), False),
    })


def test_input_flags_per_pixel():
    flags = input_flags(_window(), {"optical": True, "gauge": True, "gcm": False})
    np.testing.assert_array_equal(flags, [[1 | 2 | 8, 2], [1 | 2 | 8, 1 | 2 | 8]])


def test_water_level_overrides():
    shifted = apply_scenario(_window(), {"water_level_offset_m": 1.5})
    np.testing.assert_allclose(shifted["water_level_m"], 2.0)
    np.testing.assert_allclose(shifted["gauge_history_m"], [[1.6, 1.8, 2.0]])
    fixed = apply_scenario(_window(), {"water_level_m": 3.2})
    np.testing.assert_allclose(fixed["water_level_m"], 3.2)
    np.testing.assert_allclose(fixed["gauge_history_m"], [[2.8, 3.0, 3.2]])
    assert bool(fixed["gauge_present"])


def test_water_level_overrides_without_an_observed_level():
    window = _window()
    window["water_level_m"][:] = np.nan  # no gauge value at this hour
    window["gauge_history_m"][:] = np.nan
    fixed = apply_scenario(window, {"water_level_m": 3.2})
    np.testing.assert_allclose(fixed["water_level_m"], 3.2)  # never NaN, so never read as 0 m
    np.testing.assert_allclose(fixed["gauge_history_m"], 3.2)
    with pytest.raises(InputError, match="needs an observed water level"):
        apply_scenario(window, {"water_level_offset_m": 1.0})
