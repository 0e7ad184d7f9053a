"""Invitation codes for sign-up: derived per partner with HMAC, so checking one needs no lookup.

A code reads ``FABRIKAM-ABCD-EFGH-JKLM-NPQR``: the partner key, then 80 bits of
HMAC-SHA256(secret, generation + partner) in base32 (no 0/1/8/9 to mistype). Partners hand their code
to their own people; raising ``signUp.invitationCodeGeneration`` in the desired state revokes all codes.

Print a partner's code:  LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET=... python -m lifecycle.signup.codes fabrikam
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import sys
from collections.abc import Iterable

GROUPS = 4


def invitation_code(secret: bytes, partner_key: str, generation: int) -> str:
    message = f"signup-invitation/v1/{generation}/{partner_key}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    body = base64.b32encode(digest[:10]).decode("ascii")
    groups = [body[i : i + 4] for i in range(0, 4 * GROUPS, 4)]
    return "-".join([partner_key.upper(), *groups])


class InvitationCodes:
    """Tells which partner a typed code belongs to, or that it belongs to none."""

    def __init__(self, secret: bytes, partner_keys: Iterable[str], generation: int) -> None:
        self._expected = {key: invitation_code(secret, key, generation) for key in partner_keys}

    def partner_of(self, typed: str) -> str | None:
        normalized = "".join(typed.split()).upper()
        parts = normalized.split("-")
        if len(parts) <= GROUPS:
            return None
        key = "-".join(parts[:-GROUPS]).lower()
        expected = self._expected.get(key)
        if expected is None:
            return None
        return key if hmac.compare_digest(normalized.encode(), expected.encode()) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lifecycle.signup.codes",
        description="Print the sign-up invitation code of each partner given "
        "(secret from LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET).",
    )
    parser.add_argument("partners", nargs="+", help="partner keys as in the desired-state file")
    parser.add_argument("--generation", type=int, default=1, help="signUp.invitationCodeGeneration")
    args = parser.parse_args(argv)
    secret = os.environ.get("LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET", "")
    if len(secret) < 32:
        print("LIFECYCLE_SIGNUP_INVITATION_CODE_SECRET: missing or shorter than 32 characters", file=sys.stderr)
        return 2
    for partner in args.partners:
        print(f"{partner}\t{invitation_code(secret.encode(), partner, args.generation)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
