"""The standard library's date and time types, taken from its C module.

``import datetime`` runs the pure-Python implementation of every class in
``datetime.py`` (about 0.7 ms of each start) and then replaces them all with those of
the C module ``_datetime``: the classes are the same objects either way
(``datetime.datetime is _datetime.datetime``), so the modules a run imports take them
from here. Where there is no C module, they come from :mod:`datetime`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import UTC, date, datetime, time, timedelta, timezone
else:
    try:
        from _datetime import UTC, date, datetime, time, timedelta, timezone
    except ImportError:  # a Python without the C module
        from datetime import UTC, date, datetime, time, timedelta, timezone

__all__ = ["UTC", "date", "datetime", "time", "timedelta", "timezone"]
