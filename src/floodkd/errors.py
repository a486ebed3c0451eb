"""The one error type users see for bad input: it names the file, the problem and the fix."""

from __future__ import annotations

from pathlib import Path

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input data or configuration.

    The message always reads ``<file>: <problem>. Fix: <fix>`` so a user knows
    which file to look at and what to do about it.
    """

    def __init__(self, path: str | Path, problem: str, fix: str):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}. Fix: {fix}")
