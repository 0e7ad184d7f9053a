"""The Graph-side fakes, in one place: the directory and access packages, the governance area, the reset's
provider lookup, a monotonic clock. The state-side fakes are the in-memory adapters in ``adapters.memory``,
which a contract test holds to the Table Storage adapters."""

from tests.fakes.clocks import MonotonicClock
from tests.fakes.directory import FakeAccessPackages, FakeDirectory
from tests.fakes.governance import FakeGovernanceGraph, graph_stored_review
from tests.fakes.providers import FABRIKAM_TENANT, FakeLookup, OrderedLookup

__all__ = [
    "FABRIKAM_TENANT",
    "FakeAccessPackages",
    "FakeDirectory",
    "FakeGovernanceGraph",
    "FakeLookup",
    "MonotonicClock",
    "OrderedLookup",
    "graph_stored_review",
]
