"""Onboarding tickets through the handler, on in-memory fakes of every port."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta

import pytest

from lifecycle.errors import PermissionDeniedError, ThrottledError, TransientGraphError
from lifecycle.ledger.outcomes import Verdict
from lifecycle.ledger.work import BUSY_RECHECK_SECONDS, LEASE_SECONDS, MAX_TRANSIENT_ATTEMPTS
from lifecycle.models import GuestState, WorkStatus
from lifecycle.onboarding.handler import handle_ticket
from tests.builders import memory_services, message, onboard_ticket
from tests.fakes import FakeDirectory


@pytest.fixture(name="directory")
def _directory() -> FakeDirectory:
    directory = FakeDirectory()
    directory.add_member("megan.bowen@contoso.com", "Megan Bowen")
    return directory


async def _rejections(services) -> list:
    return [r async for r in services.rejections.all()]


class TestInvite:
    async def test_a_valid_ticket_invites_one_guest_and_records_ledger_audit_and_work_item(self, directory):
        """A policy-compliant onboard ticket creates one guest, its ledger row, an audit row and a done item."""
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket()), services)

        assert outcome.verdict is Verdict.DONE
        [guest] = directory.guests_with_mail("ana.lopez@fabrikam.com")
        record = await services.guests.get(guest.id)
        assert record.partner == "fabrikam" and record.state is GuestState.INVITED
        assert record.end_date.isoformat() == "2027-04-01T00:00:00+00:00"
        item = await services.work_items.get("ticket:RITM0010001")
        assert item.status is WorkStatus.DONE and item.result["objectId"] == guest.id
        assert [e.action async for e in services.audit.entries()] == ["guest.invited", "access.assigned"]
        assert directory.invitations[0].redirect_url == "https://partners.contoso.com/fabrikam"
        [megan] = [u.id for u in directory.users.values() if u.mail == "megan.bowen@contoso.com"]
        assert directory.invitations[0].sponsor_ids == (megan,) and record.sponsor == megan
        [add] = services.access_packages.adds()
        assert add["user"] == guest.id and add["end"] == record.end_date

    async def test_the_assignment_lookup_is_read_once_while_the_ledger_row_is_written(self, directory):
        """Step 2's first read (the guest's assignment) goes out beside step 1's ledger writes, not after them,
        and is not read a second time: one Graph round trip less per ticket."""
        services = memory_services(directory)
        looked_up = asyncio.Event()
        lookups = []
        real_find, real_save = services.access_packages.find_assignment, services.guests.save

        async def find_assignment(user_id, package_id):
            lookups.append(user_id)
            looked_up.set()
            return await real_find(user_id, package_id)

        async def save_after_the_lookup_started(record):
            await asyncio.wait_for(looked_up.wait(), timeout=2)
            return await real_save(record)

        services.access_packages.find_assignment = find_assignment
        services.guests.save = save_after_the_lookup_started
        outcome = await handle_ticket(message(onboard_ticket()), services)

        assert outcome.verdict is Verdict.DONE
        [guest] = directory.guests_with_mail("ana.lopez@fabrikam.com")
        assert lookups == [guest.id]
        assert [e.action async for e in services.audit.entries()] == ["guest.invited", "access.assigned"]

    async def test_the_same_ticket_delivered_twice_invites_once(self, directory):
        """A redelivered ticket is a duplicate: no second invitation, one ledger row."""
        services = memory_services(directory)
        first = await handle_ticket(message(onboard_ticket(), "m-1"), services)
        second = await handle_ticket(message(onboard_ticket(), "m-2", delivery_count=2), services)

        assert (first.verdict, second.verdict) == (Verdict.DONE, Verdict.DUPLICATE)
        assert len(directory.invitations) == 1
        assert len([r async for r in services.guests.all()]) == 1

    async def test_an_email_that_already_belongs_to_a_guest_reuses_it_without_inviting(self, directory):
        """An existing guest is reused: no invitation call, no second object, ledger points at it."""
        existing = directory.add_guest("ana.lopez@fabrikam.com")
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket()), services)

        assert outcome.verdict is Verdict.DONE and outcome.detail["reused"] is True
        assert directory.invitations == []
        assert (await services.guests.get(existing.id)).ticket_id == "RITM0010001"

    async def test_a_crash_between_the_invitation_and_the_ledger_write_ends_with_one_guest(self, directory):
        """If the ledger write fails after Graph created the guest, the retry reuses that guest."""
        services = memory_services(directory)
        real_save = services.guests.save
        calls = {"n": 0}

        async def crash_once(record):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("worker killed")
            return await real_save(record)

        services.guests.save = crash_once
        with pytest.raises(RuntimeError):
            await handle_ticket(message(onboard_ticket()), services)
        too_soon = await handle_ticket(message(onboard_ticket(), delivery_count=2), services)
        services.clock.advance(timedelta(seconds=LEASE_SECONDS))
        outcome = await handle_ticket(message(onboard_ticket(), delivery_count=3), services)

        assert (too_soon.verdict, too_soon.code) == (Verdict.RETRY, "in-progress")
        assert outcome.verdict is Verdict.DONE
        assert len(directory.guests_with_mail("ana.lopez@fabrikam.com")) == 1
        assert len([r async for r in services.guests.all()]) == 1

    async def test_a_guest_created_by_a_crashed_attempt_is_audited_as_invited_not_reused(self, directory):
        """The retry after a crash between Graph's invitation and the audit finds the guest this ticket created:
        it is recorded as invited (the tenant changed), never as an existing guest that was reused."""
        services = memory_services(directory)
        real_save = services.guests.save
        calls = {"n": 0}

        async def crash_once(record):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("worker killed")
            return await real_save(record)

        services.guests.save = crash_once
        with pytest.raises(RuntimeError):
            await handle_ticket(message(onboard_ticket()), services)
        services.clock.advance(timedelta(seconds=LEASE_SECONDS))
        outcome = await handle_ticket(message(onboard_ticket(), delivery_count=2), services)

        [guest] = directory.guests_with_mail("ana.lopez@fabrikam.com")
        assert outcome.verdict is Verdict.DONE and outcome.detail["reused"] is False
        audited = [(e.action, e.target) async for e in services.audit.entries()]
        assert audited == [("guest.invited", guest.id), ("access.assigned", guest.id)]
        assert len(directory.invitations) == 1

    async def test_a_duplicate_delivered_while_the_first_runs_backs_off_without_touching_the_item(self, directory):
        """A concurrent duplicate inside the lease gets a RETRY for when the lease ends, and no invitation."""
        services = memory_services(directory)
        first = asyncio.Event()
        release = asyncio.Event()
        real_get = directory.get_user

        async def slow_sponsor_lookup(user_id):
            first.set()
            await release.wait()
            return await real_get(user_id)

        directory.get_user = slow_sponsor_lookup
        running = asyncio.create_task(handle_ticket(message(onboard_ticket(), "m-1"), services))
        await first.wait()
        duplicate = await handle_ticket(message(onboard_ticket(), "m-2"), services)
        release.set()
        outcome = await running

        assert (duplicate.verdict, duplicate.code) == (Verdict.RETRY, "in-progress")
        assert duplicate.retry_after == pytest.approx(BUSY_RECHECK_SECONDS)
        assert outcome.verdict is Verdict.DONE and len(directory.invitations) == 1


class TestPolicy:
    @pytest.mark.parametrize(
        ("fields", "code"),
        [
            ({"partner": "globex"}, "unknown-partner"),
            ({"email": "ana@northwindtraders.com"}, "domain-not-partner"),
            ({"endDate": "2026-11-01"}, "end-date-past"),
            ({"endDate": "2028-12-31"}, "end-date-too-far"),
            ({"redirectUrl": "https://evil.example/phish"}, "redirect-not-allowed"),
            ({"redirectUrl": "https://partners.contoso.com.evil.example/"}, "redirect-not-allowed"),
            ({"redirectUrl": "https://partners.contoso.com@evil.example/"}, "redirect-not-allowed"),
            ({"redirectUrl": "http://partners.contoso.com/"}, "redirect-not-allowed"),
            ({"redirectUrl": "https://partners.contoso.com/../x\\@evil"}, "redirect-not-allowed"),
            ({"notBefore": "2027-05-01T00:00:00Z"}, "not-before-after-end"),
        ],
    )
    async def test_a_ticket_against_policy_is_rejected_with_its_reason_before_any_write(self, directory, fields, code):
        """Each policy rule refuses the ticket with a machine-readable code and no Graph write."""
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket(**fields)), services)

        assert outcome.verdict is Verdict.REJECTED
        assert code in outcome.code or code in json.dumps(outcome.detail)
        assert directory.invitations == []
        [rejection] = await _rejections(services)
        assert rejection.key == "ticket:RITM0010001"

    async def test_a_domain_off_the_invitation_allowlist_is_rejected_even_for_a_listed_partner(self, directory):
        """The invitation domain allowlist and the partner's domains must both allow the domain."""
        services = memory_services(directory)
        desired = services.desired.model_copy(
            update={
                "invitations": services.desired.invitations.model_copy(
                    update={"domains": services.desired.invitations.domains.model_copy(update={"domains": ("x.com",)})}
                )
            }
        )
        services.desired = desired
        outcome = await handle_ticket(message(onboard_ticket()), services)
        assert outcome.code == "domain-not-allowed"

    async def test_a_sponsor_that_is_a_guest_is_refused(self, directory):
        """The sponsor must be an employee (a member), never a guest."""
        guest = directory.add_guest("someone@fabrikam.com")
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket(sponsor=guest.id)), services)
        assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "sponsor-not-member")

    async def test_an_unknown_sponsor_is_refused(self, directory):
        """A sponsor that does not exist in the directory is refused."""
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket(sponsor="nobody@contoso.com")), services)
        assert outcome.code == "sponsor-not-found"

    async def test_an_email_of_a_member_is_a_conflict_and_never_invited(self, directory):
        """A local member already owning the address is rejected, never invited as a guest."""
        directory.add_member("ana.lopez@fabrikam.com")
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket()), services)
        assert outcome.code == "email-belongs-to-member" and directory.invitations == []

    async def test_a_rejected_ticket_replayed_is_a_duplicate_but_a_corrected_one_is_processed(self, directory):
        """Replaying the same rejected ticket changes nothing; a corrected ticket with the same id proceeds."""
        services = memory_services(directory)
        bad = onboard_ticket(endDate="2026-01-01")
        assert (await handle_ticket(message(bad), services)).verdict is Verdict.REJECTED
        assert (await handle_ticket(message(bad), services)).verdict is Verdict.DUPLICATE
        assert (await handle_ticket(message(onboard_ticket()), services)).verdict is Verdict.DONE


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (b"{not json", "malformed-json"),
            (b"\xff\xfe", "malformed-json"),
            (b"[1, 2]", "not-an-object"),
            (json.dumps(onboard_ticket(schemaVersion=2)).encode(), "unsupported-schema-version"),
            (json.dumps(onboard_ticket(kind="promote")).encode(), "unknown-kind"),
            (json.dumps(onboard_ticket(email=None)).encode(), "invalid-ticket"),
            (json.dumps(onboard_ticket(surprise=True)).encode(), "invalid-ticket"),
            (json.dumps(onboard_ticket(email="ana(lopez)@fabrikam.com")).encode(), "invalid-ticket"),
            (json.dumps(onboard_ticket(email="ana@fabrikam.com' or 1 eq 1")).encode(), "invalid-ticket"),
            (json.dumps(onboard_ticket(message="x" * 70_000)).encode(), "oversize"),
        ],
    )
    async def test_bad_input_is_rejected_once_with_a_machine_readable_reason(self, directory, body, code):
        """Malformed tickets are recorded in the rejections table, settled, and never reach Graph."""
        services = memory_services(directory)
        outcome = await handle_ticket(message(body), services)

        assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, code)
        [rejection] = await _rejections(services)
        assert rejection.code == code and rejection.raw
        assert directory.invitations == []

    async def test_a_malformed_ticket_delivered_again_is_a_duplicate_with_one_rejection_row(self, directory):
        """Replaying the same bad bytes records nothing new: one rejection, the replay is a duplicate."""
        services = memory_services(directory)
        first = await handle_ticket(message(b"{broken", "m-1"), services)
        second = await handle_ticket(message(b"{broken", "m-1", delivery_count=2), services)
        assert (first.verdict, second.verdict) == (Verdict.REJECTED, Verdict.DUPLICATE)
        assert len(await _rejections(services)) == 1

    async def test_a_quote_in_an_email_is_rejected_before_it_can_reach_a_filter(self, directory):
        """Graph refuses quotes in invitation addresses; the ticket is rejected and no lookup runs."""
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket(email="o'brien@fabrikam.com")), services)
        assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "invalid-ticket")
        assert "email" in outcome.message and directory.invitations == []


class TestTransientFailures:
    async def test_throttling_asks_for_a_retry_after_graphs_retry_after(self, directory):
        """A 429 becomes a RETRY outcome honouring Retry-After, with the error kept on the work item."""
        directory.fail_next.append(ThrottledError("slow down", retry_after=7.5, status=429, code="TooManyRequests"))
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket()), services)

        assert (outcome.verdict, outcome.retry_after) == (Verdict.RETRY, 7.5)
        item = await services.work_items.get("ticket:RITM0010001")
        assert item.last_error["code"] == "TooManyRequests"

    async def test_transient_failures_back_off_exponentially_then_give_up_to_the_dead_letter_queue(self, directory):
        """5xx failures retry with growing delays and end FAILED after the attempt budget."""
        services = memory_services(directory)
        delays = []
        for attempt in range(1, MAX_TRANSIENT_ATTEMPTS + 1):
            directory.fail_next.append(TransientGraphError("503", status=503))
            outcome = await handle_ticket(message(onboard_ticket(), delivery_count=attempt), services)
            delays.append(outcome.retry_after)
        assert delays[:3] == [5.0, 10.0, 20.0]
        assert outcome.verdict is Verdict.FAILED and outcome.code == "transient-retries-exhausted"

    async def test_a_conflict_while_recording_a_transient_failure_still_schedules_the_retry(self, directory):
        """Another writer moved the work item while Graph failed: still a RETRY outcome, not an exception that
        makes the broker abandon the message and spend a delivery on a transient problem."""
        services = memory_services(directory)

        async def touched_then_unavailable(_email: str) -> None:
            item = await services.work_items.get("ticket:RITM0010001")
            await services.work_items.save(item)  # the concurrent writer: the handler's ETag is now stale
            raise TransientGraphError("503", status=503)

        directory.find_user_by_mail = touched_then_unavailable
        outcome = await handle_ticket(message(onboard_ticket()), services)
        assert (outcome.verdict, outcome.code) == (Verdict.RETRY, "transient")

    async def test_a_missing_permission_fails_to_the_dead_letter_queue_instead_of_rejecting_the_ticket(self, directory):
        """A 403 is the operator's problem, not the ticket's: FAILED (replayable), not REJECTED."""
        directory.fail_next.append(PermissionDeniedError("denied", status=403, code="Authorization_RequestDenied"))
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket()), services)
        assert (outcome.verdict, outcome.code) == (Verdict.FAILED, "authorization_requestdenied")
        assert await _rejections(services) == []


class TestAccessPackage:
    async def test_a_pending_assignment_is_followed_until_delivered_without_a_second_request(self, directory):
        """An assignment still delivering asks for a retry; the retry polls the same request, then finishes."""
        services = memory_services(directory)
        services.access_packages.reads_until_delivered = 2
        first = await handle_ticket(message(onboard_ticket()), services)
        second = await handle_ticket(message(onboard_ticket(), delivery_count=2), services)

        assert (first.verdict, first.code) == (Verdict.RETRY, "assignment-pending")
        assert second.verdict is Verdict.DONE
        assert len(services.access_packages.adds()) == 1 and len(directory.invitations) == 1

    async def test_the_new_request_is_read_while_its_id_is_recorded(self, directory):
        """The request's first read goes out beside the checkpoint of its id, not after it: one Table round trip
        less per ticket."""
        services = memory_services(directory)
        read = asyncio.Event()
        real_get, real_save = services.access_packages.get_request, services.work_items.save

        async def get_request(request_id):
            read.set()
            return await real_get(request_id)

        async def save(item):
            if "assignmentRequestId" in item.result and item.status is WorkStatus.RUNNING:
                await asyncio.wait_for(read.wait(), 1.0)  # times out if the read waits for this save
            return await real_save(item)

        services.access_packages.get_request, services.work_items.save = get_request, save
        outcome = await handle_ticket(message(onboard_ticket()), services)
        assert outcome.verdict is Verdict.DONE

    async def test_an_attempt_that_lost_its_work_item_stops_at_the_request_checkpoint(self, directory):
        """Another attempt took the work item while this one posted the request: its checkpoint conflicts, it
        stops with a retry, and the request it read is not followed or recorded as delivered."""
        services = memory_services(directory)
        real_save = services.work_items.save

        async def save(item):
            if "assignmentRequestId" in item.result and item.status is WorkStatus.RUNNING:
                taken = await services.work_items.get(item.key)
                await real_save(taken)  # the other attempt's write: this attempt's ETag is stale now
            return await real_save(item)

        services.work_items.save = save
        outcome = await handle_ticket(message(onboard_ticket()), services)
        assert (outcome.verdict, outcome.code) == (Verdict.RETRY, "state-conflict")
        assert [e.action async for e in services.audit.entries()] == ["guest.invited"]
        assert (await services.work_items.get("ticket:RITM0010001")).status is not WorkStatus.DONE

    async def test_a_failed_assignment_goes_to_the_dead_letter_queue_with_the_state(self, directory):
        """deliveryFailed or denied is an operator problem: FAILED with the request's state as the code."""
        services = memory_services(directory)
        services.access_packages.outcome = "denied"
        outcome = await handle_ticket(message(onboard_ticket()), services)
        assert (outcome.verdict, outcome.code) == (Verdict.FAILED, "assignment-denied")

    async def test_a_ticket_naming_a_package_the_tenant_lacks_is_rejected_before_anyone_is_invited(self, directory):
        """The ticket's own accessPackage is bad input: rejected with its reason, and no guest is created."""
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket(accessPackage="No such package")), services)
        assert (outcome.verdict, outcome.code) == (Verdict.REJECTED, "access-package-not-found")
        assert [r.code for r in await _rejections(services)] == ["access-package-not-found"]
        assert directory.invitations == [] and services.access_packages.adds() == []

    async def test_a_partner_default_package_missing_from_the_tenant_fails_replayably_before_inviting(self, directory):
        """The partner's default package not (yet) created by governance is the operator's problem: FAILED,
        replayable once it exists, and nobody was invited meanwhile."""
        services = memory_services(directory)
        services.access_packages.packages.clear()
        outcome = await handle_ticket(message(onboard_ticket()), services)
        assert (outcome.verdict, outcome.code) == (Verdict.FAILED, "access-package-not-found")
        assert directory.invitations == [] and await _rejections(services) == []

    async def test_an_existing_assignment_is_reused_not_requested_again(self, directory):
        """A guest who already holds the package (e.g. a crash after delivery) gets no second request."""
        services = memory_services(directory)
        await handle_ticket(message(onboard_ticket()), services)
        outcome = await handle_ticket(message(onboard_ticket(ticketId="RITM0010009", endDate="2027-02-01")), services)
        assert outcome.verdict is Verdict.DONE and len(services.access_packages.adds()) == 1

    async def test_an_assignment_still_delivering_is_waited_for_not_recorded_as_delivered(self, directory):
        """An attempt that died after its request but before recording the request id leaves an assignment
        delivering: the next attempt waits for it (no second request) and records it once it is delivered."""
        services = memory_services(directory)
        await handle_ticket(message(onboard_ticket()), services)
        packages = services.access_packages
        [(key, assignment)] = packages.assignments.items()
        packages.assignments[key] = dataclasses.replace(assignment, state="delivering")
        again = onboard_ticket(ticketId="RITM0010009", endDate="2027-02-01")

        waiting = await handle_ticket(message(again), services)
        packages.assignments[key] = assignment
        delivered = await handle_ticket(message(again, delivery_count=2), services)

        assert (waiting.verdict, waiting.code) == (Verdict.RETRY, "assignment-pending")
        assert delivered.verdict is Verdict.DONE and len(packages.adds()) == 1
        actions = [e.action async for e in services.audit.entries() if e.key == "ticket:RITM0010009"]
        assert actions.count("access.already-assigned") == 1


def _megan(directory: FakeDirectory) -> str:
    return next(u.id for u in directory.users.values() if u.user_principal_name == "megan.bowen@contoso.com")


def _sponsor_adds(directory: FakeDirectory) -> list[tuple[str, str]]:
    return [(user, sponsor) for kind, user, sponsor in directory.writes if kind == "sponsor"]


async def _actions(services) -> list[str]:
    return [e.action async for e in services.audit.entries()]


class TestSponsor:
    async def test_a_new_guest_gets_the_sponsor_through_the_invitation_with_no_extra_call(self, directory):
        """A newly invited guest's sponsor travels in invitedUserSponsors: no read or add of sponsors."""
        services = memory_services(directory)
        calls: list[str] = []
        for name in ("sponsor_ids", "add_sponsor"):
            real = getattr(directory, name)

            async def spy(*args, _real=real, _name=name):
                calls.append(_name)
                return await _real(*args)

            setattr(directory, name, spy)
        outcome = await handle_ticket(message(onboard_ticket()), services)

        [guest] = directory.guests_with_mail("ana.lopez@fabrikam.com")
        assert outcome.verdict is Verdict.DONE and calls == []
        assert directory.invitations[0].sponsor_ids == (_megan(directory),)
        assert directory.sponsors[guest.id] == [_megan(directory)]
        assert "sponsor" not in outcome.detail and "guest.sponsor-added" not in await _actions(services)

    async def test_a_reused_guest_gets_the_tickets_sponsor_added_and_audited(self, directory):
        """A reused guest without the ticket's sponsor gets it (one add), with a guest.sponsor-added audit row."""
        existing = directory.add_guest("ana.lopez@fabrikam.com")
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket()), services)

        assert outcome.verdict is Verdict.DONE and outcome.detail["sponsor"] == "added"
        assert _sponsor_adds(directory) == [(existing.id, _megan(directory))]
        assert directory.sponsors[existing.id] == [_megan(directory)]
        assert await _actions(services) == ["guest.reused", "guest.sponsor-added", "access.assigned"]
        [added] = [e async for e in services.audit.entries() if e.action == "guest.sponsor-added"]
        assert added.target == existing.id and added.details["sponsor"] == _megan(directory)
        assert added.key == "ticket:RITM0010001"

    async def test_a_reused_guest_that_already_has_the_sponsor_gets_no_second_add(self, directory):
        """The sponsor is read first: already there means no write and no sponsor audit row."""
        existing = directory.add_guest("ana.lopez@fabrikam.com")
        other = directory.add_member("adele.vance@contoso.com", "Adele Vance")
        directory.sponsors[existing.id] = [other.id, _megan(directory)]
        services = memory_services(directory)
        outcome = await handle_ticket(message(onboard_ticket()), services)

        assert outcome.verdict is Verdict.DONE and outcome.detail["sponsor"] == "already-sponsor"
        assert _sponsor_adds(directory) == []
        assert directory.sponsors[existing.id] == [other.id, _megan(directory)]
        assert "guest.sponsor-added" not in await _actions(services)

    async def test_replays_and_later_tickets_for_the_same_guest_add_the_sponsor_once(self, directory):
        """Redelivery is a duplicate; another ticket with the same sponsor finds it and adds nothing."""
        existing = directory.add_guest("ana.lopez@fabrikam.com")
        services = memory_services(directory)
        first = await handle_ticket(message(onboard_ticket(), "m-1"), services)
        again = await handle_ticket(message(onboard_ticket(), "m-2", delivery_count=2), services)
        later = await handle_ticket(message(onboard_ticket(ticketId="RITM0010002"), "m-3"), services)

        assert [o.verdict for o in (first, again, later)] == [Verdict.DONE, Verdict.DUPLICATE, Verdict.DONE]
        assert later.detail["sponsor"] == "already-sponsor"
        assert _sponsor_adds(directory) == [(existing.id, _megan(directory))]
        assert (await _actions(services)).count("guest.sponsor-added") == 1

    async def test_a_crash_after_the_add_is_audited_once_as_this_tickets_change_on_retry(self, directory):
        """Killed between Graph's add and the state write: the retry finds the sponsor, adds nothing more and
        still audits the addition (the tenant changed because of this ticket)."""
        directory.add_guest("ana.lopez@fabrikam.com")
        services = memory_services(directory)
        real_save = services.guests.save

        async def crash_once(record):
            services.guests.save = real_save
            raise RuntimeError("worker killed")

        services.guests.save = crash_once
        with pytest.raises(RuntimeError):
            await handle_ticket(message(onboard_ticket()), services)
        services.clock.advance(timedelta(seconds=LEASE_SECONDS))
        outcome = await handle_ticket(message(onboard_ticket(), delivery_count=2), services)

        assert outcome.verdict is Verdict.DONE and outcome.detail["sponsor"] == "added"
        assert len(_sponsor_adds(directory)) == 1
        assert (await _actions(services)).count("guest.sponsor-added") == 1

    async def test_graph_answering_already_exists_counts_as_success(self, directory):
        """A sponsor added by someone else between the read and the add: Graph's "already exists" is success,
        and no change is audited as this ticket's."""
        existing = directory.add_guest("ana.lopez@fabrikam.com")
        directory.sponsors[existing.id] = [_megan(directory)]
        services = memory_services(directory)

        async def stale_read(user_id: str) -> set[str]:
            return set()

        directory.sponsor_ids = stale_read
        outcome = await handle_ticket(message(onboard_ticket()), services)

        assert outcome.verdict is Verdict.DONE and outcome.detail["sponsor"] == "already-sponsor"
        assert _sponsor_adds(directory) == [] and "guest.sponsor-added" not in await _actions(services)

    async def test_without_the_permission_to_add_sponsors_the_ticket_still_onboards_and_says_why(self, directory):
        """A 403 on the add (User.ReadWrite.All is not granted): access is still assigned, the work item names
        the missing permission, nothing is audited as added."""
        existing = directory.add_guest("ana.lopez@fabrikam.com")
        services = memory_services(directory)

        async def denied(user_id: str, sponsor_id: str) -> bool:
            raise PermissionDeniedError("denied", status=403, code="Authorization_RequestDenied")

        directory.add_sponsor = denied
        outcome = await handle_ticket(message(onboard_ticket()), services)

        assert outcome.verdict is Verdict.DONE and outcome.detail["sponsor"] == "not-added-permission"
        assert "User.ReadWrite.All" in outcome.detail["sponsorReason"]
        assert [a["user"] for a in services.access_packages.adds()] == [existing.id]
        assert "guest.sponsor-added" not in await _actions(services)


async def test_a_rejected_message_is_kept_whole_and_bytes_that_are_not_utf8_stay_visible(directory):
    """The rejection row is the only copy of a settled message: no 8,000-character cut, no lossy decode."""
    services = memory_services(directory)
    body = json.dumps(onboard_ticket(displayName="y" * 30_000, partner="Not A Key")).encode() + b"\xff"
    await handle_ticket(message(body), services)
    [row] = await _rejections(services)
    assert row.raw == body[:-1].decode() + "\\xff"
