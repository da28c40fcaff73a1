"""When a recurring round fires: cron expressions read with APScheduler's CronTrigger in the
partnership's time zone.

Cron fields are ANDed, as APScheduler does, so ``0 9 1-7 * mon`` is the first Monday of the
month. On the autumn DST change APScheduler would fire a wall-clock time that happens twice
twice; :func:`next_occurrence` drops the second one. A spring-forward time that does not exist
fires once, an hour later.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.rounds.services import RoundError


def parse_cron(expression: str, zone: ZoneInfo) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(expression.strip(), timezone=zone)
    except (ValueError, TypeError) as exc:
        raise RoundError("bad_cron", cron=expression, error=str(exc)) from None


def next_occurrence(
    trigger: CronTrigger, zone: ZoneInfo, after: datetime, *, previous: datetime | None = None
) -> datetime | None:
    """The first firing strictly after `after` (UTC), never the same wall-clock time twice."""
    prev_local = previous.astimezone(zone).replace(tzinfo=None) if previous else None
    moment = after
    for _ in range(10):
        nxt = trigger.get_next_fire_time(moment, moment)
        if nxt is None:
            return None
        if nxt <= after:
            moment = nxt + timedelta(seconds=1)
            continue
        local = nxt.astimezone(zone).replace(tzinfo=None)
        after_local = after.astimezone(zone).replace(tzinfo=None)
        if local in (prev_local, after_local):
            # The autumn hour repeats: 01:30 BST and 01:30 GMT are one local 01:30.
            moment = nxt
            continue
        return nxt.astimezone(ZoneInfo("UTC"))
    return None


def occurrences(expression: str, zone: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    trigger = parse_cron(expression, zone)
    found: list[datetime] = []
    moment = after - timedelta(microseconds=1)
    while len(found) < count:
        nxt = next_occurrence(trigger, zone, moment, previous=found[-1] if found else None)
        if nxt is None:
            break
        found.append(nxt)
        moment = nxt
    return found
