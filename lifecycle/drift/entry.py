"""Policy drift's entry points, for function_app.py (the hourly timer) and the CLI.

The tenant gateway and the report store are the bundle's ``DriftPorts``, built by the composition root
(app.bootstrap.compose_services: graph.policies and adapters.drift_reports in Azure, fakes in tests).
"""

from __future__ import annotations

import uuid

import structlog

from lifecycle.drift.applier import apply_plan
from lifecycle.drift.desired import desired_policies
from lifecycle.drift.planner import plan_policies, read_tenant
from lifecycle.drift.ports import DriftPorts
from lifecycle.drift.report import DriftReport, DriftRun, Mode
from lifecycle.services import Services

log = structlog.get_logger(__name__)


def drift_ports(services: Services) -> DriftPorts:
    ports = services.jobs.find(DriftPorts)
    if ports is None:
        raise RuntimeError("services carry no tenant_policies/drift_reports; the composition root builds them")
    return ports


async def run_policy_drift(services: Services, mode: Mode = "plan", remove_unknown_partners: bool = False) -> DriftRun:
    """Plan the tenant's policies against the desired state; in enforce mode apply what the guardrails allow.

    The run is kept in the report store either way. Read failures raise lifecycle.errors.GraphError.
    """
    if mode not in ("plan", "enforce"):
        raise ValueError(f"mode must be plan or enforce, not {mode!r}")
    ports = drift_ports(services)
    tenant, reports = ports.tenant, ports.reports
    desired = desired_policies(services.desired)
    now = services.clock.now()
    snapshot = await read_tenant(tenant, desired)
    plan = plan_policies(desired, snapshot, remove_unknown_partners, today=now.date())
    run = DriftRun(
        job=plan.job,
        actions=plan.actions,
        refusals=plan.refusals,
        warnings=plan.warnings,
        evidence=plan.evidence,
        waivers=plan.waivers,
        run_id=f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        mode=mode,
        at=now,
    )
    if mode == "enforce":
        await apply_plan(run, tenant, services.audit, services.clock)
    await reports.save(DriftReport.of(run))
    log.info(
        "drift.run",
        run_id=run.run_id,
        mode=mode,
        drift=len(run.drift),
        refused=[r.rule for r in run.refusals],
        applied=sum(1 for r in run.results if r.ok),
        failed=len(run.failed),
        waivers=[f"{w.label} {w.state} {w.expires}" for w in run.waivers],
        unmanaged_fields=[f"{e.resource}/{e.key} {e.field}" for e in run.evidence if e.kind == "unmanaged-field"],
        exit_code=run.exit_code,
    )
    return run


async def on_timer(services: Services, past_due: bool) -> DriftRun:
    """The hourly timer: runs in the mode the settings name (LIFECYCLE_DRIFT_MODE, plan unless told)."""
    if past_due:
        log.warning("drift.timer.past-due")
    return await run_policy_drift(services, services.settings.drift_mode)


def render(run: DriftRun, as_json: bool = False) -> str:
    """The run for a terminal or a pipeline: markdown, or JSON with ``--json``."""
    if as_json:
        import json

        return json.dumps(run.as_dict(), indent=2, default=str)
    return run.to_markdown()
