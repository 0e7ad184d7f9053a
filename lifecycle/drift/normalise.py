"""Canonical forms, so that only real differences are drift.

Target order, the casing of ids and keywords, null versus absent and values the service fills in itself
must never read as a change: both sides of every comparison pass through these functions first.
"""

from __future__ import annotations

import json
from typing import Any

B2B_BLOCKS = (
    "b2bCollaborationInbound",
    "b2bCollaborationOutbound",
    "b2bDirectConnectInbound",
    "b2bDirectConnectOutbound",
)
SUB_SETTINGS = ("usersAndGroups", "applications")
TRUST_FIELDS = ("isMfaAccepted", "isCompliantDeviceAccepted", "isHybridAzureADJoinedDeviceAccepted")
KEYWORDS = {k.lower(): k for k in ("AllUsers", "AllApplications", "Office365")}
INHERIT = "inherit"


def _target(entry: dict[str, Any]) -> dict[str, str]:
    raw = str(entry.get("target", "")).strip()
    return {"target": KEYWORDS.get(raw.lower(), raw.lower()), "targetType": str(entry.get("targetType", "")).lower()}


def target_configuration(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """{accessType, targets} with targets de-duplicated and sorted; None stays None."""
    if config is None:
        return None
    targets = {(t["targetType"], t["target"]): t for t in map(_target, config.get("targets") or [])}
    return {
        "accessType": str(config.get("accessType", "")).strip(),
        "targets": [targets[key] for key in sorted(targets)],
    }


def b2b_setting(block: dict[str, Any] | None) -> dict[str, Any] | None:
    """Both sub-settings of a B2B block in canonical form (anything else in the block is ignored)."""
    if block is None:
        return None
    return {name: target_configuration(block.get(name)) for name in SUB_SETTINGS}


def inbound_trust(trust: dict[str, Any] | None) -> dict[str, bool] | None:
    if trust is None:
        return None
    return {name: bool(trust.get(name) or False) for name in TRUST_FIELDS}


def resolve(block: dict[str, Any] | None, baseline: dict[str, Any] | None) -> dict[str, Any] | None:
    """The effective block: an inherited (null) block or sub-setting takes the baseline's value."""
    if block is None:
        return baseline
    if baseline is None:
        return block
    return {name: block.get(name) if block.get(name) is not None else baseline.get(name) for name in baseline}


def domains(values: Any) -> list[str]:
    return sorted({str(v).strip().lower() for v in values or [] if str(v).strip()})


def _child(mapping: Any, name: str) -> Any:
    """A key looked up case-insensitively: the service's definition JSON is written with varying case."""
    if not isinstance(mapping, dict):
        return None
    return next((value for key, value in mapping.items() if key.lower() == name.lower()), None)


def parse_domain_definition(definition: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(the whole definition document, its {allowedDomains, blockedDomains}) from a policy's ``definition``."""
    text = definition[0] if isinstance(definition, list) and definition else definition
    document = json.loads(text) if isinstance(text, str) and text.strip() else {}
    lists = _child(_child(document, "B2BManagementPolicy"), "InvitationsAllowedAndBlockedDomainsPolicy")
    return document, {
        "allowedDomains": domains(_child(lists, "AllowedDomains")),
        "blockedDomains": domains(_child(lists, "BlockedDomains")),
    }


def domain_definition(existing: dict[str, Any], allowed: list[str], blocked: list[str]) -> str:
    """The definition JSON with the invitation lists replaced and every sibling setting kept."""
    document = json.loads(json.dumps(existing)) if existing else {}
    policy_key = next((k for k in document if k.lower() == "b2bmanagementpolicy"), "B2BManagementPolicy")
    policy = document.setdefault(policy_key, {})
    if not isinstance(policy, dict):
        policy = document[policy_key] = {}
    list_key = next(
        (k for k in policy if k.lower() == "invitationsallowedandblockeddomainspolicy"),
        "InvitationsAllowedAndBlockedDomainsPolicy",
    )
    inner: dict[str, list[str]] = {}
    if allowed:
        inner["AllowedDomains"] = allowed
    if blocked:
        inner["BlockedDomains"] = blocked
    policy[list_key] = inner
    return json.dumps(document, separators=(",", ":"))
