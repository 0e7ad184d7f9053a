"""``python -m lifecycle export desired-state``: the tenant's current posture in the desired-state format."""
