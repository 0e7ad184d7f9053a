"""The audit row of a braked daily run's step (planned, braked, approved, dispatched, halted, ...): the sweep's
and the redemption reset's, with the run's summary in its details."""

from __future__ import annotations

from typing import Any

from lifecycle.models import AuditEntry
from lifecycle.runs.model import DailyRun
from lifecycle.services import Services


async def audit_run(services: Services, run: DailyRun, action: str, reason: str, **details: Any) -> None:
    await services.audit.record(
        AuditEntry(
            at=services.clock.now(),
            action=action,
            target=run.run_id,
            reason=reason,
            run_id=run.run_id,
            details={**run.summary(), **details},
        )
    )
