"""The config schema: the shipped config validates; broken configs name the bad key."""

import copy
from pathlib import Path

import pytest
import yaml

from floodkd.config import load_config, region_config, validate_config
from floodkd.errors import InputError

CONFIG = Path(__file__).parents[1] / "config" / "config.yaml"


def shipped() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_shipped_config_validates_and_gets_defaults():
    config = load_config(CONFIG)
    assert set(config["regions"]) == {"demo-source", "demo-target"}
    assert config["align"]["tile_px"] == 64  # a default filled in from the schema
    assert config["regions"]["demo-target"]["inputs"]["gcm"]["buffer_cells"] == 2


def test_unknown_key_is_rejected_with_its_name():
    config = shipped()
    config["regions"]["demo-target"]["inputs"]["sar"]["unitz"] = "dB"
    with pytest.raises(InputError, match=r"regions\.demo-target\.inputs\.sar.*'unitz'"):
        validate_config(config)


def test_missing_input_glob_is_rejected_with_its_name():
    config = shipped()
    del config["regions"]["demo-source"]["inputs"]["sar"]["glob"]
    with pytest.raises(InputError, match=r"regions\.demo-source\.inputs\.sar.*'glob'"):
        validate_config(config)


def test_region_names_must_be_safe_for_paths():
    config = shipped()
    config["regions"]["../etc"] = copy.deepcopy(config["regions"]["demo-source"])
    with pytest.raises(InputError, match="regions"):
        validate_config(config)


def test_unknown_region_lists_the_known_ones():
    with pytest.raises(InputError, match="demo-source, demo-target"):
        region_config(load_config(CONFIG), "nowhere")


def test_missing_config_file_names_it(tmp_path):
    with pytest.raises(InputError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
