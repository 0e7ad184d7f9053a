"""Hostile desired-state files through the loader, then policy drift and governance.

- Any file: ``load_desired_state`` returns a DesiredState or raises DesiredStateError, nothing else; a value
  of the wrong type is refused with a message naming its field.
- Any state that loads: drift and governance in plan mode write nothing to the tenant.
- Unsafe states (any combination of the guardrails' cases): every guardrail named refuses, and even in
  enforce mode neither job writes.
"""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from adapters.memory import MemoryAuditLog, MemoryDriftReports
from config.desired_state import DesiredState, load_desired_state, parse_desired_state
from config.settings import SAMPLE_DESIRED_STATE
from lifecycle.clock import FixedClock
from lifecycle.drift.desired import SERVICE_DEFAULT
from lifecycle.drift.entry import run_policy_drift
from lifecycle.errors import DesiredStateError
from lifecycle.governance import run_governance
from tests.builders import NOW, memory_services
from tests.fakes import FakeGovernanceGraph
from tests.fuzz.profile import FUZZ, examples

SAMPLE: dict[str, Any] = yaml.safe_load(SAMPLE_DESIRED_STATE.read_text(encoding="utf-8"))
ENTRA_VERIFIED = "federated.example"


class RecordingTenantPolicies:
    """A tenant at the service defaults that records every write (drift's TenantPolicies port)."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    async def get_policy(self) -> dict[str, Any]:
        return {"id": "crossTenantAccessPolicy", "displayName": "CrossTenantAccessPolicy", "allowedCloudEndpoints": []}

    async def get_default(self) -> dict[str, Any]:
        return copy.deepcopy(SERVICE_DEFAULT)

    async def get_identity_sync(self, tenant_id: str) -> dict[str, Any] | None:
        return None

    async def list_partners(self) -> list[dict[str, Any]]:
        return []

    async def get_authorization_policy(self) -> dict[str, Any]:
        return {"allowInvitesFrom": "everyone", "guestUserRoleId": "10dae51f-b6af-4016-8d66-8c2a99b929b3"}

    async def list_b2b_management_policies(self) -> list[dict[str, Any]]:
        return []

    async def find_tenant_by_domain(self, domain: str) -> dict[str, Any] | None:
        return {"tenantId": "00000000-0000-4000-8000-00000000abcd"} if domain == ENTRA_VERIFIED else None

    async def find_tenant_by_id(self, tenant_id: str) -> dict[str, Any] | None:
        return None

    async def list_federations(self) -> list[dict[str, Any]]:
        return []

    async def list_conditional_access_policies(self) -> list[dict[str, Any]]:
        return []

    def __getattr__(self, name: str) -> Any:
        # Every other method of the port is a write: record it and accept.
        if name.startswith(("update_", "create_", "delete_", "add_")):

            async def write(*args: Any, **kwargs: Any) -> dict[str, Any]:
                self.writes.append(name)
                return {"id": "00000000-0000-4000-8000-000000000001"}

            return write
        raise AttributeError(name)


def _write(text: bytes) -> Path:
    handle = tempfile.NamedTemporaryFile(suffix=".yaml", delete=False)  # noqa: SIM115 (closed just below)
    with handle:
        handle.write(text)
    return Path(handle.name)


def load(text: bytes) -> DesiredState | DesiredStateError:
    path = _write(text)
    try:
        return load_desired_state(path)
    except DesiredStateError as error:
        return error
    finally:
        path.unlink()


async def writes_in(state: DesiredState, mode: str) -> tuple[list[str], list[tuple[str, str]], list[str], list[str]]:
    """Run drift and governance in ``mode``; returns (drift writes, governance writes, their refusal rules)."""
    tenant, governance = RecordingTenantPolicies(), FakeGovernanceGraph()
    services = memory_services(desired=state, tenant_policies=tenant, drift_reports=MemoryDriftReports())
    drift = await run_policy_drift(services, mode)  # type: ignore[arg-type]
    result = await run_governance(
        governance,
        desired=state,
        audit=MemoryAuditLog(),
        clock=FixedClock(NOW),
        mode=mode,  # type: ignore[arg-type]
    )
    return (
        tenant.writes,
        governance.writes,
        [r.rule for r in drift.refusals],
        [r["rule"] for r in result["plan"]["refusals"]],
    )


# ---------------------------------------------------------------------------------------- generators


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


SAMPLE_PATHS = _paths(SAMPLE)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from([math.nan, math.inf, -1, 0, 10**6, "", "' or 1 eq 1", "AllUsers", "\u0000"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _set(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


@st.composite
def mutated_documents(draw: st.DrawFn) -> tuple[str, bytes, tuple[Any, ...] | None]:
    """The sample with one value replaced, one key added or one removed. Returns (label, YAML, replaced path)."""
    document = copy.deepcopy(SAMPLE)
    path = draw(st.sampled_from(SAMPLE_PATHS))
    how = draw(st.sampled_from(["replace", "add-key", "remove"]))
    replaced: tuple[Any, ...] | None = None
    if how == "replace":
        _set(document, path, draw(VALUES))
        replaced = path
    elif how == "add-key":
        parent = path[:-1]
        node: Any = document
        for step in parent:
            node = node[step]
        if isinstance(node, dict):
            node[draw(st.text(min_size=1, max_size=12))] = draw(VALUES)
    else:
        node = document
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]
    return f"{how}:{path[0]}", yaml.safe_dump(document, allow_unicode=True).encode("utf-8"), replaced


SAMPLE_TEXT = SAMPLE_DESIRED_STATE.read_bytes()
BOMB = b"".join(
    [b"a: &a [x, x, x, x, x, x, x, x, x]\n"]
    + [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n".encode() for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
)
# The same nine levels inside one value: a list whose items alias each other (9**9 leaves if expanded).
BOMB_FLOW = b", ".join(
    [b"&a [x, x, x, x, x, x, x, x, x]"]
    + [f"&{c} [{', '.join([f'*{p}'] * 9)}]".encode() for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
)
RAW_HOSTILE = [
    ("python-object", b"!!python/object/apply:os.system ['true']\n"),
    ("python-name", SAMPLE_TEXT + b"\nextra: !!python/name:os.system\n"),
    ("python-tag-in-value", SAMPLE_TEXT.replace(b"graceDays: 30", b"graceDays: !!python/object:int {}")),
    ("alias-bomb", BOMB),
    ("alias-bomb-in-field", SAMPLE_TEXT.replace(b"objectIds: []", b"objectIds: [" + BOMB_FLOW + b"]")),
    # A well-typed file that shares a value through an anchor: loaded before aliases were refused.
    (
        "alias-shared-value",
        SAMPLE_TEXT.replace(b"365", b"&days 365", 1).replace(b"maxEngagementDays: 180", b"maxEngagementDays: *days"),
    ),
    (
        "alias-merge-key",
        SAMPLE_TEXT.replace(
            b"accessPackage: {catalog: Partner collaboration, name: Fabrikam",
            b"accessPackage: &pkg {catalog: Partner collaboration, name: Fabrikam",
        ).replace(
            b"accessPackage: {catalog: Partner collaboration, name: Northwind",
            b"accessPackage: {<<: *pkg, name: Northwind",
        ),
    ),
    ("duplicate-top-key", SAMPLE_TEXT + b"\nlifecycle: {graceDays: 0}\n"),
    ("duplicate-nested-key", SAMPLE_TEXT.replace(b"graceDays: 30", b"graceDays: 30\n  graceDays: 0")),
    ("list-root", b"- tenant: x\n"),
    ("scalar-root", b"just a string\n"),
    ("null-root", b"~\n"),
    ("empty", b""),
    ("not-utf8", SAMPLE_TEXT.replace(b"Fabrikam, Inc.", b"Fabrikam \xff Inc.")),
    ("utf16", SAMPLE_TEXT.decode().encode("utf-16")),
    ("bad-timestamp", SAMPLE_TEXT.replace(b'startDate: "2025-01-06"', b"startDate: 2025-13-45")),
    ("bad-timestamp-2", SAMPLE_TEXT.replace(b'startDate: "2025-01-06"', b"startDate: 0000-01-01")),
    ("deep-flow", b"tenant: " + b"[" * 5000 + b"]" * 5000 + b"\n"),
    ("deep-block", b"".join(b"  " * i + b"k:\n" for i in range(3000))),
    ("tab-indent", b"tenant:\n\tid: x\n"),
    ("unclosed", b"tenant: {id: [\n"),
    ("nan-brake", SAMPLE_TEXT.replace(b"maxPercent: 5", b"maxPercent: .nan")),
    ("inf-days", SAMPLE_TEXT.replace(b"inactiveDays: 90", b"inactiveDays: .inf")),
    ("huge-int", SAMPLE_TEXT.replace(b"graceDays: 30", b"graceDays: " + b"9" * 5000)),
    ("complex-key", SAMPLE_TEXT + b"\n? [a, b]\n: c\n"),
]


# -------------------------------------------------------------------------------------------------- tests


def test_a_merge_key_overridden_by_an_explicit_key_is_not_a_duplicate():
    """YAML merge keys keep working: only a key written twice in one mapping is refused."""
    text = SAMPLE_TEXT.replace(b"exclusions:\n", b"exclusions:\n  <<: {objectIds: [x]}\n")
    loaded = load(text)
    assert isinstance(loaded, DesiredState) and loaded.exclusions.object_ids == ()


@pytest.mark.parametrize(("label", "text"), RAW_HOSTILE, ids=[label for label, _ in RAW_HOSTILE])
def test_hostile_yaml_is_refused_with_the_documented_error(label, text):
    """Tags, bombs, duplicate keys, wrong roots, bad bytes and bad timestamps: DesiredStateError, nothing else."""
    loaded = load(text)
    assert isinstance(loaded, DesiredStateError), f"{label} loaded"
    if label.startswith("duplicate"):
        assert "duplicate key" in str(loaded)
    if label.startswith("alias"):
        assert "aliases are not allowed" in str(loaded)


@settings(FUZZ, max_examples=examples(300))
@given(case=mutated_documents())
async def test_a_mutated_file_loads_or_is_refused_naming_the_field_and_plans_write_nothing(case):
    label, text, replaced = case
    loaded = load(text)
    event(f"{label} -> {'refused' if isinstance(loaded, DesiredStateError) else 'loaded'}")
    if isinstance(loaded, DesiredStateError):
        if replaced is not None:
            assert str(replaced[0]) in str(loaded), (label, str(loaded))
        return
    drift_writes, governance_writes, _, _ = await writes_in(loaded, "plan")
    assert drift_writes == [] and governance_writes == [], label


def _unsafe(name: str, document: dict[str, Any]) -> tuple[str, str]:
    """Make ``document`` unsafe in one way; returns (job, guardrail rule that must refuse it)."""
    if name == "default-inbound-trust":
        document["crossTenantAccessDefault"]["inboundTrust"]["isMfaAccepted"] = True
        return "drift", name
    if name == "weak-mfa-trusted":
        document["partners"]["fabrikam"]["weakMfa"] = True
        return "drift", name
    if name == "domain-list-size":
        document["invitations"]["domains"]["domains"] = [f"partner{i:05d}-{'x' * 40}.com" for i in range(600)]
        return "drift", name
    if name == "default-open-while-partners-scoped":
        allowed = {
            "usersAndGroups": {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]},
            "applications": {
                "accessType": "allowed",
                "targets": [{"target": "AllApplications", "targetType": "application"}],
            },
        }
        document["crossTenantAccessDefault"]["b2bCollaborationInbound"] = allowed
        return "drift", name
    if name == "federation-entra-domain":
        document["partners"]["adatum"]["federation"] = {
            "issuerUri": "https://sts.adatum.com/adfs",
            "passiveSignInUri": "https://sts.adatum.com/adfs/ls",
            "preferredAuthenticationProtocol": "saml",
            "signingCertificate": "MIIC",
            "domains": [ENTRA_VERIFIED],
        }
        return "drift", name
    if name == "review-without-reviewers":
        document["governance"]["guestReview"]["reviewers"] = []
        document["governance"]["guestReview"]["fallbackReviewers"] = []
        return "governance", name
    if name == "policy-outlives-engagement":
        document["governance"]["partners"]["woodgrove"]["expiration"] = {"days": 3000}
        return "governance", name
    document["governance"].pop("partnerReview")
    return "governance", "partner-review-without-settings"


UNSAFE = [
    "default-inbound-trust",
    "weak-mfa-trusted",
    "domain-list-size",
    "default-open-while-partners-scoped",
    "federation-entra-domain",
    "review-without-reviewers",
    "policy-outlives-engagement",
    "partner-review-without-settings",
]


@settings(FUZZ, max_examples=examples(60))
@given(chosen=st.sets(st.sampled_from(UNSAFE), min_size=1), mode=st.sampled_from(["plan", "enforce"]))
async def test_unsafe_states_are_refused_by_every_guardrail_they_break_and_never_applied(chosen, mode):
    document = copy.deepcopy(SAMPLE)
    expected = {"drift": set(), "governance": set()}
    for name in sorted(chosen):
        job, rule = _unsafe(name, document)
        expected[job].add(rule)
    state = parse_desired_state(document)  # unsafe, but valid: the guardrails, not the schema, refuse these
    drift_writes, governance_writes, drift_rules, governance_rules = await writes_in(state, mode)
    assert expected["drift"] <= set(drift_rules), drift_rules
    assert expected["governance"] <= set(governance_rules), governance_rules
    if expected["drift"]:
        assert drift_writes == [], drift_writes
    if expected["governance"]:
        assert governance_writes == [], governance_writes
