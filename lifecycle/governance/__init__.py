"""Governance: access review definitions and entitlement management kept as the desired-state file says."""

from lifecycle.governance.job import make_plan, plan_from_dict, render, run_governance

__all__ = ["make_plan", "plan_from_dict", "render", "run_governance"]
