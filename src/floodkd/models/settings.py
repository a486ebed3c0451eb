"""Model sizes as frozen dataclasses, built from config dicts that must not carry typos."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Self

__all__ = ["Settings"]


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
