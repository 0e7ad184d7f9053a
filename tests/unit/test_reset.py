"""Redemption reset on fakes: provider transitions, plan/enforce, the brake, idempotency and tickets."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from config.desired_state import B2BSetting, CrossTenantBlocks, Target, TargetConfiguration
from lifecycle import work
from lifecycle.adapters.sweep_runs import MemorySweepRuns
from lifecycle.clock import FixedClock
from lifecycle.errors import BadRequestError, TransientGraphError
from lifecycle.models import DirectoryUser, ObjectIdentity, WorkItem, WorkStatus
from lifecycle.outcomes import Verdict
from lifecycle.reset.entry import (
    approve_reset_run,
    format_summary,
    handle_reset_ticket,
    run_reset_detection,
    use_lookup,
)
from lifecycle.reset.guest import marker_key
from lifecycle.reset.planner import detect
from lifecycle.sweep.entry import use_runs
from lifecycle.tickets import ResetRedemptionTicket
from tests.builders import NOW, memory_services
from tests.fakes import FakeDirectory

FABRIKAM_TENANT = "9a3d526c-1b7e-4c2f-8d6a-5e0f3b7c9d21"
ISSUERS = {"entra": "ExternalAzureAD", "google": "google.com", "otp": "mail", "saml": "https://sts.adatum.com/adfs"}


class FakeLookup:
    def __init__(
        self,
        tenants: dict[str, str] | None = None,
        federations: dict[str, str] | None = None,
        existing: set[str] | None = None,
    ) -> None:
        default = {"fabrikam.com": FABRIKAM_TENANT, "fabrikam.co.uk": FABRIKAM_TENANT}
        self.tenants = default if tenants is None else tenants
        self.federations = federations or {}
        # Tenants found by id: those the domains name, unless a test says otherwise.
        self.existing = set(self.tenants.values()) if existing is None else existing

    async def tenant_for_domain(self, domain: str) -> str | None:
        return self.tenants.get(domain)

    async def tenant_exists(self, tenant_id: str) -> bool:
        return tenant_id in self.existing

    async def federation_for_domain(self, domain: str) -> str | None:
        return self.federations.get(domain)


def redeemed(directory: FakeDirectory, email: str, provider: str, **fields) -> DirectoryUser:
    upn = f"{email.replace('@', '_')}#EXT#@contoso.onmicrosoft.com"
    user = DirectoryUser(
        id=str(uuid.uuid4()),
        user_type="Guest",
        display_name=email.split("@")[0],
        mail=email,
        user_principal_name=upn,
        account_enabled=True,
        external_user_state="Accepted",
        external_user_state_changed=NOW - timedelta(days=200),
        identities=(
            ObjectIdentity("userPrincipalName", "contoso.onmicrosoft.com", upn),
            ObjectIdentity("federated", ISSUERS[provider], None),
        ),
        other_mails=(email,),
    )
    return directory.put(replace(user, **fields))


def services_with(directory: FakeDirectory, lookup: FakeLookup, clock: FixedClock | None = None, **reset):
    services = memory_services(directory, clock or FixedClock(NOW))
    if reset:
        settings = services.desired.redemption_reset.model_copy(update=reset)
        services.desired = services.desired.model_copy(update={"redemption_reset": settings})
    directory.now = services.clock.now()
    return use_lookup(use_runs(services, MemorySweepRuns()), lookup)


def resets_sent(directory: FakeDirectory) -> list[str]:
    return [i.invited_user_id or "" for i in directory.invitations if i.reset_redemption]


async def ticket_outcome(services, **fields):
    ticket = ResetRedemptionTicket.model_validate({"schemaVersion": 1, "kind": "reset-redemption", **fields})
    item = await work.begin(services, f"ticket:{ticket.ticket_id}", kind=ticket.kind)
    assert item is not None
    return await handle_reset_ticket(ticket, item, services, b"{}", "fp")


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
        summary = await run_reset_detection(services, "enforce")
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
        summary = await run_reset_detection(services_with(directory, FakeLookup()), "enforce")
        assert summary["actions"] == {} and summary["skipped"] == {"provider-unchanged": 1}
        assert resets_sent(directory) == []

    async def test_a_partner_domain_the_tenant_lookup_cannot_place_is_left_alone_and_says_why(self):
        """fabrikam.co.uk is not Fabrikam's primary domain, so the look-up by domain finds no tenant; Fabrikam's
        tenant (named in the desired state) still exists, so its Entra guests are not taken for personal
        accounts: nobody is reset, the skip and the domain's provider say why, and force still plans them."""
        directory = FakeDirectory()
        redeemed(directory, "ana@fabrikam.co.uk", "entra")
        lookup = FakeLookup(tenants={"fabrikam.com": FABRIKAM_TENANT})
        summary = await run_reset_detection(services_with(directory, lookup), "enforce")
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
        summary = await run_reset_detection(services_with(directory, FakeLookup()), "enforce")
        assert summary["totalGuests"] == 2 and summary["skipped"] == {"not-redeemed": 1, "disabled": 1}

    async def test_a_protected_group_member_is_never_reset(self):
        """The protected group is an exclusion for every job: its guests are skipped like listed object ids."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@adatum.com", "google")
        lookup = FakeLookup(tenants={"adatum.com": "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"})
        services = services_with(directory, lookup)
        directory.add_to_group(services.desired.exclusions.protected_group_id, guest.id)
        summary = await run_reset_detection(services, "enforce")
        assert summary["actions"] == {} and summary["skipped"] == {"protected-group": 1}
        assert resets_sent(directory) == [] and directory.writes == []

    async def test_a_reset_refuses_to_plan_when_the_protected_group_cannot_be_read(self):
        """Without the protected group's members the run fails with the reason instead of risking a member."""

        class NoGroups:
            def __init__(self, inner: FakeDirectory) -> None:
                self.list_guests, self.get_user = inner.list_guests, inner.get_user

        directory = FakeDirectory()
        redeemed(directory, "ana@adatum.com", "google")
        lookup = FakeLookup(tenants={"adatum.com": "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"})
        services = services_with(directory, lookup)
        services.directory = NoGroups(directory)  # type: ignore[assignment]
        summary = await run_reset_detection(services, "enforce")
        assert summary["status"] == "failed" and "protected group" in summary["reason"]
        assert resets_sent(directory) == []


class TestModesAndBrake:
    async def test_plan_mode_sends_nothing_and_enforce_later_carries_out_the_same_plan(self):
        """A plan run queues the resets; an enforce run of the same day sends exactly those."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "google")
        services = services_with(directory, FakeLookup())
        planned = await run_reset_detection(services, "plan")
        assert planned["status"] == "planned" and planned["actions"] == {"reset/google->entra": 1}
        assert resets_sent(directory) == []
        await run_reset_detection(services, "enforce")
        assert resets_sent(directory) == [guest.id]

    async def test_a_run_over_the_brake_count_waits_for_approval(self):
        """More resets than brakeCount: nothing is sent until an operator approves the run id."""
        directory = FakeDirectory()
        guests = [redeemed(directory, f"p{n}@fabrikam.com", "otp") for n in range(3)]
        services = services_with(directory, FakeLookup(), brake_count=2)
        braked = await run_reset_detection(services, "enforce")
        assert braked["status"] == "braked" and "approve" in braked["reason"]
        assert resets_sent(directory) == []
        approved = await approve_reset_run(services, braked["runId"], "oncall@contoso.com")
        assert approved["brake"]["approvedBy"] == "oncall@contoso.com" and approved["dispatched"] == 3
        assert sorted(resets_sent(directory)) == sorted(g.id for g in guests)


class TestIdempotency:
    async def test_a_repeated_run_and_a_ticket_within_the_window_send_one_invitation(self):
        """Replaying the run and a ticket for the same guest inside the window send no second email."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "google")
        services = services_with(directory, FakeLookup())
        first = await run_reset_detection(services, "enforce")
        await run_reset_detection(services, "enforce", first["runId"])
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
        """newEmail becomes mail and joins otherMails first; the invitation goes to it, same object id."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "entra")
        services = services_with(directory, FakeLookup())
        outcome = await ticket_outcome(
            services, ticketId="T-1", email="ana@fabrikam.com", newEmail="ana@fabrikam.co.uk"
        )
        assert outcome.verdict is Verdict.DONE and outcome.detail["objectId"] == guest.id
        updated = directory.users[guest.id]
        assert updated.mail == "ana@fabrikam.co.uk" and "ana@fabrikam.co.uk" in updated.other_mails
        kinds = [w[0] for w in directory.writes]
        assert kinds.index("update") < kinds.index("revokeSignInSessions")
        assert directory.invitations[-1].email == "ana@fabrikam.co.uk"

    async def test_a_new_email_owned_by_someone_else_is_refused(self):
        """An address that belongs to another user is never moved onto the guest."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@fabrikam.com", "entra")
        directory.add_member("ana@contoso.com")
        services = services_with(directory, FakeLookup())
        outcome = await ticket_outcome(services, ticketId="T-1", objectId=guest.id, newEmail="ana@contoso.com")
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

    async def test_sessions_revoked_before_a_failed_invitation_are_audited(self):
        """The revoke lands, the re-invitation fails: the tenant changed, so the audit says so and why."""
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@adatum.com", "google")
        lookup = FakeLookup(tenants={"adatum.com": "5c8e1f2a-6d3b-4a9e-b7c0-1d2e3f4a5b6c"})
        services = services_with(directory, lookup)

        async def unavailable(request):
            raise TransientGraphError("Graph answered 503 ServiceUnavailable", status=503)

        directory.invite_guest = unavailable  # type: ignore[method-assign]
        await run_reset_detection(services, "enforce")
        assert ("revokeSignInSessions", guest.id, None) in directory.writes
        [row] = [e async for e in services.audit.entries() if e.target == guest.id]
        assert row.action == "guest.redemption-reset-failed" and row.details["sessionsRevoked"] is True
        assert row.details["error"]["status"] == 503


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
        planned = await run_reset_detection(services, "plan")
        assert planned["actions"] == {} and planned["skipped"] == {"provider-tenant-not-allowed-inbound": 1}
        assert NEW_ADATUM_TENANT in planned["reason"] and "partners.adatum.tenantId" in planned["reason"]
        enforced = await run_reset_detection(services, "enforce", planned["runId"])
        assert enforced["dispatched"] == 0 and resets_sent(directory) == []
        audit = [e async for e in services.audit.entries() if e.action == "redemption-reset.planned"]
        assert "adatum.com" in audit[0].details["blocked"]
        assert "not allowed inbound" in format_summary(enforced)

    async def test_once_the_desired_state_lets_the_new_tenant_in_the_guest_is_reset(self):
        directory = FakeDirectory()
        guest = redeemed(directory, "ana@adatum.com", "google")
        services = services_with(directory, FakeLookup(tenants={"adatum.com": NEW_ADATUM_TENANT}))
        with_adatum_tenant(services, NEW_ADATUM_TENANT, "allowed")
        summary = await run_reset_detection(services, "enforce")
        assert summary["actions"] == {"reset/google->entra": 1} and resets_sent(directory) == [guest.id]

    async def test_a_partner_policy_that_blocks_its_own_tenant_blocks_the_reset(self):
        directory = FakeDirectory()
        redeemed(directory, "ana@adatum.com", "google")
        services = services_with(directory, FakeLookup(tenants={"adatum.com": NEW_ADATUM_TENANT}))
        with_adatum_tenant(services, NEW_ADATUM_TENANT, "blocked")
        summary = await run_reset_detection(services, "enforce")
        assert summary["skipped"] == {"provider-tenant-not-allowed-inbound": 1} and resets_sent(directory) == []
