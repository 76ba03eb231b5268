"""The office's clock: "today" and "now" in the office's time zone.

Business dates, the dates printed on exports and the names of exported files
follow the office's day (Beijing's by default), whatever zone the server's
clock is set to. Stored timestamps stay in UTC.
"""
from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"

#: the settings' ``timezone``, once the app or the command line has loaded them (see :func:`configure`)
_configured: str | None = None


def configure(name: str | None) -> None:
    """Make ``name`` the office's zone for this process: the settings' ``timezone`` (RENEWAL_TIMEZONE or
    the config file), given by the app and the command line when they load their settings."""
    global _configured
    _configured = name or None


def office_zone(name: str | None = None) -> dt.tzinfo:
    """The office's time zone: ``name``, else the configured one, else ``RENEWAL_TIMEZONE``, else Asia/Shanghai."""
    name = name or _configured or os.environ.get("RENEWAL_TIMEZONE") or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.timezone(dt.timedelta(hours=8), "CST")  # no tz database on the machine: China Standard Time


def utcnow() -> dt.datetime:
    """The current instant (aware, UTC). Tests replace this one function to move the clock."""
    return dt.datetime.now(dt.timezone.utc)


def office_now(zone: str | None = None) -> dt.datetime:
    """The current time in the office's zone (aware)."""
    return utcnow().astimezone(office_zone(zone))


def office_today(zone: str | None = None) -> dt.date:
    """The office's calendar date now."""
    return office_now(zone).date()
