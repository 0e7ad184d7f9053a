"""The braked daily run shared by the guest sweep and the redemption reset: one run row per scheduled
occurrence, claimed once, braked above a threshold until an operator approves it."""
