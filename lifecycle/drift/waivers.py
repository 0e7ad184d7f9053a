"""Waivers: a deviation accepted on purpose, with an owner and an end.

An active waiver replaces the file's value for one field of the default or a partner policy, so the plan is
made against the waived value (and the guardrails judge it like any other value). Every plan lists every
waiver with its owner and expiry. A waiver past its last day changes nothing in the desired state: the field
is planned against the file again, and the waiver itself is drift until someone renews or removes it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any

from config.desired_state import Waiver
from lifecycle.drift.desired import INBOUND_TRUST, DesiredPolicies
from lifecycle.drift.normalise import target_configuration
from lifecycle.drift.resources import DEFAULT, PARTNERS
from lifecycle.plans import Action, Change, FieldDiff, Refusal

ACTIVE, EXPIRED = "active", "expired"
RESOURCE = "waivers"


@dataclass(frozen=True, slots=True)
class WaiverStatus:
    """One waiver as a plan shows it: what it holds, who owns it, until when, and whether it still stands."""

    target: str  # default | partners.<key>
    field: str
    value: Any
    owner: str
    reason: str
    expires: str  # ISO date, the last day it stands (UTC)
    state: str  # ACTIVE or EXPIRED
    resource: str  # the plan resource it applies to
    key: str  # the plan key: "default" or the partner's tenant id

    @property
    def label(self) -> str:
        return f"{self.target} {self.field}"

    def describe(self) -> str:
        verb = "waived until" if self.state == ACTIVE else "waiver expired on"
        return f"{self.field} {verb} {self.expires} (owner {self.owner}: {self.reason})"


def _canonical(field: str, value: Any) -> Any:
    return bool(value) if field.startswith(f"{INBOUND_TRUST}.") else target_configuration(value)


def statuses(waivers: tuple[Waiver, ...], desired: DesiredPolicies, today: date) -> list[WaiverStatus]:
    tenant_ids = {p.key: p.tenant_id for p in desired.partners.values()}
    found = []
    for waiver in waivers:
        partner = waiver.partner
        found.append(
            WaiverStatus(
                target=waiver.target,
                field=waiver.field,
                value=waiver.value_json(),
                owner=waiver.owner,
                reason=waiver.reason,
                expires=waiver.expires.isoformat(),
                state=ACTIVE if today <= waiver.expires else EXPIRED,
                resource=DEFAULT if partner is None else PARTNERS,
                key="default" if partner is None else tenant_ids.get(partner, partner),
            )
        )
    return found


def waived(desired: DesiredPolicies, active: list[WaiverStatus]) -> DesiredPolicies:
    """The desired policies with every active waiver's value in place of the file's."""
    if not active:
        return desired
    default = dict(desired.default)
    partners = dict(desired.partners)
    for status in active:
        block, part = status.field.split(".", 1)
        value = _canonical(status.field, status.value)
        if status.target == "default":
            default[block] = {**(default[block] or {}), part: value}
        else:
            partner = partners[status.key]
            blocks = dict(partner.blocks)
            # A block the partner inherits keeps inheriting every part but the waived one (resolve fills them).
            blocks[block] = {**(blocks[block] or {}), part: value}
            partners[status.key] = dataclasses.replace(partner, blocks=blocks)
    return dataclasses.replace(desired, default=default, partners=partners)


def expired_actions(found: list[WaiverStatus]) -> list[Action]:
    """An expired waiver is drift of its own, until the file renews or removes it."""
    return [
        Action(
            RESOURCE,
            status.label,
            Change.REPORT,
            f"the waiver of {status.label} owned by {status.owner} expired on {status.expires}: "
            "renew it or remove it from the desired-state file",
            (FieldDiff("expires", "a date not yet past", status.expires),),
        )
        for status in found
        if status.state == EXPIRED
    ]


def annotate(actions: list[Action], found: list[WaiverStatus]) -> list[Action]:
    """Actions that touch a waived field say so in their reason and carry the waiver in their payload, so the
    CLI, --json and the audit trail all show who accepted the deviation and until when."""
    annotated = []
    for action in actions:
        touching = [
            s for s in found if s.resource == action.resource and s.key == action.key and _touches(action, s.field)
        ]
        if not touching:
            annotated.append(action)
            continue
        reason = f"{action.reason}; " + "; ".join(s.describe() for s in touching)
        payload = {**action.payload, "waived": [dataclasses.asdict(s) for s in touching]}
        annotated.append(dataclasses.replace(action, reason=reason, payload=payload))
    return annotated


def _touches(action: Action, field: str) -> bool:
    return any(diff.field == field for diff in action.diffs)


def introduced_refusals(plain: list[Refusal], with_waivers: list[Refusal], active: list[WaiverStatus]) -> list[Refusal]:
    """The refusals of the waived desired state; those the waivers brought in name the waivers in force."""
    before = set(plain)
    names = ", ".join(f"{s.label} (owner {s.owner})" for s in active)
    return [r if r in before else Refusal(r.rule, f"{r.message} [waivers in force: {names}]") for r in with_waivers]
