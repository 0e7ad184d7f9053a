"""An instance's messages read a few at a time before their first write (lifecycle.admission)."""

from __future__ import annotations

import asyncio

import pytest

from lifecycle.admission import Admission
from lifecycle.ledger.outcomes import Verdict
from lifecycle.ledger.settle import process
from lifecycle.onboarding.handler import handle_ticket
from lifecycle.sweep import entry
from tests.builders import memory_services, message, onboard_ticket
from tests.builders.sweep import QUEUE, add, stack
from tests.fakes import FakeDirectory

TICKETS = 6


class Peak:
    """Counts the calls under way at once of the coroutine function it wraps (each lasts a few turns)."""

    def __init__(self, call):
        self.call, self.now, self.most = call, 0, 0

    async def __call__(self, *args, **kwargs):
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.01)
            return await self.call(*args, **kwargs)
        finally:
            self.now -= 1


class Gathering:
    """Holds every caller until ``expected`` of them are waiting: a write that only returns once all of a burst's
    messages reached it, as a budget that lets nobody through before its bucket refills."""

    def __init__(self, call, expected: int):
        self.call, self.expected, self.arrived = call, expected, 0
        self.all_here = asyncio.Event()

    async def __call__(self, *args, **kwargs):
        self.arrived += 1
        if self.arrived >= self.expected:
            self.all_here.set()
        await asyncio.wait_for(self.all_here.wait(), timeout=2)
        return await self.call(*args, **kwargs)


async def test_no_more_than_the_slots_read_at_once_and_a_release_lets_the_next_in():
    admission = Admission(2)
    inside, most, released = 0, 0, asyncio.Event()

    async def reader(release_early: bool):
        nonlocal inside, most
        async with admission.reading() as slot:
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1
            if release_early:
                slot.release()
                slot.release()  # again: no second slot handed back
                await released.wait()

    early = asyncio.ensure_future(reader(True))
    await asyncio.gather(*(reader(False) for _ in range(5)))
    released.set()
    await early
    assert most == 2
    # Every slot is back, and only once each: two readers get in at once, a third waits.
    async with admission.reading(), admission.reading():
        third = asyncio.ensure_future(admission.reading().__aenter__())
        await asyncio.sleep(0.01)
        assert not third.done()
        third.cancel()


async def test_a_slot_comes_back_when_the_body_fails():
    admission = Admission(1)
    with pytest.raises(RuntimeError):
        async with admission.reading():
            raise RuntimeError("read failed")
    async with asyncio.timeout(1):
        async with admission.reading():
            pass


def test_an_admission_used_under_a_second_event_loop_starts_afresh():
    admission = Admission(1)

    async def hold_and_wait():
        async with admission.reading():
            waiter = asyncio.ensure_future(admission.reading().__aenter__())
            await asyncio.sleep(0)
            waiter.cancel()

    asyncio.run(hold_and_wait())
    asyncio.run(hold_and_wait())  # a semaphore bound to the first loop would raise here


def test_an_admission_needs_a_slot():
    with pytest.raises(ValueError):
        Admission(0)


async def test_a_burst_of_onboard_tickets_reads_a_few_at_a_time_and_none_holds_its_slot_while_inviting():
    """Six tickets at once with two slots: at most two are between their guest lookup and their invitation at a
    time, and all six reach the invitation together (a ticket waiting for the invitation budget has given its
    slot back)."""
    directory = FakeDirectory()
    directory.add_member("megan.bowen@contoso.com", "Megan Bowen")
    services = memory_services(directory)
    services.admission = Admission(2)
    looked_up, invited, most = set(), set(), 0
    find, invite = directory.find_user_by_mail, Gathering(directory.invite_guest, TICKETS)

    async def find_user_by_mail(email):
        nonlocal most
        looked_up.add(email)
        most = max(most, len(looked_up - invited))
        await asyncio.sleep(0.01)
        return await find(email)

    async def invite_guest(request):
        invited.add(request.email)
        return await invite(request)

    directory.find_user_by_mail, directory.invite_guest = find_user_by_mail, invite_guest
    tickets = [
        message(onboard_ticket(ticketId=f"RITM00200{n}", email=f"guest{n}@fabrikam.com")) for n in range(TICKETS)
    ]

    outcomes = await asyncio.gather(*(handle_ticket(t, services) for t in tickets))

    assert [o.verdict for o in outcomes] == [Verdict.DONE] * TICKETS
    assert most == 2
    assert len(directory.invitations) == TICKETS


async def test_a_burst_of_sweep_actions_reads_a_few_at_a_time_and_none_holds_its_slot_while_writing():
    """Six disables at once with two slots: at most two re-read their guest at a time, and all six reach the
    write together."""
    directory = FakeDirectory()
    guests = [add(directory, days_since_sign_in=120) for _ in range(TICKETS)]
    services = stack(directory)
    summary = await entry.run_sweep(services, "enforce")
    assert summary["status"] == "dispatched" and summary["dispatched"] == TICKETS
    services.admission = Admission(2)
    rereads = Peak(directory.get_user)
    directory.get_user = rereads
    directory.set_account_enabled = Gathering(directory.set_account_enabled, TICKETS)
    queue = services.settings.queue_name(QUEUE)
    received = await services.transport.receive(queue, max_messages=TICKETS)

    outcomes = await asyncio.gather(*(process(queue, m, entry.handle_guest_action, services) for m in received))

    assert [o.verdict for o in outcomes] == [Verdict.DONE] * TICKETS
    assert rereads.most == 2
    assert sorted(w[1] for w in directory.writes if w[0] == "accountEnabled") == sorted(g.id for g in guests)
