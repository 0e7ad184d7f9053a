"""What `make run` shows: every job once, end to end, against the local stack.

The story: tickets arrive and are onboarded; a partner moves to its own Entra tenant and its guests'
redemption is reset with their object ids kept; the wide-open fresh tenant is brought to the desired
posture (policy drift) and its governance ensured, each with a clean plan afterwards; tonight's sweep
plans, is stopped by the deletion brake, approved and carried out; then status and the report.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from app.examples import example_tickets
from config.desired_state import B2BSetting, DesiredState, Target, TargetConfiguration
from lifecycle import report as posture_report
from lifecycle.ledger import operations
from lifecycle.ledger import status as ledger_status
from lifecycle.onboarding.submission import submit_documents
from lifecycle.services import Services

# In the simulated tenant, Adatum (Google and one-time-passcode guests so far) gets its own Entra tenant.
MOVING_PARTNER, MOVING_PARTNER_DOMAIN = "adatum", "adatum.com"
MOVING_PARTNER_TENANT = "7b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e"


async def onboarding_step(services: Services, run_onboarding) -> dict[str, Any]:
    await submit_documents(services, "onboarding", example_tickets(services.clock.now()))
    return await run_onboarding(services, wait_for_delayed_seconds=60.0)


async def drift_step(services: Services) -> dict[str, Any]:
    from lifecycle.drift.entry import render, run_policy_drift

    runs = {}
    for title, mode in (("before", "plan"), ("apply", "enforce"), ("after", "plan")):
        run = await run_policy_drift(services, mode)
        runs[title] = {
            "exitCode": run.exit_code,
            "drift": len(run.drift),
            "text": run.to_text(),
            "markdown": render(run),
        }
        await ledger_status.record_run(services, "policy-drift", {"mode": mode, "drift": len(run.drift)})
    return runs


async def governance_step(services: Services) -> dict[str, Any]:
    from lifecycle.governance import render
    from lifecycle.governance.entry import run_with_services
    from lifecycle.governance.job import describe_instance, plan_from_dict

    runs = {}
    for title, mode in (("before", "plan"), ("apply", "enforce"), ("after", "plan")):
        result = await run_with_services(services, mode)
        text = plan_from_dict(result["plan"]).to_text()
        if result.get("reviewInstances"):
            text += "\n  access review instances (evidence, not drift):"
            text += "".join(f"\n    {describe_instance(e)}" for e in result["reviewInstances"])
        runs[title] = {
            "exitCode": result["exitCode"],
            "drift": result["plan"]["drift"],
            "text": text,
            "markdown": render(result),
        }
        await ledger_status.record_run(services, "governance", {"mode": mode, "drift": result["plan"]["drift"]})
    return runs


async def sweep_step(services: Services) -> list[dict[str, Any]]:

    steps = await sweep_demo(services)
    await ledger_status.record_run(services, "guest-sweep", steps[-1])
    return steps


async def reset_step(services: Services) -> list[dict[str, Any]]:
    """Local stack only: tell tenantsim the partner moved identity provider, then run the reset job.

    The first run refuses: the guests would redeem with a tenant the desired state keeps out. The demo
    then records the partner's new tenant in the desired state, as the identity team would (policy drift
    applies it next), and runs again. More guests than the reset brake allows are affected, so that run
    waits; the demo approves it as an operator would (`python -m lifecycle approve reset-...`).
    """
    from lifecycle.reset.entry import run_reset_detection
    from lifecycle.reset.local import approve_locally, run_locally

    simulator = os.environ.get("TENANTSIM_URL")
    if simulator:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.put(
                f"{simulator}/_tenantsim/identity-provider",
                json={
                    "domain": MOVING_PARTNER_DOMAIN,
                    "identityProvider": "AzureAD",
                    "tenantId": MOVING_PARTNER_TENANT,
                },
            )
            response.raise_for_status()
    steps = [await run_reset_detection(services, "plan")]
    services.desired = admit_partner_tenant(services.desired, MOVING_PARTNER, MOVING_PARTNER_TENANT)
    steps.append(await run_locally(services, "enforce", f"{steps[0]['runId']}-new-tenant"))
    if steps[-1]["status"] == "braked":
        # Fanned out on guest-actions; the local worker works the queue, as the trigger does in Azure.
        steps.append(await approve_locally(services, steps[-1]["runId"], "make run"))
    await ledger_status.record_run(services, "redemption-reset", steps[-1])
    return steps


def admit_partner_tenant(desired: DesiredState, partner_key: str, tenant_id: str) -> DesiredState:
    """The desired state with the partner's (new) Entra tenant, allowed inbound for B2B collaboration."""
    everyone = TargetConfiguration(access_type="allowed", targets=(Target(target="AllUsers", target_type="user"),))
    apps = TargetConfiguration(
        access_type="allowed", targets=(Target(target="AllApplications", target_type="application"),)
    )
    inbound = B2BSetting(users_and_groups=everyone, applications=apps)
    partner = desired.partners[partner_key]
    blocks = partner.cross_tenant_access.model_copy(update={"b2b_collaboration_inbound": inbound})
    partners = {
        **desired.partners,
        partner_key: partner.model_copy(update={"tenant_id": tenant_id, "cross_tenant_access": blocks}),
    }
    return desired.model_copy(update={"partners": partners})


async def status_step(services: Services) -> dict[str, Any]:
    await operations.reconcile_dead_letters(services)
    return await ledger_status.status(services)


async def report_step(services: Services) -> posture_report.Posture:
    posture = await posture_report.collect(services)
    await posture_report.record_snapshot(services, posture)
    return posture


async def sweep_demo(services: Services, approver: str = "make run") -> list[dict[str, Any]]:
    from lifecycle.plans import Mode
    from lifecycle.sweep import entry as sweep

    """``make run``: plan, enforce (the brake may stop it), approve if it did, and work the actions."""
    planned = await sweep.run_sweep(services, Mode.PLAN)
    if planned["status"] == "failed":
        return [planned]
    enforced = await sweep.run_locally(services, Mode.ENFORCE, planned["runId"])
    steps = [planned, enforced]
    if enforced["status"] == "braked":
        steps.append(await sweep.approve_locally(services, enforced["runId"], approver))
    return steps
