"""Load and validate the workflow configuration (the same schema Snakemake uses)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from floodkd.errors import InputError

__all__ = ["load_config", "validate_config", "region_config"]

SCHEMA_PATH = Path(str(files("floodkd") / "schema.yaml"))


def _with_defaults(validator_class):
    """A validator that also fills in schema defaults (as snakemake.utils.validate does)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def validate_config(config: dict[str, Any], source: str | Path = "config") -> dict[str, Any]:
    """Fill defaults into ``config`` and check it; raise InputError naming the bad key."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    errors = sorted(
        _with_defaults(Draft202012Validator)(schema).iter_errors(config), key=lambda e: e.path
    )
    if errors:
        error = errors[0]
        key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        raise InputError(
            source,
            f"config key '{key}': {error.message}",
            "correct that key; config/README.md explains every key",
        )
    return config


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file, validate it and fill defaults."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "config file not found", "pass --config with an existing YAML file")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise InputError(path, f"not valid YAML ({error})", "fix the YAML syntax") from error
    return validate_config(config, path)


def region_config(config: dict[str, Any], region: str) -> dict[str, Any]:
    """The block of one region, or an error listing the regions that exist."""
    try:
        return config["regions"][region]
    except KeyError:
        known = ", ".join(sorted(config["regions"]))
        raise InputError(
            "config", f"unknown region '{region}'", f"use one of: {known}"
        ) from None
