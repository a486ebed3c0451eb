"""Model sizes round-trip through dicts and refuse unknown keys (typos in the config)."""

import pytest

from floodkd.models.student import StudentConfig
from floodkd.models.teacher import TeacherConfig


@pytest.mark.parametrize("config_class", [TeacherConfig, StudentConfig])
def test_round_trip_and_unknown_keys(config_class):
    config = config_class()
    assert config_class.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="hiden_size"):
        config_class.from_dict({"hiden_size": 8})
