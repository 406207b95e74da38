"""Calendar arithmetic in an exam's time zone: the rules count in local days, months and years.

"Valid one year" (KZ-8), "no earlier than one month later" (KZ-9) and "on the day the result was
shown" (UA-16) are statements about the calendar where the exam is held, not about multiples of
86 400 seconds. Instants stay UTC epoch seconds everywhere else; only these helpers turn them into
local dates and back.
"""

from __future__ import annotations

import calendar
import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.exceptions import ConfigError
from engine.model import Exam

TIMEZONE_SETTING = "timezone"
"""The exam file's ``[exam.settings]`` key that overrides a scheme's default time zone."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or a `ConfigError` saying which name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r} (use an IANA name such as 'Europe/Kyiv')"
        ) from None


def exam_zone(exam: Exam, default: str) -> ZoneInfo:
    """The exam's time zone: its ``timezone`` setting, else the scheme's `default`."""
    name = exam.settings.get(TIMEZONE_SETTING, default)
    if not isinstance(name, str):
        raise ConfigError(f"exam {exam.id!r}: settings.timezone must be a string, got {name!r}")
    return zone(name)


def local_date(at: float, tz: ZoneInfo) -> datetime.date:
    """The calendar date in `tz` at the instant `at`."""
    return datetime.datetime.fromtimestamp(at, tz).date()


def local_text(at: float, tz: ZoneInfo) -> str:
    """`at` as ``DD.MM.YYYY HH:MM`` local time: how documents in both countries write it."""
    return datetime.datetime.fromtimestamp(at, tz).strftime("%d.%m.%Y %H:%M")


def day_text(day: datetime.date | str) -> str:
    """A date (or an ISO date string) as ``DD.MM.YYYY``."""
    if isinstance(day, str):
        day = datetime.date.fromisoformat(day)
    return day.strftime("%d.%m.%Y")


def start_of_day(day: datetime.date, tz: ZoneInfo) -> float:
    """The instant local midnight begins `day` (correct across daylight-saving changes)."""
    return datetime.datetime.combine(day, datetime.time(0, 0), tzinfo=tz).timestamp()


def end_of_day(day: datetime.date, tz: ZoneInfo) -> float:
    """The first instant after `day` ends: anything before it happened on `day` or earlier."""
    return start_of_day(day + datetime.timedelta(days=1), tz)


def add_months(day: datetime.date, months: int) -> datetime.date:
    """The same day `months` later, or the month's last day when it has no such day (31 → 30)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return datetime.date(year, month + 1, min(day.day, last))


def add_years(day: datetime.date, years: int) -> datetime.date:
    """The same day `years` later; 29 February becomes 28 February in a common year."""
    return add_months(day, 12 * years)
