"""Undo by run on the local stack (Azurite + tenantsim): a sweep in enforce mode, a restore, a sweep again;
a deleted guest brought back within Entra's 30 days and refused after; a guest changed by someone else."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.bootstrap import bootstrap
from config.desired_state import DeletionBrake, load_desired_state
from config.settings import SAMPLE_DESIRED_STATE, load_settings
from graph.credentials import TenantSimCredential
from graph.permissions import GRANTED
from lifecycle.clock import FixedClock
from lifecycle.ledger.work import LEASE_SECONDS
from lifecycle.ledger.worker import drain
from lifecycle.restore.entry import apply_restore, plan_restore
from lifecycle.services import Services
from lifecycle.sweep import entry
from tenantsim.client import TenantSimAdmin
from tenantsim.seed import PROTECTED_GROUP_ID
from tests.builders import lifecycle_cli

pytestmark = pytest.mark.stack
OPERATOR = "oncall@contoso.com"


class Tenant:
    """The simulated tenant and the product's clock moved together: both read ``days`` after the start."""

    def __init__(self, admin: TenantSimAdmin, clock: FixedClock, env: dict[str, str]) -> None:
        self.admin, self.clock, self.env = admin, clock, env

    def at(self, days: float) -> None:
        self.admin.configure(clockOffsetSeconds=days * 86400)
        self.clock.set(datetime.now(UTC) + timedelta(days=days))

    def users(self) -> dict[str, dict]:
        return {u["id"]: u for u in self.admin.snapshot()["users"]}

    def deleted(self) -> set[str]:
        return {u["id"] for u in self.admin.snapshot()["deletedItems"]}


@pytest.fixture
async def stack(local_stack) -> AsyncIterator[tuple[Services, Tenant]]:
    suffix = uuid.uuid4().hex[:8]
    env = {**local_stack.env, "LIFECYCLE_TABLE_PREFIX": f"rs{suffix}", "LIFECYCLE_QUEUE_PREFIX": f"rs{suffix}-"}
    settings = load_settings(env)
    sample = load_desired_state(SAMPLE_DESIRED_STATE)
    lifecycle = sample.lifecycle.model_copy(update={"deletion_brake": DeletionBrake(max_count=10_000, max_percent=100)})
    clock = FixedClock(datetime.now(UTC))
    with TenantSimAdmin(local_stack.tenantsim_url) as admin:
        admin.seed(builtin="fresh", guests=60, random_seed=11)
        credential = TenantSimCredential(local_stack.tenantsim_url, roles=GRANTED)
        services = await bootstrap(
            settings, credential=credential, clock=clock, desired=sample.model_copy(update={"lifecycle": lifecycle})
        )
        try:
            yield services, Tenant(admin, clock, env)
        finally:
            await services.close()
            admin.configure(clockOffsetSeconds=0, restoreNeedsUserReadWriteAll=False)
            admin.seed(builtin="fresh", guests=300, random_seed=0)


async def _enforced_run(services: Services, run_id: str) -> dict[str, set[str]]:
    """An enforced sweep run, drained: the guests it disabled and deleted."""
    summary = await entry.run_sweep(services, "enforce", run_id=run_id)
    assert summary["status"] == "dispatched", summary
    report = await drain(services, "guest-actions", entry.handle_guest_action, idle_rounds=2)
    assert report.crashed == 0
    shown = await entry.show(services, run_id, limit=10_000)
    assert shown is not None
    return {action: {a["objectId"] for a in shown["plan"] if a["action"] == action} for action in ("disable", "delete")}


async def test_a_sweep_then_a_restore_then_a_sweep_leaves_the_restored_guests_alone_for_the_cool_off(stack):
    """The restored guests are enabled again, audited with the operator; the same night's sweep skips every one
    of them; a second restore is a no-op; once the cool-off ends the sweep judges them afresh."""
    services, tenant = stack
    disabled = (await _enforced_run(services, "sweep-undo-1"))["disable"]
    assert len(disabled) >= 3
    marked = await services.guests.get(min(disabled))  # in a sponsor-gone period when the run disabled it
    assert marked is not None
    await services.guests.save(replace(marked, sponsor_gone_since=marked.disabled))
    tenant.at(2 / 24)

    plan = await plan_restore(services, "sweep-undo-1")
    assert {g.object_id for g in plan.acting} == disabled and not plan.brake.tripped
    assert all(g.name and g.steps[0].value == "enable" for g in plan.acting)
    applied = await apply_restore(services, plan, OPERATOR)
    assert applied["counts"] == {"restored": len(disabled)}
    users = tenant.users()
    assert all(users[g]["accountEnabled"] is True for g in disabled)
    audited = [e async for e in services.audit.entries() if e.action == "guest.restored"]
    assert {e.target for e in audited} == disabled and {e.actor for e in audited} == {OPERATOR}
    restored = await services.guests.get(min(disabled))  # judged afresh: a new period if its sponsors are gone
    assert restored is not None and restored.sponsor_gone_since is None

    tenant.admin.reset_counters()
    again = await apply_restore(services, await plan_restore(services, "sweep-undo-1"), OPERATOR)
    assert set(again["counts"]) == {"already-restored"} and tenant.admin.counters()["writes"] == 0

    tenant.at(5 / 24)  # the same night, after the restore
    same_night = await entry.run_sweep(services, "enforce", run_id="sweep-undo-2")
    assert same_night["skipped"].get("restored-cool-off") == len(disabled)
    shown = await entry.show(services, "sweep-undo-2", limit=10_000)
    assert shown is not None and not disabled & {a["objectId"] for a in shown["plan"]}

    tenant.at(services.settings.restore_cool_off_days + 0.5)
    afterwards = await entry.run_sweep(services, "plan", run_id="sweep-undo-3")
    assert "restored-cool-off" not in afterwards["skipped"]
    judged = await entry.show(services, "sweep-undo-3", limit=10_000)
    assert judged is not None and disabled <= {a["objectId"] for a in judged["plan"] if a["action"] == "disable"}


async def test_a_guest_changed_by_someone_else_since_the_run_is_refused_and_left_as_it_is(stack):
    """One disabled guest renamed, another re-enabled by an administrator after the run, a third put in the
    protected group: each is refused with the reason and not written to; the others are restored."""
    services, tenant = stack
    disabled = sorted((await _enforced_run(services, "sweep-undo-x"))["disable"])
    renamed, reenabled, protected, *others = disabled
    tenant.admin.patch_user(renamed, displayName="Renamed By An Admin")
    tenant.admin.patch_user(reenabled, accountEnabled=True)
    tenant.admin.add_group_member(PROTECTED_GROUP_ID, protected)
    tenant.at(1 / 24)

    plan = await plan_restore(services, "sweep-undo-x")
    by_id = {g.object_id: g for g in plan.guests}
    assert (by_id[renamed].code, by_id[reenabled].code) == ("changed-since-run", "re-enabled-since")
    assert "displayName" in by_id[renamed].reason
    assert by_id[protected].code == "guest-protected"  # the safety gate, shown before anyone confirms
    applied = await apply_restore(services, plan, OPERATOR)
    statuses = {g["objectId"]: g["status"] for g in applied["plan"]}
    assert statuses[renamed] == statuses[reenabled] == statuses[protected] == "refused"
    assert tenant.users()[protected]["accountEnabled"] is False
    assert all(statuses[g] == "restored" for g in others)
    users = tenant.users()
    assert users[renamed]["accountEnabled"] is False and users[renamed]["displayName"] == "Renamed By An Admin"
    record = await services.guests.get(renamed)
    assert record is not None and record.rearm_until is None


async def test_a_deleted_guest_is_restored_within_30_days_and_refused_once_entra_has_purged_it(stack):
    """A run disables, a run past the grace period deletes; the delete is undone for one guest the next day
    (back in /users, still disabled as the run found it), and for another 31 days later it is refused: Entra
    deleted it for good."""
    services, tenant = stack
    first = await _enforced_run(services, "sweep-undo-d1")
    tenant.at(services.desired.lifecycle.grace_days + 1)
    deleted = sorted((await _enforced_run(services, "sweep-undo-d2"))["delete"])
    assert len(deleted) >= 2 and set(deleted) <= first["disable"]
    soon, late = deleted[:2]
    assert {soon, late} <= tenant.deleted()

    tenant.at(services.desired.lifecycle.grace_days + 2)
    plan = await plan_restore(services, "sweep-undo-d2", key=soon)
    (guest,) = plan.guests
    assert guest.acts and guest.steps[0].value == "restore"
    applied = await apply_restore(services, plan, OPERATOR)
    assert applied["counts"] == {"restored": 1}
    users = tenant.users()
    assert users[soon]["accountEnabled"] is False and soon not in tenant.deleted()
    record = await services.guests.get(soon)
    assert record is not None and record.state.value == "disabled" and record.rearm_until is not None

    tenant.at(services.desired.lifecycle.grace_days + 1 + 31)
    purged = await plan_restore(services, "sweep-undo-d2", key=late)
    assert [g.code for g in purged.guests] == ["purged"]
    assert late not in tenant.users() and late not in tenant.deleted()


async def test_the_command_line_shows_the_undo_by_name_then_restores_with_yes(stack):
    """`restore --dry-run` lists the run's guests by name and changes nothing; with --yes the deletion brake of
    the deployed desired state holds the undo (exit 2, nothing written); --over-brake releases it, recorded as
    the operator's approval; an unknown run exits 3."""
    services, tenant = stack
    disabled = (await _enforced_run(services, "sweep-undo-cli"))["disable"]
    env = {**os.environ, **tenant.env}
    tenant.admin.reset_counters()
    dry = lifecycle_cli(env, "restore", "--run", "sweep-undo-cli", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    shown = json.loads(dry.stdout)
    assert shown["toRestore"] == len(disabled) and all(g["displayName"] for g in shown["plan"])
    assert tenant.admin.counters()["writes"] == 0

    braked = lifecycle_cli(env, "restore", "--run", "sweep-undo-cli", "--yes", "--json")
    assert braked.returncode == 2 and json.loads(braked.stdout)["status"] == "braked"
    assert tenant.admin.counters()["writes"] == 0  # the sample's brake (50 guests or 5 %) holds the undo

    args = ("--yes", "--over-brake", "--json", "--operator", OPERATOR)
    done = lifecycle_cli(env, "restore", "--run", "sweep-undo-cli", *args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"] == {"restored": len(disabled)}
    assert all(tenant.users()[g]["accountEnabled"] is True for g in disabled)
    assert lifecycle_cli(env, "restore", "--run", "sweep-1999-01-01", "--dry-run").returncode == 3


async def test_a_restored_guest_gets_back_the_access_package_it_lost_until_its_recorded_end_date(stack):
    """A guest onboarded until a recorded end date holds no assignment of its partner's package any more: the
    undo re-enables it and re-requests the package with that end date; Graph then holds the assignment."""
    services, tenant = stack
    await _enforced_run(services, "sweep-undo-pkg")
    shown = await entry.show(services, "sweep-undo-pkg", limit=10_000)
    assert shown is not None
    guest = next(a["objectId"] for a in shown["plan"] if a["action"] == "disable" and a["partner"] == "fabrikam")
    end = (datetime.now(UTC) + timedelta(days=60)).replace(microsecond=0)
    record = await services.guests.get(guest)
    assert record is not None
    record.end_date = end  # as onboarding records a ticket's end date
    await services.guests.save(record)
    package = await services.access_packages.resolve("Partner collaboration", "Fabrikam engineering")
    assert package is not None and await services.access_packages.find_assignment(guest, package.package_id) is None

    plan = await plan_restore(services, "sweep-undo-pkg", key=guest)
    (planned,) = plan.guests
    assert [s.value for s in planned.steps] == ["enable", "reassign"] and planned.end == end
    (result,) = (await apply_restore(services, plan, OPERATOR))["plan"]
    assert result["status"] == "restored" and result["assignmentRequestId"], result
    # Entitlement management processes a request asynchronously: follow it as onboarding does.
    for _ in range(10):
        request = await services.access_packages.get_request(result["assignmentRequestId"])
        if request is not None and request.settled:
            break
    assert request is not None and request.state == "delivered"
    assignment = await services.access_packages.find_assignment(guest, package.package_id)
    assert assignment is not None and assignment.expires == end
    assert tenant.users()[guest]["accountEnabled"] is True


async def test_an_undo_that_died_right_after_requesting_the_package_follows_that_request_when_run_again(
    stack, monkeypatch
):
    """The operator's shell dies right after Graph took the re-assignment request, before the undo recorded it.
    Running the same undo again (once the dead attempt's lease lapses) finds that request by its justification,
    which names the run and the guest, and sends no second one."""
    services, tenant = stack
    await _enforced_run(services, "sweep-undo-die")
    shown = await entry.show(services, "sweep-undo-die", limit=10_000)
    assert shown is not None
    guest = next(a["objectId"] for a in shown["plan"] if a["action"] == "disable" and a["partner"] == "fabrikam")
    record = await services.guests.get(guest)
    assert record is not None
    record.end_date = (datetime.now(UTC) + timedelta(days=60)).replace(microsecond=0)
    await services.guests.save(record)
    sent: list[str] = []
    real_request = services.access_packages.request_assignment

    async def request_then_die(*args):
        answer = await real_request(*args)
        sent.append(answer.id)
        if len(sent) == 1:
            raise RuntimeError("shell killed")
        return answer

    monkeypatch.setattr(services.access_packages, "request_assignment", request_then_die)
    with pytest.raises(RuntimeError):
        await apply_restore(services, await plan_restore(services, "sweep-undo-die", key=guest), OPERATOR)
    tenant.clock.set(datetime.now(UTC) + timedelta(seconds=LEASE_SECONDS + 1))

    (result,) = (await apply_restore(services, await plan_restore(services, "sweep-undo-die", key=guest), OPERATOR))[
        "plan"
    ]
    assert result["status"] == "restored" and result["assignmentRequestId"] == sent[0] and len(sent) == 1, result


async def test_where_graph_wants_user_read_write_all_to_restore_the_undo_names_the_refusal_and_resumes_once_granted(
    stack,
):
    """The restore page lists User.ReadWrite.All, the changelog User.DeleteRestore.All (which the product holds):
    under the page's reading the guest's undo fails naming the permission, the guest stays deleted, and the
    same command restores it once Graph accepts."""
    services, tenant = stack
    await _enforced_run(services, "sweep-undo-p1")
    tenant.at(services.desired.lifecycle.grace_days + 1)
    guest = sorted((await _enforced_run(services, "sweep-undo-p2"))["delete"])[0]
    tenant.admin.configure(restoreNeedsUserReadWriteAll=True)
    (refused,) = (await apply_restore(services, await plan_restore(services, "sweep-undo-p2", key=guest), OPERATOR))[
        "plan"
    ]
    assert (refused["status"], refused["code"]) == ("failed", "permission-missing")
    assert "User.DeleteRestore.All" in refused["reason"] and guest in tenant.deleted()

    tenant.admin.configure(restoreNeedsUserReadWriteAll=False)
    (restored,) = (await apply_restore(services, await plan_restore(services, "sweep-undo-p2", key=guest), OPERATOR))[
        "plan"
    ]
    assert restored["status"] == "restored" and guest in tenant.users()


async def test_an_operator_undoes_a_run_through_the_function_apps_identity(stack):
    """Through the admin endpoint: the plan lists the run's guests by name with a digest, the apply restores
    them in the token's operator's name, and a second apply of the same digest changes nothing."""
    from tests.builders.admin import OPERATOR_NAME, OPERATOR_OID, call, endpoint_on, operator_token, token_issuer

    services, tenant = stack
    disabled = (await _enforced_run(services, "sweep-undo-remote"))["disable"]
    tenant.at(2 / 24)
    issuer = token_issuer()
    body = {"command": "restore", "args": {"runId": "sweep-undo-remote"}}
    with endpoint_on(issuer, services):
        token = operator_token(issuer, services.clock.now())
        status, plan = await call("plan", body, token)
        assert status == 200, plan
        assert {r["objectId"] for r in plan["rows"] if r["status"] == "planned"} == disabled
        assert all(r["displayName"] for r in plan["rows"])
        status, applied = await call("apply", {**body, "digest": plan["digest"]}, token)
        assert status == 200, applied
        users = tenant.users()
        assert all(users[g]["accountEnabled"] is True for g in disabled)
        restored = [e async for e in services.audit.entries() if e.action == "guest.restored"]
        assert {e.target for e in restored} == disabled
        assert {e.actor for e in restored} == {f"{OPERATOR_NAME} ({OPERATOR_OID})"}
        status, stale = await call("apply", {**body, "digest": plan["digest"]}, token)
    assert status == 409 and stale["error"]["code"] == "plan-changed", stale


def test_restore_is_refused_in_a_shell_signed_in_as_the_operator_without_remote(stack):
    """An operator's own sign-in only reads: a restore without --remote stops before it reads anything."""
    _, tenant = stack
    env = {**os.environ, **tenant.env, "LIFECYCLE_GRAPH_CREDENTIAL": "azure-cli", "LIFECYCLE_ADMIN_URL": ""}
    refused = lifecycle_cli(env, "restore", "--run", "sweep-undo-1", "--yes")
    assert refused.returncode == 64 and "--remote" in refused.stderr, refused.stderr
