"""Finding the assignment request an earlier attempt of a work item sent and did not live to record."""

from __future__ import annotations

from datetime import UTC, datetime

from lifecycle.access_requests import earlier_request
from lifecycle.models import WorkItem, WorkStatus
from lifecycle.onboarding import access
from tests.builders import memory_services
from tests.fakes.directory import FakeAccessPackages


def _item(attempts: int) -> WorkItem:
    created = datetime(2026, 12, 1, tzinfo=UTC)
    return WorkItem("ticket:T-1", "onboard", WorkStatus.RUNNING, attempts=attempts, created=created)


class CountingPackages(FakeAccessPackages):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    async def find_request(self, package_id, justification, since):
        self.lookups += 1
        return await super().find_request(package_id, justification, since)


async def test_without_an_earlier_attempt_at_the_request_step_graph_is_asked_nothing():
    """Nothing can have been sent: no list of requests on the hot path."""
    packages = CountingPackages()
    target = packages.add_package("Partner collaboration", "Fabrikam engineering")
    await packages.request_assignment("guest-1", target, datetime(2027, 1, 1, tzinfo=UTC), "Onboarding ticket T-1")
    services = memory_services(access_packages=packages)

    assert await earlier_request(services, _item(attempts=1), target, "Onboarding ticket T-1", None) is None
    assert packages.lookups == 0


async def test_a_later_attempt_finds_only_its_own_request_that_has_not_failed():
    """The justification names the work item: another ticket's request is not taken, nor a failed one."""
    packages = FakeAccessPackages()
    target = packages.add_package("Partner collaboration", "Fabrikam engineering")
    end = datetime(2027, 1, 1, tzinfo=UTC)
    services = memory_services(access_packages=packages)
    await packages.request_assignment("guest-2", target, end, "Onboarding ticket T-2")
    since = datetime(2026, 12, 1, tzinfo=UTC)
    assert await earlier_request(services, _item(attempts=2), target, "Onboarding ticket T-1", since) is None

    mine = await packages.request_assignment("guest-1", target, end, "Onboarding ticket T-1")
    found = await earlier_request(services, _item(attempts=2), target, "Onboarding ticket T-1", since)
    assert found is not None and found.id == mine.id

    packages.outcome = "denied"
    await packages.get_request(mine.id)
    assert await earlier_request(services, _item(attempts=3), target, "Onboarding ticket T-1", since) is None


def test_only_an_attempt_after_one_that_began_step_two_looks_and_only_since_then():
    """A ticket held for days (attempts without an invitation) and invited at last looks for nothing; the attempt
    after one that began the request step looks from when that one began it."""
    began = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    held_then_invited = _item(attempts=4)
    held_then_invited.result = {access.ASSIGNING: {"at": began.isoformat(), "attempt": 4}}
    taken_over = _item(attempts=5)
    taken_over.result = {access.ASSIGNING: {"at": began.isoformat(), "attempt": 4}}

    assert access._since(held_then_invited) is None
    assert access._since(taken_over) == began
    assert access._since(_item(attempts=1)) is None
