"""Entitlement management settings: what happens to an external user whose last assignment ends."""

from __future__ import annotations

from tenantsim.api.governance.common import EM, check_duration, public, writable_body
from tenantsim.api.governance.state import state_of
from tenantsim.errors import bad_request
from tenantsim.runtime import Call, GraphResponse

LIFECYCLE_ACTIONS = frozenset({"none", "blockSignIn", "blockSignInAndDelete"})


def get_settings(call: Call) -> GraphResponse:
    call.require("entitlementManagement.read")
    return GraphResponse(
        200, {"@odata.context": call.context_url(f"{EM}/settings/$entity"), **public(state_of(call).settings)}
    )


def update_settings(call: Call) -> GraphResponse:
    call.require("entitlementManagement.write")
    body = writable_body(
        call.request.body,
        ("externalUserLifecycleAction", "durationUntilExternalUserDeletedAfterBlocked"),
        "entitlementManagementSettings",
    )
    if "externalUserLifecycleAction" in body and body["externalUserLifecycleAction"] not in LIFECYCLE_ACTIONS:
        raise bad_request("Invalid value for 'externalUserLifecycleAction'.")
    check_duration(
        body.get("durationUntilExternalUserDeletedAfterBlocked"), "durationUntilExternalUserDeletedAfterBlocked"
    )
    state_of(call).settings.update(body)
    return GraphResponse(204)
