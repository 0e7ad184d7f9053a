"""The deletion brake: a run that would disable or delete too many guests stops before acting.

Modelled on the accidental-deletion threshold of directory sync tools: a count and a share of the
run's guests; crossing either one holds the whole run until an operator approves its run id.
"""

from __future__ import annotations

from config.desired_state import DeletionBrake
from lifecycle.runs.model import BrakeState


def evaluate(affected: int, total: int, limits: DeletionBrake) -> BrakeState:
    """The brake state for a run that would disable or delete ``affected`` of ``total`` guests."""
    state = BrakeState(affected=affected, total=total, max_count=limits.max_count, max_percent=limits.max_percent)
    reasons = []
    if affected > limits.max_count:
        reasons.append(f"{affected} guests exceed the limit of {limits.max_count}")
    # Integer arithmetic on the share: 5% of 1,000 is exactly 50, never 50.000001.
    if total > 0 and affected * 100 > limits.max_percent * total:
        reasons.append(f"{affected} of {total} guests ({100 * affected / total:.2f}%) exceed {limits.max_percent}%")
    if reasons:
        state.tripped = True
        state.reason = "; ".join(reasons)
    return state
