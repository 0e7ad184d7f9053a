"""Graph's identity throttling model (graph-contract.md section 12) as token buckets.

Buckets: resource units per (app, tenant) sized by tenant size per 10 s; writes per (app, tenant) per 150 s;
invitations per tenant per 5 s. Buckets refill continuously, so Retry-After is the exact (fractional) time
until the request would fit. Time compression shrinks every window by its factor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

RU_WINDOW_SECONDS = 10.0
WRITE_QUOTA, WRITE_WINDOW_SECONDS = 3000, 150.0
INVITE_QUOTA, INVITE_WINDOW_SECONDS = 150, 5.0
REPORT_FROM = 0.8  # x-ms-throttle-limit-percentage appears once this share of a bucket is used


def resource_unit_quota(user_count: int) -> int:
    """S < 50 users, M 50-500, L > 500."""
    if user_count < 50:
        return 3500
    if user_count <= 500:
        return 5000
    return 8000


def request_cost(method: str, resource: str, query: dict[str, str]) -> tuple[int, int]:
    """(resource units, writes) for one request; resource is the route's resource family."""
    if method != "GET":
        return 1, 1
    base = {"users": 2, "groupMembers": 3, "groupTransitiveMembers": 5}.get(resource, 1)
    if "$select" in query:
        base -= 1
    if "$expand" in query:
        base += 1
    top = query.get("$top", "")
    if top.isdigit() and int(top) < 20:
        base -= 1
    return max(base, 1), 0


@dataclass(slots=True)
class Bucket:
    capacity: float
    window: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        rate = self.capacity / self.window
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * rate)
        self.updated = now

    def used_share(self) -> float:
        return 1.0 - self.tokens / self.capacity


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0
    scope: str = ""
    information: str = ""
    limit_percentage: float | None = None


class Throttler:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, ...], Bucket] = {}

    def reset(self) -> None:
        self._buckets.clear()

    def _bucket(self, key: tuple[str, ...], capacity: float, window: float) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None or bucket.capacity != capacity or bucket.window != window:
            bucket = Bucket(capacity, window, capacity, self._clock())
            self._buckets[key] = bucket
        bucket.refill(self._clock())
        return bucket

    def check(
        self,
        *,
        app_id: str,
        tenant_id: str,
        user_count: int,
        resource_units: int,
        writes: int,
        is_invitation: bool,
        compression: float,
        quota_scale: float,
    ) -> Verdict:
        """Charge the request to every bucket it belongs to, or refuse it without charging anything."""
        plan: list[tuple[Bucket, float, str, str]] = []
        ru = self._bucket(
            ("ru", app_id, tenant_id),
            max(resource_unit_quota(user_count) * quota_scale, 1.0),
            RU_WINDOW_SECONDS / compression,
        )
        plan.append(
            (ru, resource_units, f"Tenant_Application/ReadWrite/{app_id}/{tenant_id}", "ResourceUnitLimitExceeded")
        )
        if writes:
            write = self._bucket(
                ("write", app_id, tenant_id), max(WRITE_QUOTA * quota_scale, 1.0), WRITE_WINDOW_SECONDS / compression
            )
            plan.append((write, writes, f"Tenant_Application/Write/{app_id}/{tenant_id}", "WriteLimitExceeded"))
        if is_invitation:
            invite = self._bucket(
                ("invite", tenant_id), max(INVITE_QUOTA * quota_scale, 1.0), INVITE_WINDOW_SECONDS / compression
            )
            plan.append((invite, 1, f"Tenant/Write/{app_id}/{tenant_id}", "RequestLimitExceeded"))
        for bucket, cost, scope, information in plan:
            if bucket.tokens < cost:
                wait = (cost - bucket.tokens) / (bucket.capacity / bucket.window)
                return Verdict(False, retry_after=max(wait, 0.001), scope=scope, information=information)
        for bucket, cost, _, _ in plan:
            bucket.tokens -= cost
        share = max(bucket.used_share() for bucket, _, _, _ in plan)
        return Verdict(True, limit_percentage=round(share, 2) if share >= REPORT_FROM else None)
