"""When a schedule's ticks fall: cron expressions, fixed intervals, time zones (CONTRACT.md §10).

Pure functions, no I/O. A tick is a wall-clock time in ms since the epoch (UTC).

- ``cron``: five standard fields (minute hour day-of-month month day-of-week), evaluated in the
  schedule's IANA ``timezone`` by `cronsim <https://pypi.org/project/cronsim/>`_, which follows
  Debian's cron through DST changes: a tick in the hour skipped by a spring-forward fires right
  after the change, a fixed-time tick in the hour repeated by a fall-back fires once, and a
  wildcard-hour expression (``*/30 * * * *``) keeps firing on real time.
- ``every_s``: every ``every_s`` seconds, on multiples of the interval since the Unix epoch
  (``every_s=60`` fires on each whole minute UTC), so ticks are the same however the
  schedule was created or the service restarted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ._checks import invalid_field

__all__ = [
    "MAX_CATCHUP_WINDOW_S",
    "OVERLAPS",
    "check_timing",
    "next_tick",
    "tick_iso",
    "ticks_between",
]

OVERLAPS = ("skip", "buffer_one", "buffer_all", "cancel_other", "allow_all")
"""What a tick does while an earlier play of the schedule has not ended."""
MAX_CATCHUP_WINDOW_S = 366 * 86400
MAX_EVERY_S = 366 * 86400


def check_timing(
    *, cron: str, every_s: int, timezone: str, overlap: str, catchup_window_s: int, context: str
) -> ZoneInfo:
    """Refuse a bad timing with -32602 naming the field and the fix; the zone when all is well."""
    if bool(cron.strip()) == bool(every_s):
        msg = "cron"
        why = (
            "give exactly one of cron (five fields, e.g. '0 9 * * 1-5') or every_s (seconds), "
            + ("not both" if cron.strip() else "got neither")
        )
        raise invalid_field(msg, why, context=context)
    if every_s and (isinstance(every_s, bool) or not isinstance(every_s, int) or not 1 <= every_s <= MAX_EVERY_S):
        msg = "every_s"
        raise invalid_field(msg, f"must be a whole number of seconds from 1 to {MAX_EVERY_S}, got {every_s!r}", context=context)
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        msg = "timezone"
        raise invalid_field(msg, f"unknown time zone {timezone!r}: use an IANA name such as 'UTC' or 'Europe/Paris'", context=context) from None
    if cron.strip():
        fields = cron.split()
        if len(fields) != 5:
            msg = "cron"
            why = f"must have five fields (minute hour day-of-month month day-of-week), got {len(fields)} in {cron!r}"
            raise invalid_field(msg, why, context=context)
        try:
            CronSim(cron, datetime(2000, 1, 1, tzinfo=zone))
        except CronSimError as exc:
            msg = "cron"
            raise invalid_field(msg, f"{cron!r} is not a cron expression ({exc}): e.g. '*/15 * * * *' or '0 9 * * 1-5'", context=context) from None
    if overlap not in OVERLAPS:
        msg = "overlap"
        raise invalid_field(msg, f"unknown policy {overlap!r}; one of: {', '.join(OVERLAPS)}", context=context)
    if isinstance(catchup_window_s, bool) or not isinstance(catchup_window_s, int) or not 0 <= catchup_window_s <= MAX_CATCHUP_WINDOW_S:
        msg = "catchup_window_s"
        why = f"must be 0 (fire no late tick) to {MAX_CATCHUP_WINDOW_S} seconds, got {catchup_window_s!r}"
        raise invalid_field(msg, why, context=context)
    return zone


def next_tick(*, cron: str, every_s: int, timezone: str, after_ms: int) -> int:
    """The first tick strictly after ``after_ms``."""
    if every_s:
        period = every_s * 1000
        return (after_ms // period + 1) * period
    zone = ZoneInfo(timezone)
    start = datetime.fromtimestamp(after_ms // 1000, tz=zone)  # cronsim looks at whole seconds
    for fire in CronSim(cron, start):
        at = int(fire.timestamp() * 1000)
        if at > after_ms:
            return at
    msg = f"cron {cron!r} never fires again"  # pragma: no cover - cronsim iterates for ever
    raise ValueError(msg)


def ticks_between(*, cron: str, every_s: int, timezone: str, start_ms: int, end_ms: int, limit: int) -> list[int]:
    """The ticks in ``[start_ms, end_ms)``, at most ``limit + 1`` of them (so a caller sees
    when there are more than ``limit``)."""
    ticks: list[int] = []
    at = next_tick(cron=cron, every_s=every_s, timezone=timezone, after_ms=start_ms - 1)
    while at < end_ms and len(ticks) <= limit:
        ticks.append(at)
        at = next_tick(cron=cron, every_s=every_s, timezone=timezone, after_ms=at)
    return ticks


def tick_iso(tick_ms: int) -> str:
    """A tick as ISO 8601 UTC: ``2025-03-09T07:00:00Z`` (milliseconds only when it has some)."""
    moment = datetime.fromtimestamp(tick_ms / 1000, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if tick_ms % 1000:
        text += f".{tick_ms % 1000:03d}"
    return text + "Z"
