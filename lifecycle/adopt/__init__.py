"""Adopting guests invited by hand: their sponsor taken from Graph's sponsors into the guest ledger."""
