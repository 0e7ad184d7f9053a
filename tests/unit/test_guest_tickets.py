"""Delayed invitations, extend and offboard tickets, on in-memory fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lifecycle.ledger.outcomes import Verdict
from lifecycle.ledger.settle import process
from lifecycle.models import GuestState, WorkStatus
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.onboarding.holds import release_due
from tests.builders import memory_services, message
from tests.builders import onboard_ticket as onboard
from tests.fakes import FakeDirectory


def ticket(kind: str, ticket_id: str, **fields) -> dict:
    return {"schemaVersion": 1, "kind": kind, "ticketId": ticket_id, "email": "ana.lopez@fabrikam.com", **fields}


@pytest.fixture(name="directory")
def _directory() -> FakeDirectory:
    directory = FakeDirectory()
    directory.add_member("megan.bowen@contoso.com")
    return directory


async def _drain(services) -> list:
    outcomes = []
    while batch := await services.transport.receive("onboarding"):
        for received in batch:
            outcomes.append(await process("onboarding", received, handle_ticket, services))
    return outcomes


class TestDelayedInvitations:
    async def test_a_future_not_before_parks_the_ticket_without_inviting(self, directory):
        """notBefore in the future holds the ticket in the job ledger and completes the message."""
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard(notBefore="2026-11-24T09:30:00Z")), services)
        assert outcome.verdict is Verdict.HELD and directory.invitations == []
        assert (await services.work_items.get("ticket:RITM0010001")).status is WorkStatus.HELD

    async def test_a_hold_is_released_once_when_due_and_then_invites(self, directory):
        """The release timer sends a due hold exactly once; the released ticket invites the guest."""
        services = memory_services(directory)
        await handle_ticket(message(onboard(notBefore="2026-11-24T09:30:00Z")), services)

        assert await release_due(services) == []
        services.clock.advance(timedelta(days=1))
        assert await release_due(services) == ["ticket:RITM0010001"]
        assert await release_due(services) == []
        [outcome] = await _drain(services)
        assert outcome.verdict is Verdict.DONE and len(directory.invitations) == 1

    async def test_a_hold_months_ahead_is_kept_for_as_long_as_it_takes(self, directory):
        """Any horizon works: a hold four months out is released after four months, not before."""
        services = memory_services(directory)
        await handle_ticket(message(onboard(notBefore="2027-03-20T08:00:00Z", endDate="2027-06-30")), services)
        services.clock.advance(timedelta(days=116))
        assert await release_due(services) == []
        services.clock.advance(timedelta(days=2))
        assert await release_due(services) == ["ticket:RITM0010001"]

    async def test_an_offboard_ticket_cancels_a_hold_before_it_fires(self, directory):
        """Offboarding before notBefore withdraws the hold; nothing is ever invited."""
        services = memory_services(directory)
        await handle_ticket(message(onboard(notBefore="2026-12-01T00:00:00Z")), services)
        outcome = await handle_ticket(message(ticket("offboard", "RITM0010002", reason="deal cancelled")), services)

        assert outcome.verdict is Verdict.DONE and outcome.detail["cancelledHolds"] == ["ticket:RITM0010001"]
        services.clock.advance(timedelta(days=30))
        assert await release_due(services) == []
        replay = await handle_ticket(message(onboard(notBefore="2026-12-01T00:00:00Z"), "m-9"), services)
        assert replay.verdict is Verdict.DUPLICATE and directory.invitations == []


class TestOffboard:
    async def test_offboarding_disables_revokes_and_records_when_the_product_disabled_the_guest(self, directory):
        """Offboard disables the account, revokes sessions and stamps the ledger for the grace period."""
        services = memory_services(directory)
        await handle_ticket(message(onboard()), services)
        outcome = await handle_ticket(message(ticket("offboard", "RITM0010002")), services)

        [guest] = directory.guests_with_mail("ana.lopez@fabrikam.com")
        assert outcome.verdict is Verdict.DONE and guest.account_enabled is False
        assert ("revokeSignInSessions", guest.id, None) in directory.writes
        record = await services.guests.get(guest.id)
        assert record.state is GuestState.DISABLED and record.disabled == services.clock.now()
        assert "guest.disabled" in [e.action async for e in services.audit.entries()]

    async def test_offboarding_a_members_address_touches_nothing(self, directory):
        """An address that belongs to a member is refused; members are never modified."""
        directory.add_member("ana.lopez@fabrikam.com")
        services = memory_services(directory)
        outcome = await handle_ticket(message(ticket("offboard", "RITM0010002")), services)
        assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "not-a-guest") and directory.writes == []

    async def test_offboarding_an_unknown_address_is_rejected(self, directory):
        """No guest with that address and no hold: rejected with guest-not-found."""
        services = memory_services(directory)
        outcome = await handle_ticket(message(ticket("offboard", "RITM0010002")), services)
        assert outcome.code == "guest-not-found"


class TestExtend:
    async def test_extend_moves_the_end_date_in_the_ledger(self, directory):
        """An extend ticket sets the new inclusive end date and audits the change."""
        services = memory_services(directory)
        await handle_ticket(message(onboard()), services)
        outcome = await handle_ticket(message(ticket("extend", "RITM0010003", endDate="2027-06-30")), services)

        [guest] = directory.guests_with_mail("ana.lopez@fabrikam.com")
        assert outcome.verdict is Verdict.DONE
        assert (await services.guests.get(guest.id)).end_date.date().isoformat() == "2027-07-01"

    async def test_extend_and_attest_end_a_sponsor_gone_period(self, directory):
        """Somebody acted for the guest: the sponsor-gone mark is cleared, so the sweep's disable never comes from it
        (a guest still without sponsors starts a new period with a new event)."""
        services = memory_services(directory)
        await handle_ticket(message(onboard()), services)
        [guest] = directory.guests_with_mail("ana.lopez@fabrikam.com")
        for done in (
            ticket("extend", "RITM0010003", endDate="2027-06-30"),
            ticket("attest", "RITM0010004", attestedBy="megan.bowen@contoso.com", attestedAt="2026-11-20T10:00:00Z"),
        ):
            record = await services.guests.get(guest.id)
            record.sponsor_gone_since = services.clock.now() - timedelta(days=3)
            await services.guests.save(record)
            assert (await handle_ticket(message(done), services)).verdict is Verdict.DONE
            assert (await services.guests.get(guest.id)).sponsor_gone_since is None

    async def test_extend_beyond_the_partners_maximum_engagement_is_rejected(self, directory):
        """The new end date must stay within the partner's maxEngagementDays from today."""
        services = memory_services(directory)
        await handle_ticket(message(onboard()), services)
        outcome = await handle_ticket(message(ticket("extend", "RITM0010003", endDate="2028-06-30")), services)
        assert outcome.code == "end-date-out-of-range"

    async def test_extending_a_guest_the_product_never_onboarded_is_rejected(self, directory):
        """Only guests with a ledger row are managed; others are reported, not adopted silently."""
        directory.add_guest("ana.lopez@fabrikam.com")
        services = memory_services(directory)
        outcome = await handle_ticket(message(ticket("extend", "RITM0010003", endDate="2027-01-31")), services)
        assert outcome.code == "guest-not-managed"


class TestAttest:
    async def test_a_sponsors_attestation_is_kept_in_the_ledger_audited_and_shown_in_the_report(self, directory):
        """The sponsor named at onboarding confirms the guest: who and when are kept on the ledger row (and in its
        history), audited, and the posture report lists it; a guest without one is listed as never attested."""
        from lifecycle.report import collect, to_html, to_markdown

        services = memory_services(directory)
        await handle_ticket(message(onboard()), services)
        await handle_ticket(
            message(onboard(ticketId="RITM0010009", email="li.wei@fabrikam.com", displayName="Li Wei")), services
        )
        attest = ticket(
            "attest", "RITM0010005", attestedBy="megan.bowen@contoso.com", attestedAt="2026-11-20T10:00:00Z"
        )
        outcome = await handle_ticket(message(attest), services)

        assert outcome.verdict is Verdict.DONE
        [guest] = directory.guests_with_mail("ana.lopez@fabrikam.com")
        record = await services.guests.get(guest.id)
        sponsor = await directory.get_user("megan.bowen@contoso.com")
        assert record.attested.isoformat() == "2026-11-20T10:00:00+00:00" and record.attested_by == sponsor.id
        assert record.history[-1]["event"] == "attested" and record.history[-1]["ticket"] == "RITM0010005"
        assert [e.action async for e in services.audit.entries()][-1] == "guest.attested"
        posture = await collect(services)
        assert [a["email"] for a in posture.attested] == ["ana.lopez@fabrikam.com"]
        assert [a["email"] for a in posture.never_attested] == ["li.wei@fabrikam.com"]
        assert "2026-11-20 ana.lopez@fabrikam.com" in to_markdown(posture) and "Never attested: 1" in to_html(posture)

    async def test_only_an_enabled_member_who_sponsors_the_guest_may_attest(self, directory):
        """Another employee's word is refused (attester-not-sponsor), as is a guest's or an unknown name's."""
        services = memory_services(directory)
        directory.add_member("adele.vance@contoso.com")
        await handle_ticket(message(onboard()), services)
        not_sponsor = ticket("attest", "RITM0010006", attestedBy="adele.vance@contoso.com")
        assert (await handle_ticket(message(not_sponsor), services)).code == "attester-not-sponsor"
        unknown = ticket("attest", "RITM0010007", attestedBy="nobody@contoso.com")
        assert (await handle_ticket(message(unknown), services)).code == "attester-not-member"
        [guest] = directory.guests_with_mail("ana.lopez@fabrikam.com")
        assert (await services.guests.get(guest.id)).attested is None

    async def test_an_attestation_dated_in_the_future_or_for_an_unmanaged_guest_is_rejected(self, directory):
        services = memory_services(directory)
        directory.add_guest("ana.lopez@fabrikam.com")
        unmanaged = ticket("attest", "RITM0010008", attestedBy="megan.bowen@contoso.com")
        assert (await handle_ticket(message(unmanaged), services)).code == "guest-not-managed"
        other = memory_services(FakeDirectory())
        other.directory.add_member("megan.bowen@contoso.com")
        await handle_ticket(message(onboard()), other)
        ahead = ticket("attest", "RITM0010010", attestedBy="megan.bowen@contoso.com", attestedAt="2027-01-01")
        assert (await handle_ticket(message(ahead), other)).code == "attested-at-future"
