"""In-memory twins of the state and queue ports, with the real adapters' semantics.

Unit tests use them, and tests/integration/test_*_contract.py runs the same contract against these and the
real adapters so the two cannot drift apart. Values go through the same JSON and UTC normalisation (the
same codecs) as Table Storage, so what a test reads back is what production would read back. The Graph-side
fakes live in tests/fakes; the budget ledger's twin sits beside its port in graph.budget_ledger, because
graph/ may not import adapters/.
"""

from adapters.memory.drift_reports import MemoryDriftReports
from adapters.memory.runs import MemorySweepRuns
from adapters.memory.state import (
    MemoryAuditLog,
    MemoryGuestLedger,
    MemoryQueueTransport,
    MemoryRejections,
    MemoryWorkItems,
)

__all__ = [
    "MemoryAuditLog",
    "MemoryDriftReports",
    "MemoryGuestLedger",
    "MemoryQueueTransport",
    "MemoryRejections",
    "MemorySweepRuns",
    "MemoryWorkItems",
]
