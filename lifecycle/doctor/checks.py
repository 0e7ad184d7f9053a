"""A doctor check is data: what was checked, for which jobs, the verdict, and the fix in words."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

JOBS = ("onboarding", "guest-sweep", "policy-drift", "governance", "redemption-reset")
ALL_JOBS = "all"


class Status(Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    CANNOT_VERIFY = "cannot-verify"


@dataclass(frozen=True, slots=True)
class Check:
    """One finding. ``jobs`` names the jobs that depend on it; ``("all",)`` when every job does."""

    name: str
    status: Status
    detail: str
    jobs: tuple[str, ...] = (ALL_JOBS,)
    fix: str | None = None

    def concerns(self, job: str | None) -> bool:
        return job is None or ALL_JOBS in self.jobs or job in self.jobs

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "jobs": list(self.jobs),
            "detail": self.detail,
            "fix": self.fix,
        }

    def line(self) -> str:
        jobs = ",".join(self.jobs)
        fix = f" | fix: {self.fix}" if self.fix and self.status is not Status.PASS else ""
        return f"{self.status.value:<13} {self.name} [{jobs}]: {self.detail}{fix}"


def for_job(checks: Iterable[Check], job: str | None) -> list[Check]:
    return [check for check in checks if check.concerns(job)]


def exit_code(checks: Sequence[Check]) -> int:
    """0 when every check passes, 1 when any fails, 2 when the worst is a warning or a check that could not
    be verified (a human must look)."""
    statuses = {check.status for check in checks}
    if Status.FAIL in statuses:
        return 1
    if statuses & {Status.WARN, Status.CANNOT_VERIFY}:
        return 2
    return 0


def summary(checks: Sequence[Check]) -> dict[str, int]:
    counts = Counter(check.status.value for check in checks)
    return {status.value: counts.get(status.value, 0) for status in Status}


def render(checks: Sequence[Check], as_json: bool = False) -> str:
    if as_json:
        return json.dumps(
            {"checks": [c.as_json() for c in checks], "summary": summary(checks), "exitCode": exit_code(checks)},
            indent=2,
        )
    counts = summary(checks)
    totals = ", ".join(f"{n} {status}" for status, n in counts.items())
    return "\n".join([*(check.line() for check in checks), f"doctor: {totals} (exit {exit_code(checks)})"])
