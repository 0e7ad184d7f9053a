"""Redemption reset on fakes: provider transitions, plan/enforce, the brake, idempotency and tickets."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from app.cli.summaries import reset_summary
from config.desired_state import B2BSetting, CrossTenantBlocks, Target, TargetConfiguration
from lifecycle.clock import FixedClock
from lifecycle.errors import BadRequestError, PermissionDeniedError, TransientGraphError
from lifecycle.ledger.outcomes import Verdict
from lifecycle.ledger.status import status
from lifecycle.models import WorkItem, WorkStatus
from lifecycle.reset.entry import on_timer, reset_ports
from lifecycle.reset.guest import marker_key
from lifecycle.reset.local import approve_locally, run_locally
from lifecycle.reset.planner import detect
from lifecycle.reset.providers import RedemptionOrder
from lifecycle.reset.runs import ResetRunError
from tests.builders import NOW
from tests.builders.reset import (
    ADATUM_TENANT,
    DEFAULT_PRIMARY,
    ISSUERS,
    order,
    redeemed,
    resets_sent,
    services_with,
    ticket_outcome,
)
from tests.fakes import FABRIKAM_TENANT, FakeDirectory, FakeLookup, OrderedLookup


class TestTransitions:
    @pytest.mark.parametrize(
        ("domain", "used", "lookup"),
        [
            ("adatum.com", "google", FakeLookup(tenants={"adatum.com": "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"})),
            ("adatum.com", "otp", FakeLookup(federations={"adatum.com": "fed-1"})),
            ("adatum.com", "saml", FakeLookup(tenants={"adatum.com": "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"})),
            ("fabrikam.com", "entra", FakeLookup(tenants={}, federations={"fabrikam.com": "fed-2"})),
            ("fabrikam.com", "entra", FakeLookup(tenants={})),
            ("adatum.com", "saml", FakeLookup()),
        ],
        ids=["google-to-entra", "otp-to-saml", "saml-to-entra", "entra-to-saml", "entra-to-personal", "saml-gone"],
    )
    async def test_a_guest_whose_provider_changed_is_reset_keeping_its_object(self, domain, used, lookup):
        """Each transition plans the guest with evidence and enforce re-invites the same object id."""
        directory = FakeDirectory()
        guest = redeemed(directory, f"ana@{domain}", used)
        services = services_with(directory, lookup)
        summary = await run_locally(services, "enforce")
        assert summary["status"] == "dispatched" and summary["dispatched"] == 1
        assert resets_sent(directory) == [guest.id]
        assert ("revokeSignInSessions", guest.id, None) in directory.writes
        assert directory.users[guest.id].external_user_state == "PendingAcceptance"
        audit = [e async for e in services.audit.entries() if e.action == "guest.redemption-reset"]
        assert audit[0].target == guest.id and audit[0].details["evidence"]["guestIdentity"]["issuer"] == ISSUERS[used]

    @pytest.mark.parametrize(
        ("email", "used"), [("ana@fabrikam.com", "entra"), ("ana@adatum.com", "google"), ("ana@adatum.com", "otp")]
    )
    async def test_a_guest_on_its_domains_provider_is_left_alone(self, email, used):
        """Entra guests of an Entra domain, and personal accounts of a domain without one, are not planned."""
        directory = FakeDirectory()
        redeemed(directory, email, used)
        summary = await run_locally(services_with(directory, FakeLookup()), "enforce")
        assert summary["actions"] == {} and summary["skipped"] == {"provider-unchanged": 1}
        assert resets_sent(directory) == []

    async def test_a_partner_domain_the_tenant_lookup_cannot_place_is_left_alone_and_says_why(self):
        """fabrikam.co.uk is not Fabrikam's primary domain, so the look-up by domain finds no tenant; Fabrikam's
        tenant (named in the desired state) still exists, so its Entra guests are not taken for personal
        accounts: nobody is reset, the skip and the domain's provider say why, and force still plans them."""
        directory = FakeDirectory()
        redeemed(directory, "ana@fabrikam.co.uk", "entra")
        lookup = FakeLookup(tenants={"fabrikam.com": FABRIKAM_TENANT})
        summary = await run_locally(services_with(directory, lookup), "enforce")
        assert summary["actions"] == {} and summary["skipped"] == {"provider-unverified": 1}
        assert resets_sent(directory) == []
        detection = await detect(directory, lookup, services_with(directory, lookup).desired)
        expected = detection.expected["fabrikam.co.uk"].to_json()
        assert expected["provider"] == "unverified" and FABRIKAM_TENANT in expected["unverified"]
        forced = await detect(directory, lookup, services_with(directory, lookup).desired, force=True)
        assert len(forced.resets) == 1

    async def test_pending_disabled_and_non_partner_guests_are_not_planned(self):
        """Only redeemed, enabled guests of partner domains are compared."""
        directory = FakeDirectory()
        directory.add_guest("new@adatum.com", state="PendingAcceptance")
        redeemed(directory, "off@fabrikam.com", "google", account_enabled=False)
        redeemed(directory, "someone@gmail.com", "otp")
        summary = await run_locally(services_with(directory, FakeLookup()), "enforce")
        assert summary["totalGuests"] == 2 and summary["skipped"] == {"not-redeemed": 1, "disabled": 1}

    async def test_a_protected_group_member_is_never_reset(self):
        """The protected group is an exclusion for every job: its guests are skipped like listed object ids."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@adatum.com", "google")
        lookup = FakeLookup(tenants={"adatum.com": "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"})
        services = services_with(directory, lookup)
        directory.add_to_group(services.desired.exclusions.protected_group_id, guest.id)
        summary = await run_locally(services, "enforce")
        assert summary["actions"] == {} and summary["skipped"] == {"protected-group": 1}
        assert resets_sent(directory) == [] and directory.writes == []

    async def test_a_reset_refuses_to_plan_when_the_protected_group_cannot_be_read(self):
        """Without the protected group's members the run fails with the reason instead of risking a member."""
        directory = FakeDirectory()
        redeemed(directory, "ana@adatum.com", "google")
        lookup = FakeLookup(tenants={"adatum.com": "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"})
        services = services_with(directory, lookup, readable_group=False)
        summary = await run_locally(services, "enforce")
        assert summary["status"] == "failed" and "protected group" in summary["reason"]
        assert resets_sent(directory) == []


class TestModesAndBrake:
    async def test_plan_mode_sends_nothing_and_enforce_later_carries_out_the_same_plan(self):
        """A plan run queues the resets; an enforce run of the same day sends exactly those."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "google")
        services = services_with(directory, FakeLookup())
        planned = await run_locally(services, "plan")
        assert planned["status"] == "planned" and planned["actions"] == {"reset/google->entra": 1}
        assert resets_sent(directory) == []
        await run_locally(services, "enforce")
        assert resets_sent(directory) == [guest.id]

    async def test_a_run_over_the_brake_count_waits_for_approval(self):
        """More resets than brakeCount: nothing is sent until an operator approves the run id."""
        directory = FakeDirectory()
        guests = [redeemed(directory, f"p{n}@fabrikam.com", "otp") for n in range(3)]
        services = services_with(directory, FakeLookup(), brake_count=2)
        braked = await run_locally(services, "enforce")
        assert braked["status"] == "braked" and "approve" in braked["reason"]
        assert resets_sent(directory) == []
        approved = await approve_locally(services, braked["runId"], "oncall@contoso.com")
        assert approved["brake"]["approvedBy"] == "oncall@contoso.com" and approved["dispatched"] == 3
        assert sorted(resets_sent(directory)) == sorted(g.id for g in guests)


class TestIdempotency:
    async def test_a_repeated_run_and_a_ticket_within_the_window_send_one_invitation(self):
        """Replaying the run and a ticket for the same guest inside the window send no second email."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "google")
        services = services_with(directory, FakeLookup())
        first = await run_locally(services, "enforce")
        await run_locally(services, "enforce", first["runId"])
        outcome = await ticket_outcome(services, ticketId="T-1", objectId=guest.id)
        assert outcome.verdict is Verdict.DONE and outcome.detail["invitationSent"] is False
        assert resets_sent(directory) == [guest.id]

    async def test_after_the_window_a_ticket_resets_again(self):
        """Once reinviteWindowHours have passed, a new request sends a new invitation."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "google")
        clock = FixedClock(NOW)
        services = services_with(directory, FakeLookup(), clock, reinvite_window_hours=24)
        await ticket_outcome(services, ticketId="T-1", objectId=guest.id)
        clock.advance(timedelta(hours=25))
        outcome = await ticket_outcome(services, ticketId="T-2", objectId=guest.id)
        assert outcome.detail["invitationSent"] is True and resets_sent(directory) == [guest.id, guest.id]

    async def test_an_invitation_that_landed_before_a_crash_is_not_sent_again(self):
        """A stale claim whose invitation already moved the guest to PendingAcceptance is settled, not resent."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "google")
        clock = FixedClock(NOW)
        services = services_with(directory, FakeLookup(), clock)
        claim = WorkItem(marker_key(guest.id), "redemption-reset-guest", WorkStatus.RUNNING, created=NOW, updated=NOW)
        claim.result = {"invitingAt": NOW.isoformat(), "email": guest.mail}
        await services.work_items.create(claim)
        directory.put(replace(guest, external_user_state="PendingAcceptance", external_user_state_changed=NOW))
        clock.advance(timedelta(minutes=30))
        outcome = await ticket_outcome(services, ticketId="T-1", objectId=guest.id)
        assert outcome.verdict is Verdict.DONE and resets_sent(directory) == []

    async def test_a_claim_in_flight_makes_a_second_request_retry_later(self):
        """While another reset of the guest is in flight, a ticket backs off instead of sending."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "google")
        services = services_with(directory, FakeLookup())
        claim = WorkItem(marker_key(guest.id), "redemption-reset-guest", WorkStatus.RUNNING, created=NOW, updated=NOW)
        claim.result = {"invitingAt": NOW.isoformat(), "email": guest.mail}
        await services.work_items.create(claim)
        outcome = await ticket_outcome(services, ticketId="T-1", objectId=guest.id)
        assert outcome.verdict is Verdict.RETRY and resets_sent(directory) == []


class TestTickets:
    async def test_a_new_email_is_added_to_mail_and_other_mails_before_the_reset(self):
        """newEmail joins otherMails (and becomes mail) first; the invitation goes to it, then sessions end."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "entra")
        services = services_with(directory, FakeLookup())
        original = directory.invite_guest

        async def logged(request):
            directory.writes.append(("invite", request.invited_user_id or "", request.email))
            return await original(request)

        directory.invite_guest = logged  # type: ignore[method-assign]
        outcome = await ticket_outcome(
            services, ticketId="T-1", email="ana@fabrikam.com", newEmail="ana@fabrikam.co.uk"
        )
        assert outcome.verdict is Verdict.DONE and outcome.detail["objectId"] == guest.id
        updated = directory.users[guest.id]
        assert updated.mail == "ana@fabrikam.co.uk" and "ana@fabrikam.co.uk" in updated.other_mails
        kinds = [w[0] for w in directory.writes]
        assert kinds.index("update") < kinds.index("invite") < kinds.index("revokeSignInSessions")
        assert directory.invitations[-1].email == "ana@fabrikam.co.uk"

    async def test_a_new_email_owned_by_someone_else_is_refused(self):
        """An address that belongs to another user is never moved onto the guest."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "entra")
        directory.add_member("ana@fabrikam.co.uk")
        services = services_with(directory, FakeLookup())
        outcome = await ticket_outcome(services, ticketId="T-1", objectId=guest.id, newEmail="ana@fabrikam.co.uk")
        assert outcome.verdict is Verdict.REJECTED and outcome.code == "email-in-use"
        assert directory.invitations == [] and not any(w[0] == "update" for w in directory.writes)

    async def test_graph_refuses_a_reset_to_an_address_the_guest_does_not_have(self):
        """Without the update, Graph's address rule refuses the reset (the fake enforces it like Graph)."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "entra")
        directory.put(replace(guest, mail=None, other_mails=("old@fabrikam.com",)))
        services = services_with(directory, FakeLookup())
        outcome = await ticket_outcome(services, ticketId="T-1", objectId=guest.id)
        assert outcome.verdict is Verdict.DONE and directory.invitations[-1].email == "old@fabrikam.com"
        directory.put(replace(directory.users[guest.id], other_mails=()))
        with pytest.raises(BadRequestError, match="neither the mail"):
            await directory.invite_guest(replace(directory.invitations[-1], email="new@fabrikam.com"))

    @pytest.mark.parametrize(
        ("fields", "code"),
        [
            ({"email": "a@fabrikam.com", "domain": "fabrikam.com"}, "invalid-target"),
            ({}, "invalid-target"),
            ({"domain": "fabrikam.com", "newEmail": "x@fabrikam.com"}, "invalid-target"),
            ({"email": "no-such@fabrikam.com"}, "guest-not-found"),
            ({"email": "megan@contoso.com"}, "not-a-guest"),
            ({"domain": "example.org"}, "unknown-partner-domain"),
        ],
    )
    async def test_bad_targets_are_rejected_with_a_reason(self, fields, code):
        """A ticket that names no guest, several, a member or a foreign domain is rejected, nothing sent."""
        directory = FakeDirectory()
        directory.add_member("megan@contoso.com")
        services = services_with(directory, FakeLookup())
        outcome = await ticket_outcome(services, ticketId="T-9", **fields)
        assert outcome.verdict is Verdict.REJECTED and outcome.code == code and directory.invitations == []

    async def test_a_domain_ticket_resets_every_redeemed_guest_of_the_domain_under_the_brake(self):
        """kind reset-redemption with a domain resets all its redeemed guests, braked above brakeCount."""
        directory = FakeDirectory()
        guests = [redeemed(directory, f"p{n}@fabrikam.com", "entra") for n in range(2)]
        redeemed(directory, "other@adatum.com", "google")
        services = services_with(directory, FakeLookup())
        outcome = await ticket_outcome(services, ticketId="T-5", domain="fabrikam.com")
        assert outcome.verdict is Verdict.DONE and outcome.detail["dispatched"] == 2
        assert sorted(resets_sent(directory)) == sorted(g.id for g in guests)
        braked = services_with(FakeDirectory(), FakeLookup(), brake_count=1)
        for n in range(2):
            redeemed(braked.directory, f"q{n}@fabrikam.com", "entra")
        held = await ticket_outcome(braked, ticketId="T-6", domain="fabrikam.com")
        assert held.detail["status"] == "braked" and braked.directory.invitations == []

    async def test_a_reset_that_comes_back_as_another_object_fails_loudly(self):
        """If Graph answers with a different object id, the ticket fails (dead-letter), never reported done."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "google")
        services = services_with(directory, FakeLookup())
        original = directory.invite_guest

        async def other_object(request):
            return replace(await original(request), user_id=str(uuid.uuid4()))

        directory.invite_guest = other_object  # type: ignore[method-assign]
        outcome = await ticket_outcome(services, ticketId="T-1", objectId=guest.id)
        assert outcome.verdict is Verdict.FAILED and outcome.code == "reset-not-confirmed"

    async def test_a_failed_invitation_leaves_the_sessions_alone_and_is_audited(self):
        """The reset goes first: when Graph does not accept it, no session is revoked, and the audit says so."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@adatum.com", "google")
        lookup = FakeLookup(tenants={"adatum.com": "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"})
        services = services_with(directory, lookup)

        async def unavailable(request):
            raise TransientGraphError("Graph answered 503 ServiceUnavailable", status=503)

        directory.invite_guest = unavailable  # type: ignore[method-assign]
        await run_locally(services, "enforce")
        assert ("revokeSignInSessions", guest.id, None) not in directory.writes
        [row] = [e async for e in services.audit.entries() if e.target == guest.id]
        assert row.action == "guest.redemption-reset-failed" and row.details["sessionsRevoked"] is False
        assert row.details["error"]["status"] == 503

    async def test_a_failed_revoke_after_the_reset_is_retried_without_a_second_invitation(self):
        """The reset landed, the revoke failed: the retry finds the invitation and only revokes."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "google")
        services = services_with(directory, FakeLookup())
        original = directory.revoke_sessions

        async def unavailable(user_id):
            raise TransientGraphError("Graph answered 503 ServiceUnavailable", status=503)

        directory.revoke_sessions = unavailable  # type: ignore[method-assign]
        first = await ticket_outcome(services, ticketId="T-1", objectId=guest.id)
        assert first.verdict is not Verdict.DONE and len(resets_sent(directory)) == 1
        directory.revoke_sessions = original  # type: ignore[method-assign]
        services.clock = FixedClock(NOW + timedelta(minutes=11))
        retried = await ticket_outcome(services, ticketId="T-1", objectId=guest.id)
        assert retried.verdict is Verdict.DONE and len(resets_sent(directory)) == 1
        assert ("revokeSignInSessions", guest.id, None) in directory.writes


def refuse_resets(directory: FakeDirectory) -> None:
    """Graph without User.ReadWrite.All: a reset is 403 Authorization_RequestDenied (plain invitations pass)."""
    original = directory.invite_guest

    refused: list[str] = []

    async def denied(request):
        if request.reset_redemption:
            refused.append(request.invited_user_id or "")
            raise PermissionDeniedError(
                "Insufficient privileges to complete the operation.", status=403, code="Authorization_RequestDenied"
            )
        return await original(request)

    directory.invite_guest = denied  # type: ignore[method-assign]
    directory.refused = refused  # type: ignore[attr-defined]
    directory.grant = lambda: setattr(directory, "invite_guest", original)  # type: ignore[attr-defined]


class TestPermissionMissing:
    """A reset without User.ReadWrite.All: no session revoked, a failure naming the permission, replayable."""

    async def test_a_ticket_fails_naming_the_permission_revokes_nothing_and_replays_once_granted(self):
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "google")
        services = services_with(directory, FakeLookup())
        refuse_resets(directory)
        outcome = await ticket_outcome(services, ticketId="T-1", objectId=guest.id)
        assert outcome.verdict is Verdict.FAILED and outcome.code == "permission-missing"
        assert "User.ReadWrite.All" in outcome.message and outcome.detail["permission"] == "User.ReadWrite.All"
        assert outcome.detail["replayable"] is True
        assert not any(w[0] == "revokeSignInSessions" for w in directory.writes)
        assert directory.users[guest.id].external_user_state == "Accepted"
        directory.grant()  # type: ignore[attr-defined]
        replayed = await ticket_outcome(services, ticketId="T-1", objectId=guest.id)
        assert replayed.verdict is Verdict.DONE and resets_sent(directory) == [guest.id]
        assert ("revokeSignInSessions", guest.id, None) in directory.writes

    async def test_a_refused_address_update_fails_before_any_invitation_or_revoke(self):
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "entra")
        services = services_with(directory, FakeLookup())

        async def denied(user_id, **changes):  # Graph without a mail permission (User-Mail.ReadWrite.All or higher)
            raise PermissionDeniedError("Insufficient privileges.", status=403, code="Authorization_RequestDenied")

        directory.update_user = denied  # type: ignore[method-assign]
        outcome = await ticket_outcome(services, ticketId="T-2", objectId=guest.id, newEmail="ana@fabrikam.co.uk")
        assert outcome.verdict is Verdict.FAILED and outcome.code == "permission-missing"
        assert outcome.detail["step"].startswith("the address update")
        assert directory.invitations == [] and directory.writes == []

    async def test_a_fanned_out_run_stops_after_one_refusal_and_a_rerun_resets_everyone(self):
        """The run's probe meets the 403: it fails its guest naming the permission and stops the run, and the
        other guests are never sent (one 403, no retries); the same run id dispatched again once granted resets
        all three."""
        directory = FakeDirectory()
        guests = [redeemed(directory, f"p{n}@fabrikam.com", "google") for n in range(3)]
        services = services_with(directory, FakeLookup())
        refuse_resets(directory)
        summary = await run_locally(services, "enforce", "reset-perm")
        assert summary["progress"]["reset"] == 0 and "User.ReadWrite.All" in summary["reason"]
        assert summary["reason"].startswith("stopped:")
        assert len(directory.refused) == 1  # type: ignore[attr-defined]
        assert summary["worker"] == {"failed": 1} and summary["progress"]["waiting"] == 2
        flags = (await status(services, reset_ports(services).runs))["attention"]
        assert [(f["kind"], f["runId"]) for f in flags] == [("stopped", "reset-perm")]
        # The 3 a.m. reader is given the exact command, in the run's reason and in status' next step.
        rerun = "python -m lifecycle run redemption-reset --mode enforce --run-id reset-perm"
        assert rerun in summary["reason"] and flags[0]["next"].endswith(rerun)
        assert not any(w[0] == "revokeSignInSessions" for w in directory.writes)
        items = [i async for i in services.work_items.query(kind="redemption-reset")]
        assert sorted(i.status.value for i in items) == ["dead-lettered", "queued", "queued"]
        [failed] = [i for i in items if i.status is WorkStatus.DEAD_LETTERED]
        assert (
            failed.last_error["type"] == "permission-missing"
            and failed.last_error["permission"] == "User.ReadWrite.All"
        )
        assert rerun in failed.last_error["next"]  # what `failed --json` and `show KEY` give the on-call engineer
        directory.grant()  # type: ignore[attr-defined]
        rerun = await run_locally(services, "enforce", "reset-perm")
        assert rerun["dispatched"] == 3 and sorted(resets_sent(directory)) == sorted(g.id for g in guests)
        assert rerun["progress"] == {"planned": 3, "reset": 3, "skipped": 0, "failed": 0, "waiting": 0}
        assert rerun["reason"] == ""

    async def test_a_domain_ticket_fails_naming_the_permission_and_its_replay_finishes_the_run(self):
        directory = FakeDirectory()
        guests = [redeemed(directory, f"p{n}@fabrikam.com", "google") for n in range(2)]
        services = services_with(directory, FakeLookup())
        refuse_resets(directory)
        outcome = await ticket_outcome(services, ticketId="T-5", domain="fabrikam.com")
        assert outcome.verdict is Verdict.FAILED and outcome.code == "permission-missing"
        assert "User.ReadWrite.All" in outcome.message and directory.writes == []
        directory.grant()  # type: ignore[attr-defined]
        replayed = await ticket_outcome(services, ticketId="T-5", domain="fabrikam.com")
        assert replayed.verdict is Verdict.DONE and sorted(resets_sent(directory)) == sorted(g.id for g in guests)


class TestSwitchedOff:
    """Without the opt-in (LIFECYCLE_RESET_ENABLED, User.ReadWrite.All) nothing is reset and nothing revoked."""

    @pytest.mark.parametrize("target", [{"email": "ana@fabrikam.com"}, {"domain": "fabrikam.com"}])
    async def test_reset_tickets_are_rejected_kind_not_available(self, target):
        directory = FakeDirectory()
        redeemed(directory, "ana@fabrikam.com", "google")
        services = services_with(directory, FakeLookup(), enabled=False)
        outcome = await ticket_outcome(services, ticketId="T-1", **target)
        assert outcome.verdict is Verdict.REJECTED and outcome.code == "kind-not-available"
        assert "LIFECYCLE_RESET_ENABLED" in outcome.message and directory.writes == []

    async def test_the_daily_run_only_plans_even_in_enforce_mode(self):
        directory = FakeDirectory()
        redeemed(directory, "ana@fabrikam.com", "google")
        services = services_with(directory, FakeLookup(), enabled=False)
        services.settings = services.settings.model_copy(update={"reset_mode": "enforce"})
        summary = await on_timer(services, past_due=False)
        assert summary["mode"] == "plan" and summary["status"] == "planned" and sum(summary["actions"].values()) == 1
        assert directory.invitations == [] and directory.writes == []

    async def test_an_enforced_run_or_an_approval_is_refused(self):
        services = services_with(FakeDirectory(), FakeLookup(), enabled=False)
        with pytest.raises(ResetRunError, match=r"User\.ReadWrite\.All"):
            await run_locally(services, "enforce")
        with pytest.raises(ResetRunError, match="LIFECYCLE_RESET_ENABLED"):
            await approve_locally(services, "reset-2026-01-01", "oncall")


NEW_ADATUM_TENANT = "7b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e"


def with_adatum_tenant(services, tenant_id: str, inbound: str) -> None:
    """The desired state names Adatum's Entra tenant, with inbound B2B collaboration ``inbound``."""
    users = TargetConfiguration(access_type=inbound, targets=(Target(target="AllUsers", target_type="user"),))
    blocks = CrossTenantBlocks(b2b_collaboration_inbound=B2BSetting(users_and_groups=users))
    partners = dict(services.desired.partners)
    partners["adatum"] = partners["adatum"].model_copy(update={"tenant_id": tenant_id, "cross_tenant_access": blocks})
    services.desired = services.desired.model_copy(update={"partners": partners})


class TestProviderTenantPolicy:
    """A reset guest redeems with its domain's new tenant: the desired state must let that tenant in first."""

    async def test_a_move_to_a_tenant_the_desired_state_blocks_resets_nobody_and_says_why(self):
        directory = FakeDirectory()
        redeemed(directory, "ana@adatum.com", "google")
        services = services_with(directory, FakeLookup(tenants={"adatum.com": NEW_ADATUM_TENANT}))
        planned = await run_locally(services, "plan")
        assert planned["actions"] == {} and planned["skipped"] == {"provider-tenant-not-allowed-inbound": 1}
        assert NEW_ADATUM_TENANT in planned["reason"] and "partners.adatum.tenantId" in planned["reason"]
        enforced = await run_locally(services, "enforce", planned["runId"])
        assert enforced["dispatched"] == 0 and resets_sent(directory) == []
        audit = [e async for e in services.audit.entries() if e.action == "redemption-reset.planned"]
        assert "adatum.com" in audit[0].details["blocked"]
        assert "not allowed inbound" in reset_summary(enforced)

    async def test_once_the_desired_state_lets_the_new_tenant_in_the_guest_is_reset(self):
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@adatum.com", "google")
        services = services_with(directory, FakeLookup(tenants={"adatum.com": NEW_ADATUM_TENANT}))
        with_adatum_tenant(services, NEW_ADATUM_TENANT, "allowed")
        summary = await run_locally(services, "enforce")
        assert summary["actions"] == {"reset/google->entra": 1} and resets_sent(directory) == [guest.id]

    async def test_a_partner_policy_that_blocks_its_own_tenant_blocks_the_reset(self):
        directory = FakeDirectory()
        redeemed(directory, "ana@adatum.com", "google")
        services = services_with(directory, FakeLookup(tenants={"adatum.com": NEW_ADATUM_TENANT}))
        with_adatum_tenant(services, NEW_ADATUM_TENANT, "blocked")
        summary = await run_locally(services, "enforce")
        assert summary["skipped"] == {"provider-tenant-not-allowed-inbound": 1} and resets_sent(directory) == []


class TestRedemptionOrder:
    """The tenant's configured redemption order decides which provider a domain's guests should have."""

    async def _planned(self, lookup: FakeLookup, *guests: tuple[str, str]) -> dict[str, str]:
        """email -> provider used, for the guests an enforce run reset."""
        directory = FakeDirectory()
        created = [(redeemed(directory, email, used).id, email, used) for email, used in guests]
        await run_locally(services_with(directory, lookup), "enforce")
        reset = set(resets_sent(directory))
        return {email: used for object_id, email, used in created if object_id in reset}

    async def test_federation_first_expects_federation_where_the_default_order_expects_entra(self):
        """A domain with both an Entra tenant and SAML federation: the order decides whose guests are reset."""
        guests = (("ana@adatum.com", "entra"), ("ben@adatum.com", "saml"))
        both = {"tenants": {"adatum.com": ADATUM_TENANT}, "federations": {"adatum.com": "fed-1"}}
        default = await self._planned(OrderedLookup(None, **both), *guests)
        assert default == {"ben@adatum.com": "saml"}
        federation_first = order("externalFederation", "azureActiveDirectory", "socialIdentityProviders")
        assert await self._planned(OrderedLookup(federation_first, **both), *guests) == {"ana@adatum.com": "entra"}

    async def test_an_email_passcode_fallback_resets_microsoft_account_guests_of_a_domain_without_a_provider(self):
        """Fallback emailOneTimePasscode: MSA guests move to passcodes; passcode and Google guests stay."""
        guests = (("ana@adatum.com", "msa"), ("ben@adatum.com", "otp"), ("cy@adatum.com", "google"))
        assert await self._planned(OrderedLookup(order(*DEFAULT_PRIMARY)), *guests) == {}
        otp = order(*DEFAULT_PRIMARY, fallback="emailOneTimePasscode")
        assert await self._planned(OrderedLookup(otp), *guests) == {"ana@adatum.com": "msa"}

    async def test_a_primary_provider_left_out_of_the_order_is_not_expected(self):
        """Without azureActiveDirectory in the order, an Entra-verified domain's guests fall back to personal."""
        lookup = OrderedLookup(order("externalFederation"), tenants={"adatum.com": ADATUM_TENANT})
        guests = (("ana@adatum.com", "entra"), ("ben@adatum.com", "otp"))
        assert await self._planned(lookup, *guests) == {"ana@adatum.com": "entra"}

    async def test_the_plan_names_the_order_it_followed(self):
        """The planned reset's evidence carries the order and what the domain now accepts."""
        directory = FakeDirectory()
        redeemed(directory, "ana@adatum.com", "msa")
        otp = order(*DEFAULT_PRIMARY, fallback="emailOneTimePasscode")
        services = services_with(directory, OrderedLookup(otp))
        summary = await run_locally(services, "plan")
        assert summary["actions"] == {"reset/microsoft-account->email-otp": 1}

    @pytest.mark.parametrize(
        ("config", "primary", "fallback"),
        [
            (None, DEFAULT_PRIMARY, "defaultConfiguredIdp"),
            ({}, DEFAULT_PRIMARY, "defaultConfiguredIdp"),
            (
                order("externalFederation", "unknownFutureValue"),
                ("externalFederation", "unknownFutureValue"),
                "defaultConfiguredIdp",
            ),
            (
                order("azureActiveDirectory", fallback="unknownFutureValue"),
                ("azureActiveDirectory",),
                "defaultConfiguredIdp",
            ),
            (order(fallback="microsoftAccount"), (), "microsoftAccount"),
        ],
        ids=["absent", "empty-object", "unknown-primary", "unknown-fallback", "no-primary"],
    )
    def test_an_absent_or_partly_unknown_order_reads_safely(self, config, primary, fallback):
        """Absent means the documented default; unknown members are ignored, an unknown fallback is the default."""
        parsed = RedemptionOrder.from_graph(config)
        assert (parsed.primary, parsed.fallback) == (primary, fallback)
