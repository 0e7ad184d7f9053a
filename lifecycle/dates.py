"""How the product reads and shows end dates: inclusive last days, stored as the instant access ends."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta


def end_of(value: date | datetime) -> datetime:
    """An end date is inclusive: access ends when that day is over (UTC). A datetime is taken as given."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if value == date.max:  # the day after does not exist; the end of time is beyond every policy anyway
        return datetime.max.replace(tzinfo=UTC)
    return datetime.combine(value + timedelta(days=1), time.min, tzinfo=UTC)


def shown_end(end: datetime) -> str:
    """How an end is shown to people: the inclusive last day they gave (end_of's inverse: an end at midnight
    UTC shows the day before), or, for an end given as a time of day, that time."""
    end = (end if end.tzinfo else end.replace(tzinfo=UTC)).astimezone(UTC)
    if end == datetime.max.replace(tzinfo=UTC):
        return date.max.isoformat()
    if end.time() == time.min:
        return (end.date() - timedelta(days=1)).isoformat()
    return end.isoformat()


def latest_last_day(latest: datetime) -> str:
    """The last whole day that ends by ``latest``: the latest end date a ticket may give."""
    return (latest.astimezone(UTC).date() - timedelta(days=1)).isoformat()
