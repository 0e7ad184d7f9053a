"""The admin endpoint called as the Functions host calls it: the operator's Entra access token decides who may
plan and apply, the operator's name comes from the token, and apply acts only on the plan that was confirmed.

Tokens are minted by tenantsim's local issuer with the claims of an access token for the product's own API
(https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference): ``scp`` for a token issued
on behalf of a person, ``roles`` for the assigned app roles, ``preferred_username`` (v2) or ``upn`` (v1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from adapters.memory import MemorySweepRuns
from lifecycle.clock import FixedClock
from lifecycle.models import AuditEntry
from lifecycle.onboarding.submission import submit_documents
from lifecycle.services import Services
from tenantsim.entra_issuer import LocalTokenIssuer
from tests.builders import NOW, memory_services, onboard_ticket
from tests.builders.admin import (
    APP_ID_URI,
    OPERATOR_NAME,
    OPERATOR_OID,
    call,
    endpoint_on,
    token_issuer,
)
from tests.builders.admin import operator_token as admin_token


@pytest.fixture(name="issuer", scope="module")
def _issuer() -> LocalTokenIssuer:
    return token_issuer()


@pytest.fixture(name="services")
def _services() -> Services:
    return memory_services(clock=FixedClock(NOW), sweep_runs=MemorySweepRuns())


@pytest.fixture(autouse=True)
def _endpoint(issuer: LocalTokenIssuer, services: Services) -> Iterator[None]:
    with endpoint_on(issuer, services):
        yield


def operator_token(issuer: LocalTokenIssuer, **claims: Any) -> str:
    """A v2 access token the Azure CLI obtained for the operator, with the operator role; claims overridable."""
    return admin_token(issuer, NOW, **claims)


async def audit_rows(services: Services, prefix: str = "admin.") -> list[AuditEntry]:
    return [e async for e in services.audit.entries() if e.action.startswith(prefix)]


async def dead_letter(services: Services, *ticket_ids: str) -> None:
    """Onboarding tickets that reached the dead-letter queue (as a 403 from Graph would leave them)."""
    queue = services.settings.queue_name("onboarding")
    await submit_documents(services, "onboarding", [onboard_ticket(ticketId=t) for t in ticket_ids])
    for message in await services.transport.receive(queue, max_messages=len(ticket_ids)):
        await services.transport.dead_letter(queue, message, "authorization_requestdenied", "403 from Graph")


PURGE_ALL = {"command": "purge", "args": {"all": True}}


class TestWhoMayCall:
    @pytest.mark.parametrize(
        ("claims", "code"),
        [
            ({"aud": "api://someone-else"}, "audience-mismatch"),
            ({"iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"}, "issuer-mismatch"),
            (
                {
                    "exp": int((NOW - timedelta(hours=1)).timestamp()),
                    "iat": int((NOW - timedelta(hours=2)).timestamp()),
                    "nbf": int((NOW - timedelta(hours=2)).timestamp()),
                },
                "token-expired",
            ),
        ],
        ids=["wrong-audience", "wrong-issuer", "expired"],
    )
    async def test_a_token_not_meant_for_this_endpoint_gets_401_with_the_reason(self, issuer, services, claims, code):
        status, body = await call("plan", PURGE_ALL, operator_token(issuer, **claims))
        assert (status, body["error"]["code"]) == (401, code)
        assert await audit_rows(services) == []

    async def test_no_token_gets_401(self, services):
        status, body = await call("plan", PURGE_ALL, None)
        assert (status, body["error"]["code"]) == (401, "credentials-missing")

    async def test_a_token_signed_by_a_key_the_tenant_does_not_publish_gets_401(self, issuer):
        issuer.add_key("rogue", publish=False)
        status, body = await call("plan", PURGE_ALL, operator_token(issuer, kid="rogue"))
        assert (status, body["error"]["code"]) == (401, "kid-unknown")

    async def test_a_person_without_the_operator_role_gets_403_and_the_attempt_is_audited_in_their_name(
        self, issuer, services
    ):
        status, body = await call("plan", PURGE_ALL, operator_token(issuer, roles=["Lifecycle.Reader"]))
        assert (status, body["error"]["code"]) == (403, "role-missing")
        [denied] = await audit_rows(services)
        assert denied.action == "admin.denied" and denied.actor == f"{OPERATOR_NAME} ({OPERATOR_OID})"

    async def test_a_token_an_application_got_for_itself_gets_403_even_with_the_role(self, issuer):
        """App-only tokens carry roles but no scp: the endpoint acts only for a named person."""
        status, body = await call("plan", PURGE_ALL, operator_token(issuer, name=None, scopes=()))
        assert (status, body["error"]["code"]) == (403, "not-a-person")

    async def test_a_v1_token_for_the_app_id_uri_is_accepted_with_the_upn_as_the_name(self, issuer, services):
        """A registration without requestedAccessTokenVersion 2 gets v1 tokens: sts.windows.net issuer, upn."""
        token = operator_token(issuer, version="1.0", api=APP_ID_URI)
        status, body = await call("plan", PURGE_ALL, token)
        assert status == 200, body
        assert body["operator"] == {"objectId": OPERATOR_OID, "name": "ines.ops@contoso.com"}

    async def test_a_token_for_another_registration_of_the_same_tenant_gets_401(self, issuer):
        other = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
        status, body = await call("plan", PURGE_ALL, operator_token(issuer, api=other))
        assert (status, body["error"]["code"]) == (401, "audience-mismatch")


class TestBadRequests:
    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (b"{not json", "malformed-json"),
            ({"command": "delete-everything", "args": {}}, "unknown-command"),
            ({"command": "purge", "args": {}}, "invalid-args"),
            ({"command": "purge", "args": {"all": "yes"}}, "invalid-args"),
            ({"command": "approve", "args": {"runId": "../../etc"}}, "invalid-args"),
            ({"command": "apply-policies", "args": {"removeUnknownPartners": False, "force": True}}, "invalid-args"),
        ],
        ids=["not-json", "unknown-command", "no-selection", "not-a-flag", "bad-run-id", "unknown-argument"],
    )
    async def test_a_request_the_endpoint_cannot_read_gets_400_with_a_code(self, issuer, body, code):
        status, answer = await call("plan", body, operator_token(issuer))
        assert (status, answer["error"]["code"]) == (400, code)

    async def test_apply_without_the_plans_digest_is_refused(self, issuer):
        status, answer = await call("apply", PURGE_ALL, operator_token(issuer))
        assert (status, answer["error"]["code"]) == (400, "digest-missing")

    async def test_an_unknown_step_is_404(self, issuer):
        status, answer = await call("delete", PURGE_ALL, operator_token(issuer))
        assert (status, answer["error"]["code"]) == (404, "unknown-step")


class TestPlanThenApply:
    async def test_the_plan_lists_the_dead_letters_by_name_and_apply_with_its_digest_purges_exactly_them(
        self, issuer, services
    ):
        await dead_letter(services, "RITM0001", "RITM0002")
        status, plan = await call("plan", PURGE_ALL, operator_token(issuer))
        assert status == 200
        assert sorted(r["key"] for r in plan["rows"]) == ["ticket:RITM0001", "ticket:RITM0002"]
        assert {r["displayName"] for r in plan["rows"]} == {"Ana Lopez"}
        assert plan["digest"].startswith("sha256:") and "mail" in plan["columns"]

        status, applied = await call("apply", {**PURGE_ALL, "digest": plan["digest"]}, operator_token(issuer))
        assert (status, applied["exitCode"]) == (200, 0), applied
        assert sorted(applied["result"]) == ["ticket:RITM0001", "ticket:RITM0002"]
        queue = services.settings.queue_name("onboarding")
        assert await services.transport.peek_dead_letters(queue) == []

    async def test_apply_with_a_stale_digest_changes_nothing(self, issuer, services):
        """A dead letter that arrived after the operator confirmed makes another plan: refused, nothing purged."""
        await dead_letter(services, "RITM0001")
        _, plan = await call("plan", PURGE_ALL, operator_token(issuer))
        await dead_letter(services, "RITM0003")
        status, refused = await call("apply", {**PURGE_ALL, "digest": plan["digest"]}, operator_token(issuer))
        assert (status, refused["error"]["code"]) == (409, "plan-changed")
        assert len(refused["rows"]) == 2 and refused["digest"] != plan["digest"]
        assert len(await services.transport.peek_dead_letters(services.settings.queue_name("onboarding"))) == 2
        assert [e.action for e in await audit_rows(services)] == ["admin.planned", "admin.refused"]

    async def test_the_audit_names_the_operator_of_the_token_not_the_one_the_body_claims(self, issuer, services):
        await dead_letter(services, "RITM0001")
        claimed = {**PURGE_ALL, "operator": "mallory@contoso.com", "actor": "mallory@contoso.com"}
        _, plan = await call("plan", claimed, operator_token(issuer))
        status, _ = await call("apply", {**claimed, "digest": plan["digest"]}, operator_token(issuer))
        assert status == 200
        actor = f"{OPERATOR_NAME} ({OPERATOR_OID})"
        admin_rows = await audit_rows(services)
        assert [e.action for e in admin_rows] == ["admin.planned", "admin.apply-requested", "admin.applied"]
        assert {e.actor for e in admin_rows} == {actor}
        assert {e.details["operatorObjectId"] for e in admin_rows} == {OPERATOR_OID}
        [purged] = await audit_rows(services, "job.purged")
        assert purged.actor == actor
        assert "mallory" not in json.dumps([e.details for e in admin_rows])

    async def test_approving_a_run_that_is_not_braked_is_refused_with_409(self, issuer, services):
        body = {"command": "approve", "args": {"runId": "sweep-2026-11-23"}}
        _, plan = await call("plan", body, operator_token(issuer))
        status, refused = await call("apply", {**body, "digest": plan["digest"]}, operator_token(issuer))
        assert status == 409 and refused["error"]["code"] == "run-not-approvable"


class TestApproveThroughTheEndpoint:
    async def test_a_braked_sweep_is_listed_by_name_and_approved_in_the_operators_name(self, issuer, services):
        """The plan names each guest the run disables; apply releases the brake recorded as the token's operator."""
        from dataclasses import replace

        from lifecycle.models import GuestRecord, GuestState, SignInActivity
        from lifecycle.sweep import entry as sweep
        from lifecycle.sweep.entry import sweep_ports

        directory = services.directory
        for name in ("Lena Fischer", "Priya Natarajan", "Omar Haddad"):
            email = f"{name.split()[0].lower()}@fabrikam.com"
            user = directory.put(
                replace(
                    directory.add_guest(email),
                    display_name=name,
                    sign_in_activity=SignInActivity(last_successful_sign_in=NOW - timedelta(days=120)),
                    external_user_state_changed=NOW - timedelta(days=500),
                    created=NOW - timedelta(days=501),
                )
            )
            await services.guests.save(GuestRecord(user.id, email, "fabrikam", GuestState.ACTIVE, ticket_id=name[:3]))
        summary = await sweep.run_sweep(services, "enforce")
        assert summary["status"] == "braked", summary
        body = {"command": "approve", "args": {"runId": summary["runId"]}}

        status, plan = await call("plan", body, operator_token(issuer))
        assert status == 200
        assert {r["displayName"] for r in plan["rows"]} == {"Lena Fischer", "Priya Natarajan", "Omar Haddad"}
        assert {r["action"] for r in plan["rows"]} == {"disable"}
        status, applied = await call("apply", {**body, "digest": plan["digest"]}, operator_token(issuer))
        assert status == 200, applied
        run = await sweep_ports(services).runs.get(summary["runId"])
        assert run is not None and run.brake.approved_by == f"{OPERATOR_NAME} ({OPERATOR_OID})"
        # Fanned out for the guest-actions trigger; the HTTP request itself disables nobody.
        active, _ = await services.transport.depth(services.settings.queue_name("guest-actions"))
        assert active == 3 and not [w for w in directory.writes if w[0] == "accountEnabled"]

    async def test_a_braked_reset_run_is_approved_before_any_guest_is_reset_and_the_queue_then_resets_them(
        self, issuer
    ):
        """The HTTP answer comes once the resets are on guest-actions (the count sent, how to follow them), with
        no guest reset inside the request; the guest-actions worker then resets each one."""
        from lifecycle.reset.entry import run_reset_detection
        from lifecycle.reset.entry import show as show_reset
        from lifecycle.sweep.entry import drain_actions
        from tests.builders.reset import redeemed, resets_sent, services_with
        from tests.fakes import FakeDirectory, FakeLookup

        directory = FakeDirectory()
        guests = [redeemed(directory, f"p{n}@fabrikam.com", "otp") for n in range(3)]
        reset_services = services_with(directory, FakeLookup(), FixedClock(NOW), brake_count=2)
        braked = await run_reset_detection(reset_services, "enforce")
        assert braked["status"] == "braked", braked
        body = {"command": "approve", "args": {"runId": braked["runId"]}}
        with endpoint_on(issuer, reset_services):
            status, plan = await call("plan", body, operator_token(issuer))
            assert status == 200 and {r["mail"] for r in plan["rows"]} == {g.mail for g in guests}
            status, applied = await call("apply", {**body, "digest": plan["digest"]}, operator_token(issuer))
        assert status == 200, applied
        assert applied["result"]["status"] == "dispatched" and applied["result"]["dispatched"] == 3
        assert "under way" in applied["text"] and f"sweep show {braked['runId']}" in applied["text"]
        assert directory.invitations == []
        # One message (the probe): its worker sends the other two once its reset proved the permission.
        active, _ = await reset_services.transport.depth(reset_services.settings.queue_name("guest-actions"))
        assert active == 1

        assert await drain_actions(reset_services) == {"done": 3}
        assert sorted(resets_sent(directory)) == sorted(g.id for g in guests)
        shown = await show_reset(reset_services, braked["runId"])
        assert shown is not None and shown["progress"]["reset"] == 3
        assert shown["brake"]["approvedBy"] == f"{OPERATOR_NAME} ({OPERATOR_OID})"


async def test_a_failure_inside_a_command_answers_500_in_json_without_a_traceback(issuer, services):
    """These services carry no policy drift ports: the planner's error stays in the log, the caller gets JSON."""
    status, body = await call("plan", {"command": "apply-policies", "args": {}}, operator_token(issuer))
    assert (status, body["error"]["code"]) == (500, "internal-error")
    assert "Traceback" not in json.dumps(body) and "drift" not in json.dumps(body)


async def test_the_doctor_only_reads_so_it_has_no_apply_step(issuer):
    status, body = await call("apply", {"command": "doctor", "args": {}}, operator_token(issuer))
    assert (status, body["error"]["code"]) == (400, "read-only-command")


class TestRunThroughTheEndpoint:
    async def test_a_sweep_run_is_planned_by_the_app_and_its_run_id_audited(self, issuer, services):
        body = {"command": "run", "args": {"job": "guest-sweep", "mode": "plan"}}
        _, plan = await call("plan", body, operator_token(issuer))
        assert plan["rows"] == [{"job": "guest-sweep", "mode": "plan", "runId": None}]
        status, applied = await call("apply", {**body, "digest": plan["digest"]}, operator_token(issuer))
        assert status == 200 and applied["result"]["mode"] == "plan", applied
        [row] = [e for e in await audit_rows(services) if e.action == "admin.applied"]
        assert row.details["runId"] == applied["result"]["runId"]

    async def test_onboarding_is_left_to_its_queue_trigger(self, issuer):
        body = {"command": "run", "args": {"job": "onboarding", "mode": "enforce"}}
        status, answer = await call("plan", body, operator_token(issuer))
        assert (status, answer["error"]["code"]) == (400, "invalid-args")


async def test_a_failure_while_applying_is_audited_beside_the_request(issuer, services):
    """A confirmed run that fails inside the app leaves admin.apply-requested and admin.failed in the operator's
    name (these services carry no policy drift ports), and the caller gets JSON."""
    body = {"command": "run", "args": {"job": "policy-drift", "mode": "enforce"}}
    _, plan = await call("plan", body, operator_token(issuer))
    status, answer = await call("apply", {**body, "digest": plan["digest"]}, operator_token(issuer))
    assert (status, answer["error"]["code"]) == (500, "internal-error")
    rows = await audit_rows(services)
    assert [e.action for e in rows] == ["admin.planned", "admin.apply-requested", "admin.failed"]
    assert rows[-1].actor == f"{OPERATOR_NAME} ({OPERATOR_OID})"
