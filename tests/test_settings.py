"""Settings dataclasses round-trip through dicts and refuse unknown keys (typos in the config)."""

import pytest

from floodkd.distill.settings import TrainingConfig
from floodkd.errors import InputError
from floodkd.evaluate.evaluate import EvaluateConfig
from floodkd.models.student import StudentConfig
from floodkd.models.teacher import TeacherConfig
from floodkd.settings import settings_from_config


@pytest.mark.parametrize("config_class", [TeacherConfig, StudentConfig, TrainingConfig,
                                          EvaluateConfig])
def test_round_trip_and_unknown_keys(config_class):
    config = config_class()
    assert config_class.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="hiden_size"):
        config_class.from_dict({"hiden_size": 8})


def test_config_block_defaults_and_errors_name_the_block():
    assert settings_from_config(TrainingConfig, {}, "training") == TrainingConfig()
    assert settings_from_config(TrainingConfig, {"training": {"seed": 3}}, "training").seed == 3
    with pytest.raises(InputError, match="'training' block.*'epochz'"):
        settings_from_config(TrainingConfig, {"training": {"epochz": 1}}, "training")


def test_training_and_model_defaults_live_only_in_the_dataclasses():
    """One place for defaults: the schema checks types and ranges, never fills these in."""
    from floodkd.config import validate_config

    config = validate_config({"regions": {"r": {
        "role": "target", "bbox": [0, 0, 1, 1],
        "inputs": {"sar": {"glob": "s1/*.tif"}, "terrain": {"glob": "dem/*.tif"}}}}})
    assert config["training"] == {} and config["models"] == {"teacher": {}, "student": {}}
    assert settings_from_config(TrainingConfig, config, "training") == TrainingConfig()
