"""A small chaos soak inside the suite: every fault kind happens, and every invariant holds afterwards."""

from __future__ import annotations

import json

import pytest

from tests.chaos.soak import GRAPH_FAULTS, HARNESS_FAULTS, SoakConfig, soak

pytestmark = pytest.mark.stack


@pytest.mark.timeout(600)  # about two minutes alone; a loaded CI machine can take several
def test_a_small_soak_injects_every_fault_and_breaks_no_invariant():
    """120 tickets and 800 guests through faulty Graph, killed workers, ETag conflicts and an Azurite restart:
    nothing lost, duplicated or wrongly deleted, the audit matches the tenant, drift converges."""
    result = soak(SoakConfig(tickets=120, guests=800, seed=12))
    summary = json.dumps(result, indent=1)
    assert result["invariantViolations"] == 0, summary
    assert all(result["faults"][kind] > 0 for kind in (*GRAPH_FAULTS, *HARNESS_FAULTS)), summary
    assert result["deadLetters"]["afterReplay"] == 0 and result["deadLetters"]["replayed"] >= 1, summary
    assert result["ok"], summary
