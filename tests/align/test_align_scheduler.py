"""Which Dask scheduler align uses, and the error when a cluster does not answer."""

from __future__ import annotations

import pytest

from floodkd.align.cli import SCHEDULER_VARIABLE, dask_scheduler, scheduler_address
from floodkd.errors import InputError


def test_the_config_names_the_scheduler_before_the_environment(monkeypatch):
    monkeypatch.setenv(SCHEDULER_VARIABLE, "tcp://from-env:8786")
    assert scheduler_address({"align": {"dask_scheduler": "tcp://from-config:8786"}}) == \
        "tcp://from-config:8786"
    assert scheduler_address({"align": {"dask_scheduler": None}}) == "tcp://from-env:8786"
    monkeypatch.delenv(SCHEDULER_VARIABLE)
    assert scheduler_address({"align": {}}) is None


def test_an_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(InputError) as caught, dask_scheduler("tcp://127.0.0.1:9", 1):
        pass
    assert caught.value.path == "tcp://127.0.0.1:9"
    assert "no Dask scheduler answered" in caught.value.problem
    assert SCHEDULER_VARIABLE in caught.value.fix
