"""Guest identity providers: the email one-time passcode method and social federation (Google, Facebook).

- ``/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email``: GET (Policy.Read.All or
  Policy.ReadWrite.AuthenticationMethod) and PATCH (Policy.ReadWrite.AuthenticationMethod, 204, the body must
  name ``@odata.type``). A fresh tenant answers as the get example does: ``state`` enabled,
  ``allowExternalIdToUseEmailOtp`` ``default`` (emailauthenticationmethodconfiguration-get.md, -update.md).
- ``/identity/identityProviders``: the list holds the built-in Microsoft account provider and the social
  providers (identitycontainer-list-identityproviders.md); a social provider is created for B2B with type
  ``Google`` or ``Facebook``, ``clientId`` and ``clientSecret`` required, id ``{type}-OAUTH``; reads show the
  secret as ``******`` (socialidentityprovider.md: write-only); IdentityProvider.Read.All to read,
  IdentityProvider.ReadWrite.All to write (identitycontainer-post-identityproviders.md).
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

from tenantsim.api.governance.common import writable_body
from tenantsim.directory import Directory
from tenantsim.errors import GraphError, bad_request, found
from tenantsim.runtime import Call, GraphResponse

EMAIL_TYPE = "#microsoft.graph.emailAuthenticationMethodConfiguration"
EMAIL_FIELDS = ("allowExternalIdToUseEmailOtp", "state", "excludeTargets")
OTP_STATES = frozenset({"default", "enabled", "disabled"})
METHOD_STATES = frozenset({"enabled", "disabled"})
SOCIAL = "microsoft.graph.socialIdentityProvider"
SOCIAL_FIELDS = ("displayName", "identityProviderType", "clientId", "clientSecret")
SOCIAL_UPDATE = ("displayName", "clientId", "clientSecret")
B2B_SOCIAL_TYPES = frozenset({"Google", "Facebook"})
MASK = "******"
BUILT_IN = {
    "@odata.type": "#microsoft.graph.builtInIdentityProvider",
    "id": "MSASignup-OAUTH",
    "identityProviderType": "MicrosoftAccount",
    "displayName": "MicrosoftAccount",
}


class _Providers:
    def __init__(self) -> None:
        self.email: dict[str, Any] = {
            "id": "Email",
            "state": "enabled",
            "allowExternalIdToUseEmailOtp": "default",
            "excludeTargets": [],
        }
        self.social: dict[str, dict[str, Any]] = {}


_state: weakref.WeakKeyDictionary[Directory, _Providers] = weakref.WeakKeyDictionary()


def providers_of(directory: Directory) -> _Providers:
    if directory not in _state:
        _state[directory] = _Providers()
    return _state[directory]


def get_email_configuration(call: Call) -> GraphResponse:
    call.require("authenticationMethods.read")
    email = providers_of(call.sim.directory).email
    context = call.context_url("authenticationMethodConfigurations/$entity")
    return GraphResponse(200, {"@odata.context": context, "@odata.type": EMAIL_TYPE, **copy.deepcopy(email)})


def update_email_configuration(call: Call) -> GraphResponse:
    call.require("authenticationMethods.write")
    raw = call.request.body
    if not isinstance(raw, dict) or str(raw.get("@odata.type", "")).lstrip("#") != EMAIL_TYPE.lstrip("#"):
        raise bad_request(f"The body must name '@odata.type': '{EMAIL_TYPE}'.")
    body = writable_body(raw, EMAIL_FIELDS, "emailAuthenticationMethodConfiguration")
    if "allowExternalIdToUseEmailOtp" in body and body["allowExternalIdToUseEmailOtp"] not in OTP_STATES:
        raise bad_request("'allowExternalIdToUseEmailOtp' must be default, enabled or disabled.")
    if "state" in body and body["state"] not in METHOD_STATES:
        raise bad_request("'state' must be enabled or disabled.")
    providers_of(call.sim.directory).email.update(copy.deepcopy(body))
    return GraphResponse(204)


def _view(provider: dict[str, Any]) -> dict[str, Any]:
    return {"@odata.type": f"#{SOCIAL}", **{**provider, "clientSecret": MASK}}


def list_identity_providers(call: Call) -> GraphResponse:
    call.require("identityProviders.read")
    social = [_view(p) for p in providers_of(call.sim.directory).social.values()]
    context = call.context_url("identity/identityProviders")
    return GraphResponse(200, {"@odata.context": context, "value": [dict(BUILT_IN), *social]})


def get_identity_provider(call: Call, provider_id: str) -> GraphResponse:
    call.require("identityProviders.read")
    if provider_id == BUILT_IN["id"]:
        return GraphResponse(200, dict(BUILT_IN))
    return GraphResponse(200, _view(found(providers_of(call.sim.directory).social, provider_id)))


def create_identity_provider(call: Call) -> GraphResponse:
    call.require("identityProviders.write")
    raw = call.request.body
    if not isinstance(raw, dict) or str(raw.get("@odata.type", "")).lstrip("#") != SOCIAL:
        raise bad_request("Only a socialIdentityProvider can be created in this tenant.")
    body = writable_body(raw, SOCIAL_FIELDS, "socialIdentityProvider")
    kind = body.get("identityProviderType")
    if kind not in B2B_SOCIAL_TYPES:
        raise bad_request("'identityProviderType' must be Google or Facebook for B2B.")
    missing = [name for name in ("clientId", "clientSecret") if not body.get(name)]
    if missing:
        raise bad_request(f"Required properties are missing: {', '.join(missing)}.")
    provider_id = f"{kind}-OAUTH"
    social = providers_of(call.sim.directory).social
    if provider_id in social:
        raise GraphError(409, "Conflict", f"An identity provider of type {kind} already exists.")
    social[provider_id] = {
        "id": provider_id,
        "displayName": str(body.get("displayName") or kind),
        "identityProviderType": kind,
        "clientId": body["clientId"],
        "clientSecret": body["clientSecret"],
    }
    # The create example shows the secret as sent; every read masks it.
    return GraphResponse(201, {"@odata.type": SOCIAL, **social[provider_id]})


def update_identity_provider(call: Call, provider_id: str) -> GraphResponse:
    call.require("identityProviders.write")
    provider = found(providers_of(call.sim.directory).social, provider_id)
    body = writable_body(call.request.body, SOCIAL_UPDATE, "socialIdentityProvider")
    if any(not isinstance(v, str) or not v for v in body.values()):
        raise bad_request("displayName, clientId and clientSecret must be non-empty strings.")
    provider.update(body)
    return GraphResponse(204)


def delete_identity_provider(call: Call, provider_id: str) -> GraphResponse:
    call.require("identityProviders.write")
    social = providers_of(call.sim.directory).social
    found(social, provider_id)
    del social[provider_id]
    return GraphResponse(204)
