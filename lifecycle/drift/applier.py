"""Carry out a drift plan. Each action stands alone: one that fails is reported and the rest still apply.

Every attempt is written to the audit log with the before and after values of its fields, whether it
landed or not, so the trail shows what was tried as well as what changed. Nothing is retried here: a
failed setting is still drift on the next run, which picks it up. Partner policies go first, and the
default's lockdown is held back while a partner's policy failed, so a partial apply never locks a partner
out of invitations until the next run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from lifecycle import progress
from lifecycle.drift import planner
from lifecycle.drift.fields import UnmanagedWrite, assert_managed
from lifecycle.drift.ports import TenantPolicies
from lifecycle.drift.report import WRITABLE_CHANGES, ApplyResult, DriftRun
from lifecycle.errors import GraphError
from lifecycle.models import AuditEntry
from lifecycle.plans import Action, Change
from lifecycle.ports import AuditLog, Clock

log = structlog.get_logger(__name__)


Applier = Callable[[Action], Awaitable[None]]


async def apply_plan(
    run: DriftRun,
    tenant: TenantPolicies,
    audit: AuditLog,
    clock: Clock,
    appliers: Mapping[str, Applier] | None = None,
) -> None:
    """Apply every writable action of ``run`` (nothing when a guardrail refused); fills ``run.results``.

    ``appliers`` carry out the actions of areas planned in their own modules, by resource."""
    if run.refusals:
        return
    partner_failed = False
    writes = [a for a in _partners_first(run.drift) if a.change in WRITABLE_CHANGES]
    if not writes:
        return
    with progress.step("applying policy changes", total=len(writes), unit="change") as applied:
        for action in writes:
            if action.resource == planner.DEFAULT and partner_failed:
                error = {"heldBack": HELD}
                result = ApplyResult(action.resource, action.key, action.change.value, ok=False, error=error)
                log.warning("drift.apply.held-back", resource=action.resource, reason=HELD)
            else:
                result = await _attempt(action, tenant, appliers or {})
                partner_failed |= action.resource == planner.PARTNERS and not result.ok
            run.results.append(result)
            await audit.record(_audit_entry(run, action, result, clock))
            applied.advance()


HELD = "a partner policy could not be written; the default waits for the next run so no partner is locked out"


def _partners_first(actions: list[Action]) -> list[Action]:
    """Partner policies that let partners in land before the default locks inbound down (stable otherwise)."""
    return sorted(actions, key=lambda a: not (a.resource == planner.PARTNERS and a.change is not Change.DELETE))


async def _attempt(action: Action, tenant: TenantPolicies, appliers: Mapping[str, Applier]) -> ApplyResult:
    try:
        if action.resource in appliers:
            await appliers[action.resource](action)
        else:
            if action.resource in (planner.DEFAULT, planner.PARTNERS):
                # Only managed fields ever leave: an unmanaged or unknown property someone else set must survive.
                assert_managed(action.payload.get("body", {}), allowed=frozenset({"tenantId"}))
            await _apply(action, tenant)
    except UnmanagedWrite as refused:
        log.error("drift.apply.unmanaged-write", resource=action.resource, key=action.key, error=str(refused))
        error = {"code": "unmanaged-write", "message": str(refused)}
        return ApplyResult(action.resource, action.key, action.change.value, ok=False, error=error)
    except GraphError as error:
        log.warning("drift.apply.failed", resource=action.resource, key=action.key, **error.describe())
        described = error.describe()
        inherited = _inherited(action)
        if inherited and described.get("status") == 400:
            described["inheritRefused"] = INHERIT_REFUSED.format(", ".join(inherited))
        return ApplyResult(action.resource, action.key, action.change.value, ok=False, error=described)
    log.info("drift.apply.done", resource=action.resource, key=action.key, change=action.change.value)
    return ApplyResult(action.resource, action.key, action.change.value, ok=True)


async def _apply(action: Action, tenant: TenantPolicies) -> None:
    body: dict[str, Any] = action.payload.get("body", {})
    match action.resource, action.change:
        case planner.DEFAULT, Change.UPDATE:
            await tenant.update_default(body)
        case planner.PARTNERS, Change.CREATE:
            await tenant.create_partner(body)
        case planner.PARTNERS, Change.UPDATE:
            await tenant.update_partner(action.key, body)
        case planner.PARTNERS, Change.DELETE:
            await tenant.delete_partner(action.key)
        case planner.AUTHORIZATION, Change.UPDATE:
            await tenant.update_authorization_policy(body)
        case planner.DOMAIN_LIST, Change.CREATE:
            await tenant.create_b2b_management_policy(body)
        case planner.DOMAIN_LIST, Change.UPDATE:
            await tenant.update_b2b_management_policy(action.payload["id"], body)
        case planner.FEDERATION, Change.CREATE:
            await tenant.create_federation(body)
        case planner.FEDERATION, Change.UPDATE:
            if body:
                await tenant.update_federation(action.payload["id"], body)
            for domain in action.payload.get("addDomains", []):
                await tenant.add_federation_domain(action.payload["id"], domain)
        case _:
            raise ValueError(f"no way to apply {action.change.value} on {action.resource}")


INHERIT_REFUSED = (
    "Graph refused setting {} back to null (inherit the default); the pages do not say a PATCH may send null. "
    "Choose the default settings for the partner in the admin center, or write the default's values into the file"
)


def _inherited(action: Action) -> list[str]:
    """The blocks a partner update sends as null: the partner goes back to inheriting the default for them."""
    if action.resource != planner.PARTNERS or action.change is not Change.UPDATE:
        return []
    return sorted(name for name, value in action.payload.get("body", {}).items() if value is None)


def _audit_entry(run: DriftRun, action: Action, result: ApplyResult, clock: Clock) -> AuditEntry:
    return AuditEntry(
        at=clock.now(),
        action=f"policy-drift.{action.change.value}",
        target=f"{action.resource}/{action.key}",
        reason=action.reason if result.ok else f"failed: {action.reason}",
        key=f"{run.run_id}:{action.resource}/{action.key}",
        run_id=run.run_id,
        details={
            "status": "applied" if result.ok else "failed",
            "before": {d.field: d.actual for d in action.diffs},
            "after": {d.field: d.desired for d in action.diffs},
            "error": result.error,
            "waived": action.payload.get("waived", []),
        },
    )
