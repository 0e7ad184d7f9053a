"""Redemption reset: guests re-redeem against their partner's new identity provider, keeping their object."""
