"""Policy drift's entry points, for function_app.py (the hourly timer) and the CLI.

The tenant gateway and the report store are the bundle's ``DriftPorts``, built by the composition root
(app.bootstrap.compose_services: graph.policies and adapters.drift_reports in Azure, fakes in tests).
"""

from __future__ import annotations

import uuid

import structlog

from lifecycle.drift import ca_policies, identity_providers, native_entry, signup_connector
from lifecycle.drift.applier import Applier, apply_plan
from lifecycle.drift.desired import desired_policies
from lifecycle.drift.planner import plan_policies
from lifecycle.drift.ports import DriftPorts
from lifecycle.drift.report import DriftReport, DriftRun, Mode
from lifecycle.drift.snapshot import read_tenant
from lifecycle.plans import Plan, Refusal
from lifecycle.services import Services

log = structlog.get_logger(__name__)


def drift_ports(services: Services) -> DriftPorts:
    ports = services.jobs.find(DriftPorts)
    if ports is None:
        raise RuntimeError("services carry no tenant_policies/drift_reports; the composition root builds them")
    return ports


async def plan_drift(
    services: Services, remove_unknown_partners: bool = False, approvals: frozenset[str] = frozenset()
) -> tuple[Plan, dict[str, Applier]]:
    """The whole drift plan (the cross-tenant and invitation policies, then each opt-in area planned in its own
    module) and, by resource, how those areas' actions are applied. ``approvals`` are the managed guest
    Conditional Access policies and native guest lifecycle policies (``lifecycle-KEY``) an operator approved
    switching on (never the timer)."""
    ports = drift_ports(services)
    desired = desired_policies(services.desired)
    snapshot = await read_tenant(ports.tenant, desired)
    plan = plan_policies(desired, snapshot, remove_unknown_partners, today=services.clock.now().date())
    appliers: dict[str, Applier] = {}
    guest_ca = services.desired.guest_conditional_access
    if guest_ca is not None:
        evidence = await ca_policies.read_evidence(
            guest_ca, snapshot.conditional_access, ports.sign_ins, services.clock.now()
        )
        plan.refusals.extend(ca_policies.refusals(guest_ca, evidence))
        plan.refusals.extend(await ca_policies.break_glass_problems(guest_ca, services.directory))
        plan.actions.extend(ca_policies.plan(guest_ca, evidence, approvals))
        plan.warnings.extend(ca_policies.approval_warnings(guest_ca, approvals))
        if ports.conditional_access is not None:
            appliers[ca_policies.RESOURCE] = ca_policies.applier(ports.conditional_access)
    registration = services.desired.sign_up_registration
    if registration is not None:
        secret = services.settings.signup_connector_password
        password = secret.get_secret_value() if secret is not None else ""
        rotate = signup_connector.ROTATE in approvals
        actions, refused = await signup_connector.plan(registration, ports.sign_up, bool(password), rotate)
        plan.actions.extend(actions)
        plan.refusals.extend(refused)
        if ports.sign_up is not None:
            apply = signup_connector.applier(ports.sign_up, password)
            appliers.update(dict.fromkeys(signup_connector.RESOURCES, apply))
    providers = services.desired.guest_identity_providers
    if providers is not None:
        if ports.identity_providers is None or ports.guest_identities is None:
            reason = "the desired state has guestIdentityProviders but this deployment has no gateway for them"
            plan.refusals.append(Refusal("identity-providers-not-composed", reason))
        else:
            secret = services.settings.google_client_secret
            google_secret = secret.get_secret_value() if secret is not None else ""
            found = await identity_providers.read(
                ports.identity_providers, ports.guest_identities, snapshot.default, providers
            )
            plan.refusals.extend(identity_providers.refusals(providers, services.desired, found, bool(google_secret)))
            plan.actions.extend(identity_providers.plan(providers, found, approvals))
            apply = identity_providers.applier(ports.identity_providers, google_secret)
            appliers.update(dict.fromkeys(identity_providers.RESOURCES, apply))
    native = await native_entry.plan(services, ports, approvals)
    plan.actions += native.actions
    plan.refusals += native.refusals
    plan.warnings += native.warnings
    plan.evidence += native.evidence
    appliers.update(native.appliers)
    return plan, appliers


async def run_policy_drift(
    services: Services,
    mode: Mode = "plan",
    remove_unknown_partners: bool = False,
    approvals: frozenset[str] = frozenset(),
) -> DriftRun:
    """Plan the tenant's policies against the desired state; in enforce mode apply what the guardrails allow.

    The run is kept in the report store either way. Read failures raise lifecycle.errors.GraphError.
    """
    if mode not in ("plan", "enforce"):
        raise ValueError(f"mode must be plan or enforce, not {mode!r}")
    ports = drift_ports(services)
    tenant, reports = ports.tenant, ports.reports
    now = services.clock.now()
    plan, appliers = await plan_drift(services, remove_unknown_partners, approvals)
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
        await apply_plan(run, tenant, services.audit, services.clock, appliers)
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
