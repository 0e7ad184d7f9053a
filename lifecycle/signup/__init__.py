"""The self-service sign-up connector: Entra calls it while a guest signs up, it answers continue or block.

Two wire formats are accepted (the custom authentication extension events of External ID and the older
API connector of B2B self-service sign-up). The decision is pure and comes from the desired-state file,
so no Graph call sits on the hot path and the same request always gets the same answer.
"""
