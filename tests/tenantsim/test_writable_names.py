"""The properties tenantsim accepts in a create or update body are properties of the type Graph names.

Every ``writable_body(body, FIELDS, "type")`` call in tenantsim is found in the source; FIELDS must be JSON
names of that type in msgraph-sdk's models, which are generated from Graph's v1.0 metadata.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

TENANTSIM = Path(__file__).resolve().parents[2] / "tenantsim"


def _writable_calls() -> list[tuple[str, str, tuple[str, ...]]]:
    found = []
    for path in sorted(TENANTSIM.rglob("*.py")):
        tree = ast.parse(path.read_text())
        module = ".".join(path.relative_to(TENANTSIM.parent).with_suffix("").parts)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "writable_body"):
                continue
            fields_node, type_node = node.args[1], node.args[2]
            assert isinstance(type_node, ast.Constant), f"{path}:{node.lineno} names its type as a literal"
            if isinstance(fields_node, ast.Name):
                fields = tuple(getattr(importlib.import_module(module), fields_node.id))
            else:
                fields = tuple(ast.literal_eval(fields_node))
            found.append((f"{path.name}:{node.lineno}", type_node.value, fields))
    return found


def _json_names(type_name: str) -> set[str]:
    if type_name in DOCUMENTED_OUTSIDE_SDK:
        return set(DOCUMENTED_OUTSIDE_SDK[type_name][0])
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).lower()
    module = importlib.import_module(f"msgraph.generated.models.{snake}")
    model = getattr(module, type_name[0].upper() + type_name[1:])
    return set(model().get_field_deserializers())


_LEARN = "https://learn.microsoft.com/en-us/graph/api/resources/identitygovernance-{}?view=graph-rest-1.0"
_RULE = ("id", "isEnabled", "gracePeriodInDays")  # lifecyclePolicyRule, inherited by every rule type
# Types newer than the v1.0 metadata msgraph-sdk is generated from (Lifecycle Workflows' lifecycle policies): their
# names as each type's v1.0 page lists them, with the page. Only these types; anything else goes through the SDK.
DOCUMENTED_OUTSIDE_SDK: dict[str, tuple[tuple[str, ...], str]] = {
    "guestLifecyclePolicy": (
        (
            "id",
            "createdDateTime",
            "description",
            "displayName",
            "enforcementAction",
            "gracePeriodInDays",
            "isEnabled",
            "lastModifiedDateTime",
            "notificationSchedule",
            "policySource",
            "scope",
            "versionNumber",
            "createdBy",
            "lastModifiedBy",
            "report",
            "rules",
            "versions",
        ),
        _LEARN.format("guestlifecyclepolicy"),
    ),
    "inactivityRule": ((*_RULE, "lastActivityThresholdInDays"), _LEARN.format("inactivityrule")),
    "sponsorPresenceRule": ((*_RULE, "minimumSponsorCount"), _LEARN.format("sponsorpresencerule")),
    "periodicAttestationRule": ((*_RULE, "attestationIntervalInDays"), _LEARN.format("periodicattestationrule")),
    "accessPackageAssignmentRequiredRule": (_RULE, _LEARN.format("accesspackageassignmentrequiredrule")),
    "invitationRedemptionRule": (
        (*_RULE, "invitationRedemptionThresholdInDays"),
        _LEARN.format("invitationredemptionrule"),
    ),
    "deleteOnlyEnforcementAction": ((), _LEARN.format("deleteonlyenforcementaction")),
    "disableOnlyEnforcementAction": ((), _LEARN.format("disableonlyenforcementaction")),
    "disableThenDeleteEnforcementAction": (
        ("deletionGracePeriodInDays",),
        _LEARN.format("disablethendeleteenforcementaction"),
    ),
    "lifecyclePolicyNotificationSettings": (
        ("additionalFallbackRecipients", "offsetsAfterNonComplianceInDays"),
        _LEARN.format("lifecyclepolicynotificationsettings"),
    ),
    # excludedGroups is a relationship; @odata.bind is OData's annotation for setting one in a request body.
    "allExcludingGroupsSubjectSet": (
        ("excludedGroups", "excludedGroups@odata.bind"),
        _LEARN.format("allexcludinggroupssubjectset"),
    ),
    "lifecyclePolicyPriorityConfiguration": (
        ("id", "orderedPolicyIds", "subjectType"),
        _LEARN.format("lifecyclepolicypriorityconfiguration"),
    ),
}

CALLS = _writable_calls()
# Names Microsoft's own request examples send that the v1.0 metadata lacks: each has its contract row.
OUTSIDE_METADATA = {("accessReviewScheduleDefinition", "backupReviewers"): "access-reviews.md"}


def test_types_outside_the_sdk_are_only_the_documented_lifecycle_policy_types_each_with_a_contract_row():
    contract = (TENANTSIM / "contract" / "lifecycle-policies.md").read_text()
    for type_name, (_names, page) in DOCUMENTED_OUTSIDE_SDK.items():
        assert page.startswith("https://learn.microsoft.com/en-us/graph/api/resources/identitygovernance-")
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).lower()
        assert importlib.util.find_spec(f"msgraph.generated.models.{snake}") is None, f"the SDK knows {type_name}"
        assert f"`{type_name}`" in contract, f"lifecycle-policies.md names no {type_name}"


def test_every_create_and_update_handler_is_checked():
    assert len(CALLS) >= 12


@pytest.mark.parametrize(("where", "type_name", "fields"), CALLS, ids=[c[0] for c in CALLS])
def test_accepted_properties_are_the_types_own(where: str, type_name: str, fields: tuple[str, ...]):
    foreign = set(fields) - _json_names(type_name)
    for name in sorted(foreign):
        row = OUTSIDE_METADATA.get((type_name, name))
        assert row, f"{where} accepts {name}, which {type_name} does not have"
        assert f"`{name}`" in (TENANTSIM / "contract" / row).read_text(), f"{row} has no row for {name}"
