"""Settings as frozen dataclasses, built from config blocks that must not carry typos."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Self

from floodkd.errors import InputError

__all__ = ["Settings", "settings_from_config"]


class Settings:
    """Mixin for a frozen dataclass of settings: ``to_dict`` and a strict ``from_dict``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Build from a dict; an unknown key is a ValueError so typos do not pass silently."""
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}; "
                             f"known: {sorted(known)}")
        return cls(**values)


def settings_from_config(cls: type[Settings], config: dict[str, Any], block: str) -> Any:
    """``cls`` built from the config's ``block`` (defaults for keys it leaves out); an unknown
    key is an InputError naming the block."""
    try:
        return cls.from_dict(dict(config.get(block) or {}))
    except ValueError as error:
        raise InputError("config", f"the '{block}' block: {error}",
                         "correct the key; config/README.md lists them") from error
