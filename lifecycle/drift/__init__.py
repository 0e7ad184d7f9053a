"""Tenant policy drift: hold the external-collaboration posture to the desired-state file.

Plan (read the tenant, normalise, compare field by field, run the guardrails), show the diff, apply.
``entry.run_policy_drift`` is the one door for the timer and the CLI.
"""
