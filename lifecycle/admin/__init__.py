"""The admin endpoint's core: who the operator is (from a validated Entra access token), the two-step plan and
apply of a tenant-changing command with a digest of the plan, and the audit rows with the operator's name."""
