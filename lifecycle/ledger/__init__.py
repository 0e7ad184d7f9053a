"""The job ledger runtime every job shares: work items and their states (work), settling a message from an
Outcome (settle, outcomes), the local queue worker, and the on-call operations (failed, show, replay, purge)."""
