"""Times that files do not carry themselves: the config's ``times`` tables and bare dates.

Real files often lack a time: a Sen1Floods11 chip has neither an ESA product name nor a
time tag. Every raster modality takes a ``times`` table (file name -> ISO 8601 UTC) in its
config block. A date without a time of day is accepted, but the assumption (00:00 UTC) is
logged with the file, because a pass at 06:00 and an overpass at 10:50 of the same day would
otherwise look simultaneous without anyone having said so.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path

from floodkd.errors import InputError
from floodkd.ingest.rasters import parse_time

__all__ = ["is_date_only", "parse_logged_time", "listed_time"]

log = logging.getLogger(__name__)

_DATE_ONLY = re.compile(r"^\s*(\d{4}-\d{2}-\d{2}|\d{8})\s*$")


def is_date_only(text: str) -> bool:
    """True for ``2019-09-17`` or ``20190917``: a date with no time of day."""
    return bool(_DATE_ONLY.match(str(text)))


def parse_logged_time(text: str, path: Path | str, where: str) -> datetime:
    """``text`` as a naive UTC time; a bare date is taken as 00:00 UTC with a warning naming
    ``path`` and ``where`` (the config key or column it came from). ValueError if not a time."""
    time = parse_time(str(text))
    if is_date_only(text):
        log.warning("%s: %s gives the date '%s' without a time of day; assuming 00:00 UTC "
                    "(write e.g. '%sT06:00:00Z' if the time is known)",
                    path, where, str(text).strip(), time.strftime("%Y-%m-%d"))
    return time


def listed_time(path: Path, times: dict[str, str], modality: str) -> datetime | None:
    """The time the config table ``inputs.<modality>.times`` gives ``path`` (by file name or
    full path), None when it is not listed; an entry that is not a time is refused."""
    listed = times.get(path.name, times.get(str(path)))
    if listed is None:
        return None
    key = f"config inputs.{modality}.times"
    try:
        return parse_logged_time(listed, path, key)
    except ValueError as error:
        raise InputError(
            path, f"{key} gives '{listed}', which is not a time",
            "write the time as ISO 8601 UTC, e.g. 2021-03-04T05:06:07Z",
        ) from error
